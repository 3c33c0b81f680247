/**
 * A team's own checks as part of the chat gate: an evaluator is given each prompt (the messages)
 * and a version's reply, and answers pass or fail with a reason. Two kinds:
 *
 *   - command: started once per evaluation, it reads one JSON object per line on stdin,
 *     {"prompt": [messages], "reply": "..."}, and writes one per line on stdout, in order,
 *     {"pass": true|false, "reason": "..."};
 *   - url: each item is POSTed as that JSON object, and the answer is that JSON object.
 *
 * Anything else (a crash, a timeout, a malformed answer) fails the evaluation with a message
 * naming the evaluator and what it did, and so fails the round: a gate that cannot judge must not pass.
 */
import { spawn } from 'node:child_process';
import type { Prompt } from '../model/inference/chat-prompt.ts';

export type EvaluatorSpec = { command: string[]; timeoutMs?: number } | { url: string; timeoutMs?: number; bearerToken?: string };
export interface EvaluatorItem { prompt: Prompt; reply: string }
export interface Verdict { pass: boolean; reason: string }

const DEFAULT_TIMEOUT_MS = 120_000;

export function describeEvaluator(e: EvaluatorSpec): string {
  return 'command' in e ? `evaluator command ${JSON.stringify(e.command.join(' '))}` : `evaluator ${e.url}`;
}

function parseVerdict(raw: unknown, where: string): Verdict {
  const v = raw as { pass?: unknown; reason?: unknown } | null;
  if (!v || typeof v !== 'object' || typeof v.pass !== 'boolean') throw new Error(`${where}: expected {"pass": true|false, "reason": "..."}, got ${JSON.stringify(raw)?.slice(0, 200)}`);
  return { pass: v.pass, reason: typeof v.reason === 'string' ? v.reason.slice(0, 2000) : '' };
}

export async function runEvaluator(e: EvaluatorSpec, items: readonly EvaluatorItem[]): Promise<Verdict[]> {
  if (items.length === 0) return [];
  return 'command' in e ? runCommand(e, items) : runHttp(e, items);
}

async function runHttp(e: { url: string; timeoutMs?: number; bearerToken?: string }, items: readonly EvaluatorItem[]): Promise<Verdict[]> {
  const out: Verdict[] = [];
  for (const [i, item] of items.entries()) {
    const where = `${describeEvaluator(e)}, item ${i + 1}`;
    let r: Response;
    try {
      r = await fetch(e.url, {
        method: 'POST', body: JSON.stringify(item), signal: AbortSignal.timeout(e.timeoutMs ?? DEFAULT_TIMEOUT_MS),
        headers: { 'content-type': 'application/json', ...(e.bearerToken ? { authorization: `Bearer ${e.bearerToken}` } : {}) },
      });
    } catch (err) {
      throw new Error(`${where}: no answer (${(err as Error).message})`);
    }
    const text = await r.text();
    if (!r.ok) throw new Error(`${where}: HTTP ${r.status}: ${text.slice(0, 200)}`);
    let json: unknown;
    try { json = JSON.parse(text); } catch { throw new Error(`${where}: the answer is not JSON: ${text.slice(0, 200)}`); }
    out.push(parseVerdict(json, where));
  }
  return out;
}

function runCommand(e: { command: string[]; timeoutMs?: number }, items: readonly EvaluatorItem[]): Promise<Verdict[]> {
  const where = describeEvaluator(e);
  return new Promise((resolve, reject) => {
    const child = spawn(e.command[0]!, e.command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const fail = (message: string) => { if (settled) return; settled = true; clearTimeout(timer); child.kill('SIGKILL'); reject(new Error(`${where}: ${message}`)); };
    const timer = setTimeout(() => fail(`no complete answer within ${e.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`), e.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.on('error', (err) => fail(`could not start (${err.message})`));
    // Decoded as a stream: a character split between two chunks stays whole.
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => { stdout += d; });
    child.stderr.on('data', (d: string) => { stderr = (stderr + d).slice(-2000); });
    child.stdin.on('error', () => {}); // a command that exits early: its exit status says why
    child.on('close', (code, signal) => {
      if (settled) return;
      if (code !== 0) return fail(`exited with ${signal ?? `status ${code}`}${stderr.trim() ? `: ${stderr.trim().slice(-300)}` : ''}`);
      const lines = stdout.split('\n').filter((l) => l.trim() !== '');
      if (lines.length !== items.length) return fail(`answered ${lines.length} lines for ${items.length} items`);
      try {
        const verdicts = lines.map((l, i) => {
          let json: unknown;
          try { json = JSON.parse(l); } catch { throw new Error(`line ${i + 1} is not JSON: ${l.slice(0, 200)}`); }
          return parseVerdict(json, `line ${i + 1}`);
        });
        settled = true;
        clearTimeout(timer);
        resolve(verdicts);
      } catch (err) {
        fail((err as Error).message);
      }
    });
    child.stdin.end(items.map((it) => JSON.stringify(it)).join('\n') + '\n');
  });
}

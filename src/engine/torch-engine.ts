/**
 * The ModelEngine in a PyTorch process (`python -m oeld_trainer engine`, python/oeld_trainer/engine.py):
 * the daemon holds no model. This side keeps what is text (tokenizers, chat templates, fitting
 * prompts to the context, stop strings, decoding); the process holds the versions and does the
 * arithmetic on token ids: sampling replies and the chat gate's KL measurement. With OELD_TRAINER
 * torch, a whole round then runs with no model in the Node process (docs/trainer.md).
 *
 * Requests go one JSON line each on the process's stdin and are answered in order; a failed
 * request rejects with the process's message and the engine carries on; a process that dies
 * rejects every waiting request and is started again by the next one (its versions reloaded from
 * the folders they were loaded from). Serving streams each row's text as the process samples it
 * (the process sends each step's tokens before its answer).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { adapterForTorch } from '../model/formats/lora-adapter.ts';
import { loadTokenizer, type Tokenizer } from '../model/formats/tokenizer.ts';
import { fitPrompt, promptIds, userPrompt, type Prompt, type TemplateVariables } from '../model/inference/chat-prompt.ts';
import type { SamplingOptions } from '../model/inference/sampling.ts';
import type { ServedRow, ServeRow } from '../model/inference/serve-batch.ts';
import { StreamedRows } from '../model/inference/streamed-rows.ts';
import { resolveConfig, type ResolvedConfig } from '../model/network/model-config.ts';
import { fitWithKnowledge } from '../trainer/fit-situations.ts';
import { torchModelSpec } from '../trainer/torch-job.ts';
import { TORCH_PACKAGE_ROOT } from '../trainer/torch-trainer.ts';
import type { Completion, ModelEngine } from './model-engine.ts';

export interface TorchEngineSettings { python: string; device: string }

interface Held { dir: string; tokenizer: Tokenizer; config: ResolvedConfig }

export class TorchEngine implements ModelEngine {
  private child: ChildProcess | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; onPartial?: (p: unknown) => void }>();
  private readonly held = new Map<string, Held>();
  /** Versions the current process has loaded (a restarted one has none). */
  private inProcess = new Set<string>();
  private stderr = '';

  constructor(private readonly s: TorchEngineSettings) {}

  private start(): ChildProcess {
    const env = { ...process.env, PYTHONPATH: [TORCH_PACKAGE_ROOT, process.env.PYTHONPATH].filter(Boolean).join(':'), PYTHONUNBUFFERED: '1' };
    const child = spawn(this.s.python, ['-m', 'oeld_trainer', 'engine', this.s.device], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr!.on('data', (b: Buffer) => { this.stderr = (this.stderr + b.toString()).slice(-4000); });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let r: { id?: number; ok?: boolean; result?: unknown; error?: string; event?: string; device?: string; partial?: unknown };
      try { r = JSON.parse(line); } catch { return; }
      if (r.event === 'ready') return;
      const w = r.id === undefined ? undefined : this.waiting.get(r.id);
      if (!w) return;
      if (r.partial !== undefined) { w.onPartial?.(r.partial); return; }
      this.waiting.delete(r.id!);
      if (r.ok) w.resolve(r.result); else w.reject(new Error(`torch engine: ${r.error}`));
    });
    const fail = (why: string) => {
      // A new process holds nothing: the next request reloads what it needs.
      if (this.child === child) { this.child = null; this.inProcess = new Set(); }
      const err = new Error(`torch engine (${this.s.python}) ${why}${this.stderr.trim() ? `: ${this.stderr.trim().split('\n').slice(-4).join(' | ')}` : ''}`);
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    child.on('error', (err) => fail(`could not start: ${err.message} (OELD_TORCH_PYTHON)`));
    child.on('close', (code, signal) => fail(signal ? `was killed (${signal})` : `exited with code ${code}`));
    return child;
  }

  private request<T>(op: string, body: Record<string, unknown>, onPartial?: (p: unknown) => void): Promise<T> {
    this.child ??= this.start();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, ...(onPartial ? { onPartial } : {}) });
      this.child!.stdin!.write(`${JSON.stringify({ id, op, ...body })}\n`);
    });
  }

  /** The version in this process's engine, loaded again after a restart of the process. */
  private async ensure(version: string): Promise<Held> {
    const h = this.held.get(version);
    if (!h) throw new Error(`model ${version} is not loaded (load it first)`);
    if (!this.inProcess.has(version)) await this.load(version, h.dir);
    return h;
  }

  async load(version: string, dir: string): Promise<{ parameters: number; backend: string }> {
    const adapter = adapterForTorch(dir);
    const weightsDir = adapter ? adapter.folder.baseDir : dir;
    const configPath = join(weightsDir, 'config.json');
    let config: ResolvedConfig;
    try { config = resolveConfig(JSON.parse(readFileSync(configPath, 'utf8'))); } catch (err) { throw new Error(`${configPath}: ${(err as Error).message}`); }
    const r = await this.request<{ parameters: number; backend: string }>('load', {
      version, weightsDir, model: torchModelSpec(config),
      adapter: adapter ? { file: adapter.file, rank: adapter.rank, alpha: adapter.alpha, targets: adapter.targets } : null,
    });
    this.held.set(version, { dir, tokenizer: await loadTokenizer(weightsDir), config });
    this.inProcess.add(version);
    return r;
  }

  async unload(version: string): Promise<void> {
    this.held.delete(version);
    if (this.child && this.inProcess.delete(version)) await this.request('unload', { version });
  }

  /** Token ids of each prompt, cut from the left where it would not fit beside `maxNewTokens`. */
  private ids(h: Held, prompts: Prompt[], maxNewTokens: number, variables?: TemplateVariables): number[][] {
    const room = Math.max(1, h.config.maxPositions - maxNewTokens);
    return prompts.map((p) => {
      const full = promptIds(h.tokenizer, p, variables);
      return full.length <= room ? full : promptIds(h.tokenizer, fitPrompt(h.tokenizer, p, room, variables).prompt, variables);
    });
  }

  /** With onStep, each step's new tokens ([row, token] pairs) arrive as they are sampled. */
  private async generate(version: string, h: Held, ids: number[][], sampling: SamplingOptions, limits: number[], seed: number, onStep?: (step: [number, number][]) => void) {
    return this.request<{ tokens: number[][]; endedBy: ('eos' | 'length')[] }>('generate', {
      version, prompts: ids, sampling, maxNewTokens: limits, seed, eosTokenIds: [...h.tokenizer.eosTokenIds], padTokenId: h.tokenizer.padTokenId ?? 0,
      ...(onStep ? { stream: true } : {}),
    }, onStep as ((p: unknown) => void) | undefined);
  }

  async complete(version: string, prompts: (string | Prompt)[], sampling: SamplingOptions, maxNewTokens: number, seed: number, templateVariables?: TemplateVariables): Promise<Completion[]> {
    if (prompts.length === 0) return [];
    const h = await this.ensure(version);
    const ids = this.ids(h, prompts.map((p) => (typeof p === 'string' ? userPrompt(p) : p)), maxNewTokens, templateVariables);
    const g = await this.generate(version, h, ids, sampling, ids.map(() => maxNewTokens), seed);
    return g.tokens.map((out) => ({ text: h.tokenizer.decode(out, true), tokens: out.length }));
  }

  async serve(version: string, dir: string, rows: ServeRow[], seed: number, onDeltas: (d: { row: number; text: string }[]) => void, templateVariables?: TemplateVariables): Promise<{ rows: ServedRow[]; loadedNow: boolean }> {
    const loadedNow = !this.held.has(version);
    if (loadedNow) await this.load(version, dir);
    const h = await this.ensure(version);
    const out: ServedRow[] = new Array(rows.length);
    // Each row's text streams out as its tokens arrive, held back while it may still become a stop string.
    const stream = new StreamedRows(h.tokenizer, rows.map((r) => r.stop));
    const flush = () => { const d = stream.take(); if (d.length) onDeltas(d); };
    // Rows sampled alike go together.
    const groups = new Map<string, number[]>();
    rows.forEach((r, i) => { const k = JSON.stringify(r.sampling); groups.set(k, [...(groups.get(k) ?? []), i]); });
    for (const members of groups.values()) {
      const ids = this.ids(h, members.map((i) => rows[i]!.messages), Math.max(...members.map((i) => rows[i]!.maxNewTokens)), templateVariables);
      const limits = members.map((i, j) => Math.min(rows[i]!.maxNewTokens, Math.max(0, h.config.maxPositions - ids[j]!.length)));
      const g = await this.generate(version, h, ids, rows[members[0]!]!.sampling, limits, seed, (step) => {
        for (const [j, token] of step) stream.push(members[j]!, token);
        flush();
      });
      members.forEach((i, j) => {
        const text = stream.finish(i, g.tokens[j]!);
        const s = stream.stopped(i);
        out[i] = { text, promptTokens: ids[j]!.length, completionTokens: s.atStop ? s.tokens : g.tokens[j]!.length, finishReason: s.atStop || g.endedBy[j] === 'eos' ? 'stop' : 'length' };
      });
      flush();
    }
    return { rows: out, loadedNow };
  }

  async measureKl(student: string, teacher: string, pairs: Parameters<ModelEngine['measureKl']>[2], o: Parameters<ModelEngine['measureKl']>[3]) {
    if (pairs.length === 0) throw new Error('measureKl: no prompts to measure on');
    const s = await this.ensure(student);
    const t = await this.ensure(teacher);
    if (s.config.vocabSize !== t.config.vocabSize) throw new Error(`measureKl: the student's vocabulary (${s.config.vocabSize}) differs from the teacher's (${t.config.vocabSize})`);
    const context = Math.min(s.config.maxPositions, t.config.maxPositions);
    const fitted = pairs.map((p) => fitWithKnowledge(s.tokenizer, context, p.prompt, p.knowledge, o));
    return this.request<{ meanKl: number; perPair: number[]; tokens: number }>('measureKl', {
      student, teacher, studentIds: fitted.map((f) => f.studentIds), teacherIds: fitted.map((f) => f.teacherIds),
      options: { maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, seed: o.seed, batchSize: o.batchSize },
      eosTokenIds: [...s.tokenizer.eosTokenIds], padTokenId: s.tokenizer.padTokenId ?? 0,
    });
  }

  async trainRound(): Promise<never> {
    throw new Error('the torch engine trains through the torch trainer: set OELD_TRAINER=torch with OELD_ENGINE=torch');
  }

  async memory(): Promise<{ tensors: number; bytes: number }> {
    if (!this.child) return { tensors: 0, bytes: 0 };
    return this.request('memory', {});
  }

  async close(): Promise<void> {
    const child = this.child;
    this.child = null;
    this.held.clear();
    if (!child) return;
    await new Promise<void>((resolve) => {
      const hard = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('close', () => { clearTimeout(hard); resolve(); });
      child.stdin!.end(); // the engine exits when its stdin closes
    });
  }
}

/**
 * Anchor prompts: requests unrelated to any task, on which a round's candidate must stay close to
 * the round-start version (retention). One JSON value per line: a string (one user message) or
 * {"messages": [...]}. Operators replace the file (a task's anchorPromptsFile) with their own.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { userPrompt, type Prompt } from '../model/inference/chat-prompt.ts';

const message = z.object({ role: z.enum(['system', 'user', 'assistant', 'tool']), content: z.string().max(100_000), name: z.string().max(200).optional() }).strict();
const line = z.union([z.string().min(1).max(100_000), z.object({ messages: z.array(message).min(1).max(1000) }).strict()]);

export function readAnchorPrompts(file: string): Prompt[] {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (err) { throw new Error(`anchor prompts ${file}: ${(err as Error).message}`); }
  const prompts: Prompt[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    let json: unknown;
    try { json = JSON.parse(raw); } catch (err) { throw new Error(`anchor prompts ${file}, line ${i + 1}: not JSON (${(err as Error).message})`); }
    const r = line.safeParse(json);
    if (!r.success) throw new Error(`anchor prompts ${file}, line ${i + 1}: expected a string or {"messages": [...]}: ${r.error.issues[0]!.path.join('.')} ${r.error.issues[0]!.message}`);
    prompts.push(typeof r.data === 'string' ? userPrompt(r.data) : r.data.messages.map((m) => ({ ...m })));
  });
  if (prompts.length === 0) throw new Error(`anchor prompts ${file}: the file has no prompts`);
  return prompts;
}

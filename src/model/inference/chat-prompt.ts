/**
 * A prompt as the model's chat template sees it: the messages up to the turn the model answers
 * (a game situation is one user message; a logged chat is the conversation before an assistant
 * turn), and how it is fitted into the model's context. Pure logic over a tokenizer.
 */
import type { Tokenizer } from '../formats/tokenizer.ts';

export type PromptRole = 'system' | 'user' | 'assistant' | 'tool';
/** A chat template's message: its text, and where a logged chat had them, tool calls and the id of the call a tool message answers. */
export interface PromptMessage { role: PromptRole; content: string; name?: string; tool_calls?: unknown[]; tool_call_id?: string }
/** The messages before the reply the model writes (never empty). */
export type Prompt = PromptMessage[];

/** Chat-template variables (e.g. enable_thinking for Qwen3), per task. */
export type TemplateVariables = Record<string, unknown>;

export const userPrompt = (text: string): Prompt => [{ role: 'user', content: text }];

/** The prompt's token ids: its messages and the assistant's opening, as the chat template writes them. */
export function promptIds(tokenizer: Tokenizer, prompt: Prompt, variables?: TemplateVariables): number[] {
  if (prompt.length === 0) throw new Error('a prompt needs at least one message');
  const messages = prompt.map((m) => {
    const out: PromptMessage & Record<string, unknown> = { role: m.role, content: m.content };
    if (m.name !== undefined) out.name = m.name;
    if (m.tool_calls !== undefined) out.tool_calls = m.tool_calls;
    if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
    return out;
  });
  return tokenizer.encode(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true, ...(variables ? { variables } : {}) }));
}

/** Put in front of a message's text where its beginning was cut to fit the context. */
export const CUT_MARK = '[...] ';

/** The fitted prompt with its token ids (so a caller need not encode it again). */
export interface FittedPrompt { prompt: Prompt; ids: number[]; tokens: number; droppedMessages: number; cutCharacters: number }

/**
 * Fits a prompt into `maxTokens` by cutting from the left and keeping the system message: the
 * oldest messages after the system message go first (and with them any assistant or tool
 * messages left at the front, so the kept part opens with the user's words); if the newest
 * message alone is still too long, the beginning of its text is cut (marked with CUT_MARK);
 * only then is the system message's end cut. Throws when not even that fits.
 */
export function fitPrompt(tokenizer: Tokenizer, prompt: Prompt, maxTokens: number, variables?: TemplateVariables): FittedPrompt {
  const encode = (p: Prompt) => promptIds(tokenizer, p, variables);
  const count = (p: Prompt) => encode(p).length;
  const fitted = (p: Prompt, ids: number[], droppedMessages: number, cutCharacters: number): FittedPrompt => ({ prompt: p, ids, tokens: ids.length, droppedMessages, cutCharacters });
  let ids = encode(prompt);
  if (ids.length <= maxTokens) return fitted(prompt, ids, 0, 0);
  const system = prompt[0]!.role === 'system' && prompt.length > 1 ? [prompt[0]!] : [];
  let rest = prompt.slice(system.length);
  let dropped = 0;
  while (rest.length > 1) {
    rest = rest.slice(1);
    dropped++;
    while (rest.length > 1 && rest[0]!.role !== 'user') { rest = rest.slice(1); dropped++; }
    ids = encode([...system, ...rest]);
    if (ids.length <= maxTokens) return fitted([...system, ...rest], ids, dropped, 0);
  }
  // One message left after the system message: keep the longest tail of its text that fits.
  const last = rest[0]!;
  const withTail = (keep: number): Prompt => [...system, { ...last, content: keep >= last.content.length ? last.content : CUT_MARK + last.content.slice(last.content.length - keep) }];
  const keep = longestFitting(last.content.length, (k) => count(withTail(k)) <= maxTokens);
  if (keep !== null) {
    const p = withTail(keep);
    return fitted(p, encode(p), dropped, last.content.length - keep);
  }
  // Even an empty newest message does not fit beside the system message: cut the system text's end.
  if (system.length > 0) {
    const sys = system[0]!;
    const minimal = withTail(0);
    const withHead = (k: number): Prompt => [{ ...sys, content: sys.content.slice(0, k) }, minimal[1]!];
    const k = longestFitting(sys.content.length, (n) => count(withHead(n)) <= maxTokens);
    if (k !== null) {
      const p = withHead(k);
      return fitted(p, encode(p), dropped, last.content.length + sys.content.length - k);
    }
  }
  throw new Error(`a prompt cannot be fitted into ${maxTokens} tokens: the chat template alone needs more`);
}

/** The largest n in [0, max] with fits(n) (fits is monotone: true up to some n), or null if not even 0 fits. */
function longestFitting(max: number, fits: (n: number) => boolean): number | null {
  if (!fits(0)) return null;
  let lo = 0;
  let hi = max;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid; else hi = mid - 1;
  }
  return lo;
}

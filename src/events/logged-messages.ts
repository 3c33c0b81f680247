/**
 * Reading logged chat messages (InteractionRecorded version 2) the way training and extraction
 * need them: text. Content given as parts is its text parts joined by newlines (other parts are
 * counted, never read); null or absent content is empty; the developer role is a system message to
 * a chat template, the legacy function role a tool message. Tool calls travel with the message so
 * that a chat template that knows them can render them. Pure.
 */
import type { EventDataMap } from './schemas.ts';
import type { PromptMessage } from '../model/inference/chat-prompt.ts';

export type LoggedMessage = NonNullable<EventDataMap['InteractionRecorded']['messages']>[number];
type Content = LoggedMessage['content'];

/** The text training reads from a message's content. */
export function contentText(content: Content): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.filter((p) => p.type === 'text').map((p) => p.text ?? '').join('\n');
}

/** Content part types other than text, and how many of each, over all messages (undefined: none). */
export function unsupportedContent(messages: readonly LoggedMessage[]): Record<string, number> | undefined {
  const counts: Record<string, number> = {};
  for (const m of messages) {
    if (!Array.isArray(m.content)) continue;
    for (const p of m.content) if (p.type !== 'text') counts[p.type] = (counts[p.type] ?? 0) + 1;
  }
  return Object.keys(counts).length ? counts : undefined;
}

/** A logged message as a chat template's message. */
export function promptMessage(m: LoggedMessage): PromptMessage {
  const role = m.role === 'developer' ? 'system' : m.role === 'function' ? 'tool' : m.role;
  const out: PromptMessage = { role, content: contentText(m.content) };
  if (m.name !== undefined) out.name = m.name;
  if (m.tool_calls) out.tool_calls = m.tool_calls;
  if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
  return out;
}

/** A message's text with its tool calls written out (`[tool call] name {"arg":1}`), for a trajectory read by extraction. */
export function renderedText(m: LoggedMessage): string {
  const parts = [contentText(m.content)].filter((t) => t.length > 0);
  for (const call of m.tool_calls ?? []) parts.push(`[tool call] ${describeCall(call)}`);
  return parts.join('\n');
}

function describeCall(call: unknown): string {
  const fn = call !== null && typeof call === 'object' ? (call as { function?: { name?: unknown; arguments?: unknown } }).function : undefined;
  if (fn && typeof fn.name === 'string') return `${fn.name} ${typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {})}`;
  return JSON.stringify(call);
}

/**
 * An OpenAI chat-completions request body as oeld serves it: checked field by field (errors name
 * the field and the value), then the settings of one served row. Pure.
 */
import { z } from 'zod';
import { promptMessage } from '../events/logged-messages.ts';
import { loggedMessage } from '../events/schemas.ts';
import { preview } from '../events/preview.ts';
import { findUnstorableString } from '../events/validate.ts';
import type { ServeRow } from '../model/inference/serve-batch.ts';

const Body = z.looseObject({
  model: z.string().min(1).max(200),
  messages: z.array(loggedMessage).min(1).max(1000),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  max_tokens: z.number().int().min(1).nullable().optional(),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  stop: z.union([z.string().min(1).max(200), z.array(z.string().min(1).max(200)).max(4)]).nullable().optional(),
  n: z.literal(1, 'oeld answers one choice per request (n=1)').nullable().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  metadata: z.record(z.string(), z.string().max(512)).nullable().optional(),
});

/** Fields oeld does not do and will not pretend to (a request with them is refused, not silently half-answered). */
const REFUSED = ['tools', 'tool_choice', 'functions', 'function_call', 'response_format', 'logprobs', 'top_logprobs', 'audio', 'modalities', 'prediction'] as const;

export interface ChatRequest {
  model: string;
  /** The messages as sent (recorded with the answer). */
  messages: z.infer<typeof loggedMessage>[];
  row: ServeRow;
  stream: boolean;
  includeUsage: boolean;
  /** The task the exchange is recorded under (`metadata.task`), if given. */
  taskId?: string;
  /** The request's settings, kept with the recorded exchange. */
  settings: Record<string, unknown>;
}

export class RequestError extends Error {
  constructor(readonly field: string, message: string) { super(message); this.name = 'RequestError'; }
}

export function parseChatRequest(body: unknown, o: { defaultMaxTokens: number; maxTokensLimit: number }): ChatRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new RequestError('body', `the body must be a JSON object (got ${preview(body)})`);
  for (const f of REFUSED) {
    const v = (body as Record<string, unknown>)[f];
    if (v !== undefined && v !== null && v !== false) throw new RequestError(f, `${f}: not supported by oeld's endpoint (got ${preview(v)})`);
  }
  const r = Body.safeParse(body);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const field = i.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('').replace(/^\./, '') || 'body';
    let value: unknown = body;
    for (const k of i.path) value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[k] : undefined;
    throw new RequestError(field, `${field}: ${i.message}${value !== undefined ? ` (got ${preview(value)})` : ''}`);
  }
  const b = r.data;
  // What the log cannot store is refused here, as at every intake (the answer is recorded with the request).
  const unstorable = findUnstorableString(b.messages, 'messages');
  if (unstorable) throw new RequestError(unstorable.field, `${unstorable.field}: ${unstorable.reason}`);
  const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? o.defaultMaxTokens;
  if (maxTokens > o.maxTokensLimit) throw new RequestError('max_tokens', `max_tokens: at most ${o.maxTokensLimit} for this model (got ${maxTokens})`);
  const stop = b.stop === undefined || b.stop === null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop;
  const temperature = b.temperature ?? 1;
  const topP = b.top_p ?? 1;
  return {
    model: b.model,
    messages: b.messages,
    row: { messages: b.messages.map(promptMessage), sampling: { temperature, topP, topK: 0 }, maxNewTokens: maxTokens, stop, stream: b.stream === true },
    stream: b.stream === true,
    includeUsage: b.stream_options?.include_usage === true,
    ...(b.metadata?.task ? { taskId: b.metadata.task } : {}),
    settings: { temperature, top_p: topP, max_tokens: maxTokens, ...(stop.length ? { stop } : {}), ...(b.seed !== undefined && b.seed !== null ? { seed: b.seed } : {}) },
  };
}

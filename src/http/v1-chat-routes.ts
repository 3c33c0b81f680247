/**
 * The OpenAI-compatible endpoint: GET /v1/models, POST /v1/chat/completions (JSON or server-sent
 * events) and POST /v1/feedback. Every answered exchange is recorded as an interaction of the
 * version that answered; feedback on it becomes its outcome for the rounds.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { preview } from '../events/preview.ts';
import { STREAMS } from '../events/streams.ts';
import { DEFAULT_TASK_ID } from '../tasks/task.ts';
import { feedbackEventId } from '../rounds/round-queries.ts';
import { parseChatRequest, RequestError } from '../serving/chat-request.ts';
import { servedEventId, type ExchangeRecorder } from '../serving/exchange-recorder.ts';
import { NoActiveVersionError, QueueFullError, type ServingQueue } from '../serving/serving-queue.ts';
import { readEventsByIds } from '../store/log-queries.ts';
import type { EventStore } from '../store/event-store.ts';
import { HttpError, type Route } from './server.ts';

export interface ChatRoutesDeps {
  store: EventStore;
  queue: ServingQueue;
  /** Where answers are recorded; undefined: they are not (OELD_SERVE_RECORD=false). */
  recorder?: ExchangeRecorder;
  /** Names that answer with the active version (OELD_SERVED_MODEL_NAME). */
  servedNames: readonly string[];
  activeVersion: () => Promise<string | null>;
  defaultMaxTokens: number;
  maxTokensLimit: () => Promise<number>;
  /** Called once per answered request (metrics). */
  onAnswered?: (a: { stream: boolean; seconds: number; completionTokens: number }) => void;
  /** Called when a request is refused because the queue is full. */
  onRefused?: () => void;
}

const FeedbackBody = z.object({
  response_id: z.string().min(1).max(200),
  success: z.boolean().optional(),
  reward: z.number().finite().optional(),
  feedback: z.string().max(100_000).refine((t) => !t.includes('\u0000') && t.isWellFormed(), 'must not contain U+0000 or lone surrogates').optional(),
}).strict().refine((b) => b.success !== undefined || b.reward !== undefined || b.feedback !== undefined, { message: 'give success, reward or feedback (or several)', path: ['success'] });

function requireJson(req: IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, `content-type must be application/json (got ${JSON.stringify(type || 'none')})`);
}

const sse = (res: ServerResponse, data: unknown): boolean => res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);

export function chatRoutes(d: ChatRoutesDeps): Route[] {
  /** The names answered: the served names and the active version's own. */
  const models = (active: string | null) => [...d.servedNames, ...(active ? [active] : [])];
  return [
    {
      method: 'GET', path: '/v1/models', api: true,
      handle: async () => ({ status: 200, body: { object: 'list', data: models(await d.activeVersion()).map((id) => ({ id, object: 'model', created: 0, owned_by: 'oeld' })) } }),
    },
    {
      method: 'POST', path: '/v1/chat/completions', api: true,
      handle: async (body, req, res) => {
        requireJson(req);
        let request;
        try { request = parseChatRequest(body, { defaultMaxTokens: d.defaultMaxTokens, maxTokensLimit: await d.maxTokensLimit() }); } catch (err) {
          if (err instanceof RequestError) throw new HttpError(400, err.message);
          throw err;
        }
        const active = await d.activeVersion();
        const names = models(active);
        if (!names.includes(request.model)) {
          throw new HttpError(404, `model ${preview(request.model)} is not served here; served: ${names.map((m) => JSON.stringify(m)).join(', ') || 'none (no active version yet)'}`);
        }
        if (!active) throw new HttpError(503, 'no model version is active yet', { 'retry-after': '5' });
        const responseId = `chatcmpl-${randomUUID()}`;
        const created = Math.floor(Date.now() / 1000);
        const started = performance.now();
        let closed = false;
        res.on('close', () => { closed = !res.writableFinished; });
        let version = active;
        const chunk = (delta: Record<string, unknown>, finish: string | null) =>
          ({ id: responseId, object: 'chat.completion.chunk', created, model: version, choices: [{ index: 0, delta, finish_reason: finish }] });
        let served;
        try {
          served = await d.queue.submit(request.row, {
            cancelled: () => closed,
            start: (v) => {
              version = v;
              if (request.stream && !closed) {
                res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-oeld-version': v });
                sse(res, chunk({ role: 'assistant', content: '' }, null));
              }
            },
            text: (t) => { if (request.stream && !closed) sse(res, chunk({ content: t }, null)); },
          });
        } catch (err) {
          if (err instanceof QueueFullError) d.onRefused?.();
          if (err instanceof QueueFullError) throw new HttpError(429, `${err.message}; retry after ${err.retryAfterSeconds} s`, { 'retry-after': String(err.retryAfterSeconds) });
          if (err instanceof NoActiveVersionError) throw new HttpError(503, err.message, { 'retry-after': '5' });
          if (res.headersSent) { res.end(); return { streamed: true }; }
          throw err;
        }
        const r = served.result;
        const usage = { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens };
        d.onAnswered?.({ stream: request.stream, seconds: (performance.now() - started) / 1000, completionTokens: r.completionTokens });
        if (!closed && d.recorder) {
          d.recorder.record({
            responseId, version: served.version, taskId: request.taskId ?? DEFAULT_TASK_ID, messages: request.messages,
            reply: r.text, finishReason: r.finishReason, usage, settings: request.settings, requestedModel: request.model,
          });
        }
        if (!request.stream) {
          return {
            status: 200, headers: { 'x-oeld-version': served.version },
            body: { id: responseId, object: 'chat.completion', created, model: served.version, choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: r.finishReason }], usage },
          };
        }
        if (!closed) {
          sse(res, chunk({}, r.finishReason));
          if (request.includeUsage) sse(res, { id: responseId, object: 'chat.completion.chunk', created, model: served.version, choices: [], usage });
          sse(res, '[DONE]');
          res.end();
        }
        return { streamed: true };
      },
    },
    {
      method: 'POST', path: '/v1/feedback', api: true,
      handle: async (body, req) => {
        requireJson(req);
        const parsed = FeedbackBody.safeParse(body);
        if (!parsed.success) {
          const i = parsed.error.issues[0]!;
          const field = i.path.join('.') || 'body';
          const value = field !== 'body' && body && typeof body === 'object' ? (body as Record<string, unknown>)[String(i.path[0])] : undefined;
          throw new HttpError(400, `${field}: ${i.message}${value !== undefined ? ` (got ${preview(value)})` : ''}`);
        }
        const { response_id: interactionId, ...outcome } = parsed.data;
        const servedId = servedEventId(interactionId);
        if (!d.recorder) throw new HttpError(404, 'answers are not recorded here (OELD_SERVE_RECORD=false): there is nothing to give feedback on');
        if (d.recorder.isPending(servedId)) await d.recorder.flush();
        if ((await readEventsByIds(d.store.sql, [servedId])).length === 0) throw new HttpError(404, `no answer with id ${preview(interactionId)} was served and recorded here`);
        const r = await d.store.append([{ streamId: STREAMS.interaction(interactionId), events: [{ id: feedbackEventId(interactionId), type: 'InteractionFeedbackRecorded', data: { interactionId, outcome } }] }], { onConflict: 'report' });
        if (r.conflicts.length) throw new HttpError(409, `feedback on ${interactionId} was already given, and differently`);
        return { status: r.appended.length ? 201 : 200, body: { response_id: interactionId, recorded: r.appended.length > 0, duplicate: r.duplicates.length > 0 } };
      },
    },
  ];
}

/**
 * Extraction through an OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server, ...): the
 * production way to ask the policy model for experience items. On-policy consistency is enforced
 * here: the endpoint must declare the model version that produced the trajectories, both before
 * the round starts and on every answer (an endpoint redeployed mid-round is caught).
 */
import type { Completion } from '../engine/model-engine.ts';
import type { SamplingOptions } from '../model/inference/sampling.ts';
import type { ExtractFn } from './extract-pool.ts';
import { assertSameModelVersion } from './model-version-guard.ts';

export interface OpenAiEndpointOptions {
  /** Base URL, e.g. http://127.0.0.1:8000/v1 (with or without trailing slash). */
  baseUrl: string;
  /** Sent as Authorization: Bearer. */
  apiKey?: string;
  /** The model version the trajectories came from; must equal what the endpoint serves. */
  modelVersion: string;
  sampling: SamplingOptions;
  maxTokens: number;
  /** The task's chat-template variables, sent as vLLM's and SGLang's `chat_template_kwargs` (e.g. enable_thinking). */
  templateVariables?: Record<string, unknown>;
  /** Per request, default 120000. */
  timeoutMs?: number;
  /** Parallel requests per batch, default 4. */
  concurrency?: number;
  /** Default global fetch. */
  fetchImpl?: typeof fetch;
}

/** What is needed to talk to the endpoint at all (no sampling or version to check). */
export type EndpointConnection = Pick<OpenAiEndpointOptions, 'baseUrl' | 'apiKey' | 'timeoutMs' | 'fetchImpl'>;

const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_CONCURRENCY = 4;
const BODY_SNIPPET_CHARS = 200;

/**
 * The model version the endpoint declares: the id of the single model GET {baseUrl}/models lists.
 * Several models (e.g. a base plus LoRA adapters) are refused: which one answers would be ambiguous.
 */
export async function servedModelVersion(o: EndpointConnection): Promise<string> {
  const url = `${trimBase(o.baseUrl)}/models`;
  const res = await send(o, url, { method: 'GET', headers: headers(o.apiKey) });
  const text = await readBody(res, url, 'GET');
  if (res.status !== 200) throw new Error(`extraction endpoint GET ${url}: HTTP ${res.status}: ${snippet(text)}`);
  const body = parseJson(text, url, 'GET');
  const data = isRecord(body) ? body['data'] : undefined;
  if (!Array.isArray(data)) throw new Error(`extraction endpoint GET ${url}: malformed body: expected a "data" array (OpenAI model list), got ${snippet(text)}`);
  const ids = data.map((m, i) => {
    const id = isRecord(m) ? m['id'] : undefined;
    if (typeof id !== 'string' || id.trim() === '') throw new Error(`extraction endpoint GET ${url}: malformed body: data[${i}].id is not a non-empty string`);
    return id;
  });
  if (ids.length !== 1) {
    throw new Error(`extraction endpoint GET ${url}: must serve exactly one model (its id is the declared model version), but it serves ${ids.length}` +
      (ids.length > 0 ? `: ${ids.map((id) => JSON.stringify(id)).join(', ')}` : ''));
  }
  return ids[0]!;
}

/**
 * Checks the endpoint serves o.modelVersion (ModelVersionMismatchError before any completion
 * request otherwise) and returns the ExtractFn the round calls.
 */
export async function openAiExtractFn(o: OpenAiEndpointOptions): Promise<ExtractFn> {
  const concurrency = o.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`extraction endpoint: concurrency must be a positive integer, got ${concurrency}`);
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 1) throw new RangeError(`extraction endpoint: maxTokens must be a positive integer, got ${o.maxTokens}`);
  if (o.timeoutMs !== undefined && !(o.timeoutMs > 0)) throw new RangeError(`extraction endpoint: timeoutMs must be positive, got ${o.timeoutMs}`);
  const served = await servedModelVersion(o);
  assertSameModelVersion(served, o.modelVersion);
  const url = `${trimBase(o.baseUrl)}/chat/completions`;

  const completeOne = async (prompt: string, seed: number, cancel: AbortSignal): Promise<Completion> => {
    const body = {
      model: served,
      messages: [{ role: 'user', content: prompt }],
      temperature: o.sampling.temperature,
      top_p: o.sampling.topP,
      // topK 0 means "no truncation" here; not every server accepts top_k, so it is only sent when it matters.
      ...(o.sampling.topK > 0 ? { top_k: o.sampling.topK } : {}),
      max_tokens: o.maxTokens,
      seed,
      ...(o.templateVariables && Object.keys(o.templateVariables).length ? { chat_template_kwargs: o.templateVariables } : {}),
    };
    const res = await send(o, url, { method: 'POST', headers: headers(o.apiKey, true), body: JSON.stringify(body) }, cancel);
    const text = await readBody(res, url, 'POST');
    if (!res.ok) throw new Error(`extraction endpoint POST ${url}: HTTP ${res.status}: ${snippet(text)}`);
    const parsed = parseJson(text, url, 'POST');
    if (!isRecord(parsed)) throw new Error(`extraction endpoint POST ${url}: malformed body: expected a JSON object, got ${snippet(text)}`);
    // A redeploy between the round's check and this answer would silently mix model versions.
    const model = parsed['model'];
    if (model !== undefined && model !== null) assertSameModelVersion(String(model), o.modelVersion);
    const choices = parsed['choices'];
    const first = Array.isArray(choices) ? choices[0] : undefined;
    const message = isRecord(first) ? first['message'] : undefined;
    const content = isRecord(message) ? message['content'] : undefined;
    if (typeof content !== 'string') throw new Error(`extraction endpoint POST ${url}: malformed body: choices[0].message.content is not a string: ${snippet(text)}`);
    const usage = parsed['usage'];
    const tokens = isRecord(usage) && typeof usage['completion_tokens'] === 'number' ? usage['completion_tokens'] : 0;
    return { text: content, tokens };
  };

  return async (prompts, seed) => {
    const results: Completion[] = new Array(prompts.length);
    // On the first failure the batch is lost anyway: stop the requests still running.
    const batch = new AbortController();
    let next = 0;
    const worker = async () => {
      while (next < prompts.length && !batch.signal.aborted) {
        const i = next++;
        // One seed per prompt: the same seed for every slot would correlate samples of similar prompts.
        results[i] = await completeOne(prompts[i]!, ((seed >>> 0) + i) >>> 0, batch.signal);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, prompts.length) }, worker));
    } catch (err) {
      batch.abort();
      throw err;
    }
    return results;
  };
}

function trimBase(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '');
}

function headers(apiKey: string | undefined, json = false): Record<string, string> {
  const h: Record<string, string> = { accept: 'application/json' };
  if (json) h['content-type'] = 'application/json';
  if (apiKey !== undefined && apiKey !== '') h['authorization'] = `Bearer ${apiKey}`;
  return h;
}

/** fetch with the per-request timeout (and the batch's cancellation), errors naming the URL. */
async function send(o: EndpointConnection, url: string, init: RequestInit, cancel?: AbortSignal): Promise<Response> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = cancel ? AbortSignal.any([timeout, cancel]) : timeout;
  try {
    return await (o.fetchImpl ?? fetch)(url, { ...init, signal });
  } catch (err) {
    throw requestError(err, url, init.method ?? 'GET', timeout, timeoutMs);
  }
}

/** The body is read under the same signal as the request, so a stalled body also times out. */
async function readBody(res: Response, url: string, method: string): Promise<string> {
  try {
    return await res.text();
  } catch (err) {
    throw new Error(`extraction endpoint ${method} ${url}: reading the response body failed: ${(err as Error).message}`, { cause: err });
  }
}

function requestError(err: unknown, url: string, method: string, timeout: AbortSignal, timeoutMs: number): Error {
  if (timeout.aborted) return new Error(`extraction endpoint ${method} ${url}: no response within ${timeoutMs} ms`, { cause: err });
  return new Error(`extraction endpoint ${method} ${url}: request failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

function parseJson(text: string, url: string, method: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`extraction endpoint ${method} ${url}: malformed body: not JSON: ${snippet(text)}`);
  }
}

function snippet(text: string): string {
  return JSON.stringify(text.slice(0, BODY_SNIPPET_CHARS));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The OpenAI-compatible endpoint wired: the queue in front of the model worker (shared with the
 * learning loop when it runs, else started at the first request), the recorder of exchanges, the
 * routes and their metrics.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sql } from '../db/sql.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { verifyPublishedWeights, WeightsMismatchError } from '../engine/verify-version.ts';
import { recordLoadRefusal } from '../operations/load-refusals.ts';
import type { Metrics } from '../http/metrics.ts';
import type { Route } from '../http/server.ts';
import { chatRoutes } from '../http/v1-chat-routes.ts';
import type { Logger } from '../log.ts';
import { resolveConfig } from '../model/network/model-config.ts';
import { readActiveModel } from '../projections/models/model-projection.ts';
import type { EventStore } from '../store/event-store.ts';
import { ExchangeRecorder } from './exchange-recorder.ts';
import { ServingQueue } from './serving-queue.ts';

export interface ServingSettings {
  servedNames: readonly string[]; maxQueued: number; maxBatch: number; defaultMaxTokens: number; record: boolean;
  /** Longest an answer waits to be appended with the next batch (OELD_SERVE_RECORD_FLUSH_MS). */
  recordFlushMs: number;
}

/** How long the active version read from the registry is reused: a newly activated one answers within this. */
export const ACTIVE_VERSION_TTL_MS = 250;

/** readActiveModel at most once per ttl: every request and batch asks, and one query serves them all. */
function cachedActiveModel(sql: Sql, ttlMs: number): () => Promise<Awaited<ReturnType<typeof readActiveModel>>> {
  let at = -Infinity;
  let value: Promise<Awaited<ReturnType<typeof readActiveModel>>> | undefined;
  return () => {
    if (!value || performance.now() - at > ttlMs) {
      at = performance.now();
      value = readActiveModel(sql);
      value.catch(() => { value = undefined; });
    }
    return value;
  };
}

export function createServing(sql: Sql, store: EventStore, engine: () => ModelEngine, s: ServingSettings, metrics: Metrics, log: Logger) {
  /** Each version's check, made once: requests sent together share it rather than each hashing the weights. */
  const verified = new Map<string, Promise<void>>();
  const positions = new Map<string, number>();
  const readActive = cachedActiveModel(sql, ACTIVE_VERSION_TTL_MS);
  const active = async () => {
    const a = await readActive();
    if (!a) return null;
    // The weights are checked against their published sha256 before this queue first loads them
    // (a failed check is tried again by the next request).
    let check = verified.get(a.version);
    if (!check) {
      check = verifyPublishedWeights(a).catch(async (err) => {
        verified.delete(a.version);
        if (err instanceof WeightsMismatchError) {
          metrics.loadRefusals.inc({ by: 'serving' });
          await recordLoadRefusal(store, err, 'serving').catch(() => {});
        }
        throw err;
      });
      verified.set(a.version, check);
    }
    await check;
    return { version: a.version, path: a.path };
  };
  // The engine is asked for at each use: without the learning loop the worker starts at the first request.
  const queue = new ServingQueue({ unload: (v) => engine().unload(v), serve: (...a) => engine().serve(...a) }, {
    maxQueued: s.maxQueued, maxBatch: s.maxBatch, active,
    onBatch: (b) => { metrics.serveBatchRows.observe(b.rows); metrics.serveTokens.inc(b.tokens); },
  });
  const recorder = new ExchangeRecorder(store, {
    flushMs: s.recordFlushMs, maxBatch: 500, maxPending: 100_000,
    onError: (err, dropped) => (dropped ? log.error({ err }, 'a served exchange could not be recorded and was dropped') : log.warn({ err }, 'recording served exchanges failed; retrying')),
  });
  const maxTokensLimit = async () => {
    const a = await readActive();
    if (!a) return 1;
    let n = positions.get(a.version);
    if (n === undefined) {
      n = resolveConfig(JSON.parse(readFileSync(join(a.path, 'config.json'), 'utf8'))).maxPositions - 1;
      positions.set(a.version, n);
    }
    return n;
  };
  const routes: Route[] = chatRoutes({
    store, queue, recorder: s.record ? recorder : undefined, servedNames: s.servedNames, defaultMaxTokens: s.defaultMaxTokens, maxTokensLimit,
    activeVersion: async () => (await readActive())?.version ?? null,
    onAnswered: (a) => { metrics.serveRequests.inc({ outcome: 'answered', stream: String(a.stream) }); metrics.serveSeconds.observe(a.seconds); },
    onRefused: () => metrics.serveRequests.inc({ outcome: 'refused', stream: 'unknown' }),
  });
  return {
    routes,
    queued: () => queue.queued,
    close: () => recorder.close(),
  };
}

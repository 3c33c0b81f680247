/**
 * Served exchanges into the log: each answered request becomes an InteractionRecorded of the
 * version that answered (source `served`), appended in batches (every `flushMs`, or sooner when
 * `maxBatch` wait) so that recording costs the endpoint little. Their data is built from a
 * request the endpoint validated, so they are appended as trusted (not validated again). A batch
 * the database refuses for the database's own reasons (away, restarting) is retried with the next
 * flush; one refused for its content is appended event by event, validated, and what still fails
 * is dropped, counted and reported. Past `maxPending` the oldest are dropped and counted.
 * Exchanges still waiting are lost if the process dies (at most `flushMs` of them).
 */
import { uuidFromKey } from '../events/ids.ts';
import type { NewEvent } from '../events/envelope.ts';
import type { EventDataMap } from '../events/schemas.ts';
import { STREAMS } from '../events/streams.ts';
import type { EventStore } from '../store/event-store.ts';
import { isTransientDatabaseError } from '../db/transient-errors.ts';

export const servedEventId = (responseId: string): string => uuidFromKey(`served:${responseId}`);

export interface ServedExchange {
  responseId: string;
  version: string;
  taskId: string;
  messages: NonNullable<EventDataMap['InteractionRecorded']['messages']>;
  reply: string;
  finishReason: string;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  settings: Record<string, unknown>;
  /** The name the request asked for (a served name, or the version itself). */
  requestedModel: string;
}

/**
 * A reply as PostgreSQL can store it: U+0000 (which jsonb cannot hold; an untrained model can
 * write it) and lone surrogates become U+FFFD. The client got the reply as written.
 */
export const storableText = (t: string): string => t.replace(/\u0000/g, '\uFFFD').toWellFormed();

/** The event of one served exchange. Pure. */
export function servedInteraction(x: ServedExchange): NewEvent<'InteractionRecorded'> {
  return {
    id: servedEventId(x.responseId), type: 'InteractionRecorded',
    data: {
      interactionId: x.responseId, source: { kind: 'served', responseId: x.responseId }, modelVersion: x.version, taskId: x.taskId,
      messages: [...x.messages, { role: 'assistant', content: storableText(x.reply) }],
      extra: { request: { model: x.requestedModel, ...x.settings }, usage: x.usage, finish_reason: x.finishReason },
    },
  };
}

export class ExchangeRecorder {
  private pending: NewEvent<'InteractionRecorded'>[] = [];
  private readonly pendingIds = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  dropped = 0;

  constructor(private readonly store: EventStore, private readonly o: { flushMs: number; maxBatch: number; maxPending: number; onError?: (err: unknown, dropped: number) => void }) {}

  record(x: ServedExchange): void {
    const e = servedInteraction(x);
    this.pending.push(e);
    this.pendingIds.add(e.id);
    while (this.pending.length > this.o.maxPending) { this.pendingIds.delete(this.pending.shift()!.id); this.dropped++; }
    if (this.pending.length >= this.o.maxBatch) void this.flush();
    else this.timer ??= setTimeout(() => { this.timer = undefined; void this.flush(); }, this.o.flushMs);
  }

  /** Whether the exchange with this event id is recorded or waiting to be. */
  isPending(eventId: string): boolean { return this.pendingIds.has(eventId); }

  /** Appends what waits; resolves when nothing waits (or the database is away: then a later flush retries). */
  flush(): Promise<void> {
    if (!this.flushing) {
      // Assigned before it can settle, and cleared only by the run that set it: a drain that finds
      // nothing to do must not leave a settled promise behind for every later flush to return.
      const run = this.drain();
      this.flushing = run;
      void run.finally(() => { if (this.flushing === run) this.flushing = undefined; });
    }
    return this.flushing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.slice(0, this.o.maxBatch);
        const request = (e: NewEvent<'InteractionRecorded'>) => ({ streamId: STREAMS.interaction(e.data.interactionId), events: [e] });
        try {
          await this.store.append(batch.map(request), { trusted: true });
        } catch (err) {
          if (isTransientDatabaseError(err)) throw err;
          // Refused for its content: one by one, validated, so that one bad exchange costs only itself.
          for (const e of batch) {
            try { await this.store.append([request(e)]); } catch (one) {
              if (isTransientDatabaseError(one)) throw one;
              this.dropped++;
              this.o.onError?.(one, 1);
            }
          }
        }
        this.pending.splice(0, batch.length);
        for (const e of batch) this.pendingIds.delete(e.id);
      }
    } catch (err) {
      this.o.onError?.(err, 0);
      this.timer ??= setTimeout(() => { this.timer = undefined; void this.flush(); }, Math.max(this.o.flushMs, 1000));
    }
  }

  /** Appends what waits, once; what still cannot be appended is given up (counted in `dropped`). */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dropped += this.pending.length;
  }
}

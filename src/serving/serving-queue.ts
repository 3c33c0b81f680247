/**
 * The chat endpoint's queue in front of the model worker: requests wait (at most `maxQueued`;
 * more are refused at once so the caller can retry), and whenever the worker is free the waiting
 * ones, up to `maxBatch`, are answered as one batch by the version active at that moment. A
 * version activated while a batch runs answers the next batch; the running one finishes on its
 * own. A version the queue had to load and that is no longer active afterwards is unloaded.
 */
import type { ModelEngine } from '../engine/model-engine.ts';
import type { ServedRow, ServeRow } from '../model/inference/serve-batch.ts';

/** The longest a batch waits for more requests when the last one was larger (see runBatch). */
export const BATCH_WAIT_MS = 5;

export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) { super('the model is busy: too many requests are waiting'); this.name = 'QueueFullError'; }
}
export class NoActiveVersionError extends Error {
  constructor() { super('no model version is active yet'); this.name = 'NoActiveVersionError'; }
}

export interface ActiveVersion { version: string; path: string }
export interface Served { version: string; result: ServedRow }

interface Waiting {
  row: ServeRow;
  onStart: (version: string) => void;
  onText: (text: string) => void;
  cancelled: () => boolean;
  resolve: (s: Served) => void;
  reject: (e: Error) => void;
}

export interface ServingQueueOptions {
  maxQueued: number;
  maxBatch: number;
  /** The active version, checked (sha256) before it is first loaded; null: none yet. */
  active: () => Promise<ActiveVersion | null>;
  onBatch?: (b: { version: string; rows: number; seconds: number; tokens: number }) => void;
}

export class ServingQueue {
  private readonly waiting: Waiting[] = [];
  private busy = false;
  private lastBatchSeconds = 1;
  private lastBatchRows = 0;
  private seed = 1;

  constructor(private readonly engine: Pick<ModelEngine, 'serve' | 'unload'>, private readonly o: ServingQueueOptions) {}

  get queued(): number { return this.waiting.length; }

  /**
   * Answers one request: `start` hears the version that answers when its batch begins, `text` the
   * text as it is written. Throws QueueFullError when `maxQueued` requests wait already.
   */
  submit(row: ServeRow, on: { text?: (text: string) => void; start?: (version: string) => void; cancelled?: () => boolean } = {}): Promise<Served> {
    if (this.waiting.length >= this.o.maxQueued) throw new QueueFullError(Math.max(1, Math.ceil(this.lastBatchSeconds)));
    const p = new Promise<Served>((resolve, reject) => this.waiting.push({
      row, onText: on.text ?? (() => {}), onStart: on.start ?? (() => {}), cancelled: on.cancelled ?? (() => false), resolve, reject,
    }));
    this.dispatch();
    return p;
  }

  private dispatch(): void {
    if (this.busy || this.waiting.length === 0) return;
    this.busy = true;
    void this.runBatch().finally(() => { this.busy = false; this.dispatch(); });
  }

  private async runBatch(): Promise<void> {
    // Under load, the answers of a batch bring their clients' next requests a moment later: when
    // fewer wait than the last batch held, the batch waits a little for them (at most a tenth of
    // the last batch's time, and BATCH_WAIT_MS), rather than starting with one and leaving the
    // rest for a whole batch more. A lone client never waits.
    if (this.waiting.length < Math.min(this.lastBatchRows, this.o.maxBatch)) {
      const deadline = performance.now() + Math.min(BATCH_WAIT_MS, 100 * this.lastBatchSeconds);
      while (this.waiting.length < Math.min(this.lastBatchRows, this.o.maxBatch) && performance.now() < deadline) await new Promise((r) => setImmediate(r));
    }
    // Requests whose callers went away while they waited are dropped, not decoded.
    const batch: Waiting[] = [];
    while (batch.length < this.o.maxBatch && this.waiting.length > 0) {
      const w = this.waiting.shift()!;
      if (w.cancelled()) w.reject(new Error('the request was cancelled before it was answered'));
      else batch.push(w);
    }
    if (batch.length === 0) return;
    const started = performance.now();
    try {
      const active = await this.o.active();
      if (!active) throw new NoActiveVersionError();
      for (const w of batch) { try { w.onStart(active.version); } catch { /* the caller's */ } }
      const r = await this.engine.serve(active.version, active.path, batch.map((w) => w.row), this.seed++,
        (deltas) => { for (const d of deltas) { try { batch[d.row]!.onText(d.text); } catch { /* a caller's stream error is the caller's */ } } });
      this.lastBatchSeconds = (performance.now() - started) / 1000;
      this.lastBatchRows = batch.length;
      this.o.onBatch?.({ version: active.version, rows: batch.length, seconds: this.lastBatchSeconds, tokens: r.rows.reduce((n, x) => n + x.completionTokens, 0) });
      batch.forEach((w, i) => w.resolve({ version: active.version, result: r.rows[i]! }));
      if (r.loadedNow && (await this.o.active())?.version !== active.version) await this.engine.unload(active.version).catch(() => {});
    } catch (err) {
      for (const w of batch) w.reject(err as Error);
    }
  }
}

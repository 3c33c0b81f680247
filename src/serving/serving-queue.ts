/**
 * The chat endpoint's queue in front of the model worker: requests are answered at most `maxBatch`
 * at a time; more wait (at most `maxQueued`; more are refused at once so the caller can retry).
 * A request goes to the worker as soon as there is room, by the version active at that moment, and
 * joins the batch the worker is running for that version (continuous batching: policy-host.ts). A
 * version activated while requests run answers the requests sent after it; those running finish on
 * their own. A version the queue had to load and that is no longer active afterwards is unloaded.
 */
import type { ModelEngine } from '../engine/model-engine.ts';
import type { ServedRow, ServeRow } from '../model/inference/serve-batch.ts';

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
  /** After each answered send: its version, the requests running with it when it was sent (itself included), seconds, tokens. */
  onBatch?: (b: { version: string; rows: number; seconds: number; tokens: number }) => void;
}

export class ServingQueue {
  private readonly waiting: Waiting[] = [];
  /** Requests sent to the worker and not answered yet. */
  private running = 0;
  /** Seconds the last answered request took: how long a refused caller is asked to wait. */
  private lastSeconds = 1;
  private seed = 1;

  constructor(private readonly engine: Pick<ModelEngine, 'serve' | 'unload'>, private readonly o: ServingQueueOptions) {}

  get queued(): number { return this.waiting.length; }

  /**
   * Answers one request: `start` hears the version that answers when it goes to the worker, `text`
   * the text as it is written. Throws QueueFullError when `maxQueued` requests wait already.
   */
  submit(row: ServeRow, on: { text?: (text: string) => void; start?: (version: string) => void; cancelled?: () => boolean } = {}): Promise<Served> {
    if (this.waiting.length >= this.o.maxQueued) throw new QueueFullError(Math.max(1, Math.ceil(this.lastSeconds)));
    const p = new Promise<Served>((resolve, reject) => this.waiting.push({
      row, onText: on.text ?? (() => {}), onStart: on.start ?? (() => {}), cancelled: on.cancelled ?? (() => false), resolve, reject,
    }));
    this.dispatch();
    return p;
  }

  /** Sends waiting requests while fewer than maxBatch run; requests whose callers went away meanwhile are dropped, not decoded. */
  private dispatch(): void {
    const batch: Waiting[] = [];
    while (this.running + batch.length < this.o.maxBatch && this.waiting.length > 0) {
      const w = this.waiting.shift()!;
      if (w.cancelled()) w.reject(new Error('the request was cancelled before it was answered'));
      else batch.push(w);
    }
    if (batch.length === 0) return;
    this.running += batch.length;
    void this.send(batch).finally(() => { this.running -= batch.length; this.dispatch(); });
  }

  private async send(batch: Waiting[]): Promise<void> {
    const started = performance.now();
    const together = this.running;
    try {
      const active = await this.o.active();
      if (!active) throw new NoActiveVersionError();
      for (const w of batch) { try { w.onStart(active.version); } catch { /* the caller's */ } }
      const r = await this.engine.serve(active.version, active.path, batch.map((w) => w.row), this.seed++,
        (deltas) => { for (const d of deltas) { try { batch[d.row]!.onText(d.text); } catch { /* a caller's stream error is the caller's */ } } });
      this.lastSeconds = (performance.now() - started) / 1000;
      this.o.onBatch?.({ version: active.version, rows: together, seconds: this.lastSeconds, tokens: r.rows.reduce((n, x) => n + x.completionTokens, 0) });
      batch.forEach((w, i) => w.resolve({ version: active.version, result: r.rows[i]! }));
      if (r.loadedNow && (await this.o.active())?.version !== active.version) await this.engine.unload(active.version).catch(() => {});
    } catch (err) {
      for (const w of batch) w.reject(err as Error);
    }
  }
}

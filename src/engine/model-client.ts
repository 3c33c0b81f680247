import { Worker } from 'node:worker_threads';
import type { WorkerProgress, WorkerRequest, WorkerResponse, WorkerResult } from './worker-protocol.ts';

type Req = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;
type ResultOf<T extends WorkerRequest['type']> = Extract<WorkerResult, { type: T }>;

/**
 * The daemon's handle on the model worker thread: typed request/response over postMessage.
 * If the worker dies, every pending request fails with the reason instead of hanging.
 */
export class ModelClient {
  private readonly worker: Worker;
  private next = 1;
  private readonly pending = new Map<number, { resolve: (r: WorkerResult) => void; reject: (e: Error) => void }>();
  onProgress: (p: WorkerProgress) => void = () => {};

  constructor() {
    this.worker = new Worker(new URL('./model-worker-entry.mjs', import.meta.url));
    this.worker.on('message', (m: WorkerResponse) => {
      if ('progress' in m) { this.onProgress(m.progress); return; }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result); else p.reject(new Error(m.error));
    });
    const failAll = (err: Error) => { for (const p of this.pending.values()) p.reject(err); this.pending.clear(); };
    this.worker.on('error', failAll);
    this.worker.on('exit', (code) => failAll(new Error(`model worker exited with code ${code}`)));
  }

  /** The id the next request will get (progress messages name their request by id). */
  peekNextId(): number { return this.next; }

  request<T extends Req['type']>(req: Extract<Req, { type: T }>): Promise<ResultOf<T>> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: WorkerResult) => void, reject });
      this.worker.postMessage({ ...req, id });
    });
  }

  async close(): Promise<void> { await this.worker.terminate(); }
}

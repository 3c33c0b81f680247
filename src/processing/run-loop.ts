/**
 * The one loop the daemon's background work runs in: call `step` until the signal aborts; when it
 * reports no more work, sleep `idleMs` (or until woken); when it throws, report it and back off,
 * doubling from `backoff.firstMs` to `backoff.maxMs`, then try again. The projections, the outbox
 * relay and the learning loop's simulator each run in one.
 */
export interface RunLoopOptions {
  /** The pause when a step found nothing to do. */
  idleMs: number;
  backoff: { firstMs: number; maxMs: number };
  /** A step failed; `retryInMs` is the wait before the next. */
  onError?: (err: unknown, failures: number, retryInMs: number) => void;
  /** Sleeps `ms` or until the signal aborts; a caller may pass one it can wake early. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** A step's answer: `busy` to be called again at once, `idle` to wait first. */
export type StepOutcome = 'busy' | 'idle';

export async function runLoop(signal: AbortSignal, step: () => Promise<StepOutcome>, o: RunLoopOptions): Promise<void> {
  const sleep = o.sleep ?? abortableSleep;
  let failures = 0;
  while (!signal.aborted) {
    let wait: number;
    try {
      wait = (await step()) === 'busy' ? 0 : o.idleMs;
      failures = 0;
    } catch (err) {
      if (signal.aborted) return;
      failures++;
      wait = Math.min(o.backoff.maxMs, o.backoff.firstMs * 2 ** Math.min(failures - 1, 20));
      o.onError?.(err, failures, wait);
    }
    if (wait > 0 && !signal.aborted) await sleep(wait, signal);
  }
}

export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

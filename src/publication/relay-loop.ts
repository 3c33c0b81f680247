import type { Logger } from '../log.ts';
import type { OutboxRelay } from './outbox-relay.ts';

/** Keeps the relay sending until the signal aborts; failures back off and retry from the checkpoint. */
export async function runRelay(relay: OutboxRelay, signal: AbortSignal, pollMs: number, onSent: (n: number) => void, log: Logger): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    let wait = pollMs;
    try {
      const r = await relay.step();
      if (r.sent) onSent(r.sent);
      failures = 0;
      if (!r.caughtUp) wait = 0;
    } catch (err) {
      failures++;
      wait = Math.min(5000, 250 * 2 ** Math.min(failures, 7));
      log.error({ err, retryInMs: wait }, 'outbox relay failed; retrying from its checkpoint');
    }
    if (wait) await new Promise<void>((resolve) => {
      const t = setTimeout(done, wait);
      function done() { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

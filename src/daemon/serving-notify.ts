/**
 * Announcing the active version to the serving stack, wired (serving-notifier.ts): the targets from
 * the configuration, outcomes counted and logged, its own loop with backoff (1 s doubling to 60 s)
 * in the leader. Null when no target is configured.
 */
import type { Config } from '../config.ts';
import type { Queryable } from '../db/sql.ts';
import type { Metrics } from '../http/metrics.ts';
import type { Logger } from '../log.ts';
import { runLoop } from '../processing/run-loop.ts';
import { ServingNotifier } from '../publication/serving-notifier.ts';

export function createServingNotify(config: Config, sql: Queryable, metrics: Metrics, log: Logger) {
  if (!config.servingWebhookUrl && !config.vllmUrl) return null;
  const notifier = new ServingNotifier(sql, {
    ...(config.servingWebhookUrl ? { webhook: { url: config.servingWebhookUrl, ...(config.servingWebhookToken ? { token: config.servingWebhookToken } : {}) } } : {}),
    ...(config.vllmUrl ? { vllm: { url: config.vllmUrl, ...(config.vllmApiKey ? { apiKey: config.vllmApiKey } : {}) } } : {}),
    timeoutMs: 10_000,
  }, (target, outcome, notice, detail) => {
    metrics.servingNotifications.inc({ target, outcome });
    const line = `serving stack (${target}): version ${notice.version} ${outcome}: ${detail}`;
    if (outcome === 'failed') log.warn({ target, version: notice.version }, line);
    else log.info({ target, version: notice.version, outcome }, line);
  });
  for (const target of notifier.status().targets) for (const outcome of ['delivered', 'failed', 'skipped']) metrics.servingNotifications.inc({ target, outcome }, 0);
  return {
    notifier,
    run: (signal: AbortSignal) => runLoop(signal, async () => {
      const r = await notifier.step().finally(() => metrics.servingNotifyPending.set(notifier.status().pending ? 1 : 0));
      return r;
    }, {
      idleMs: 2000, backoff: { firstMs: 1000, maxMs: 60_000 },
      onError: (_err, failures, retryInMs) => log.warn({ failures, retryInMs }, `announcing the active version to serving failed ${failures} time(s) in a row; again in ${Math.round(retryInMs / 1000)} s`),
    }),
  };
}

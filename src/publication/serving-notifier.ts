/**
 * Tells the serving stack which version is active (docs/trainer.md, "Publication to serving"):
 * after each activation (a round's promotion, a rollback, a publication), a generic webhook gets
 * the version, its folder, its sha256 and, for an adapter version, the full-weight version it
 * applies to; and a vLLM server loads an adapter version through /v1/load_lora_adapter (a
 * full-weight version cannot be swapped into a running vLLM: skipped, and said so).
 *
 * It never blocks the log: it runs in its own loop (the daemon's leader), reads the active version
 * from the model registry, and retries a failed delivery with backoff (runLoop) until it succeeds
 * or a newer activation supersedes it (only the active version is worth serving). Deliveries are
 * at least once: after a restart the active version is announced again (the webhook may
 * deduplicate by `activationId`; vLLM's "already loaded" counts as delivered).
 */
import type { Queryable } from '../db/sql.ts';
import { readAdapterFolder } from '../model/formats/lora-adapter.ts';
import { readActiveModel } from '../projections/models/model-projection.ts';
import type { StepOutcome } from '../processing/run-loop.ts';

export interface ServingTargets {
  webhook?: { url: string; token?: string };
  vllm?: { url: string; apiKey?: string };
  /** Per request. */
  timeoutMs: number;
}

export type TargetName = 'webhook' | 'vllm';
export type DeliveryOutcome = 'delivered' | 'failed' | 'skipped';

/** What the webhook receives. */
export interface ActivationNotice {
  activationId: string;
  version: string;
  path: string;
  sha256: string;
  adapterOf: { version: string; sha256: string } | null;
  reason: string;
  activatedAt: string;
}

export interface NotifierStatus {
  targets: TargetName[];
  /** The newest activation announced to every target, and when. */
  delivered: { version: string; at: string } | null;
  /** The active version while some target has not taken it yet. */
  pending: string | null;
  failures: number;
  lastError: string | null;
}

export class ServingNotifier {
  private deliveredKey: string | null = null;
  /** Targets done for the activation being delivered (so that a webhook is not repeated while vLLM fails). */
  private done = new Set<TargetName>();
  private doneKey: string | null = null;
  private readonly state: NotifierStatus;

  constructor(
    private readonly sql: Queryable,
    private readonly t: ServingTargets,
    private readonly onOutcome: (target: TargetName, outcome: DeliveryOutcome, notice: ActivationNotice, detail: string) => void = () => {},
    private readonly fetchFn: typeof fetch = fetch,
  ) {
    this.state = { targets: [...(t.webhook ? ['webhook' as const] : []), ...(t.vllm ? ['vllm' as const] : [])], delivered: null, pending: null, failures: 0, lastError: null };
  }

  status(): NotifierStatus { return { ...this.state }; }

  /** Announces the active version if it has not been; throws (to be retried with backoff) when a target failed. */
  async step(): Promise<StepOutcome> {
    const active = await readActiveModel(this.sql);
    if (!active) return 'idle';
    const notice: ActivationNotice = {
      activationId: `${active.version}@${active.activatedAt.toISOString()}`, version: active.version, path: active.path, sha256: active.sha256,
      adapterOf: null, reason: active.reason, activatedAt: active.activatedAt.toISOString(),
    };
    if (notice.activationId === this.deliveredKey) return 'idle';
    if (this.doneKey !== notice.activationId) { this.done = new Set(); this.doneKey = notice.activationId; }
    this.state.pending = active.version;
    const adapter = readAdapterFolder(active.path);
    if (adapter) notice.adapterOf = { version: adapter.baseVersion, sha256: adapter.baseSha256 };
    const errors: string[] = [];
    for (const target of this.state.targets) {
      if (this.done.has(target)) continue;
      try {
        const r = target === 'webhook' ? await this.webhook(notice) : await this.vllm(notice, adapter !== null);
        this.done.add(target);
        this.onOutcome(target, r.outcome, notice, r.detail);
      } catch (err) {
        const detail = (err as Error).message;
        errors.push(`${target}: ${detail}`);
        this.onOutcome(target, 'failed', notice, detail);
      }
    }
    if (errors.length) {
      this.state.failures++;
      this.state.lastError = errors.join('; ');
      throw new Error(`announcing version ${active.version} to serving failed: ${this.state.lastError}`);
    }
    this.deliveredKey = notice.activationId;
    this.state.delivered = { version: active.version, at: new Date().toISOString() };
    this.state.pending = null;
    this.state.failures = 0;
    this.state.lastError = null;
    return 'idle';
  }

  private async webhook(n: ActivationNotice): Promise<{ outcome: DeliveryOutcome; detail: string }> {
    const w = this.t.webhook!;
    const res = await this.post(w.url, n, w.token);
    if (!res.ok) throw new Error(`POST ${w.url} answered ${res.status} ${(await res.text()).slice(0, 300)}`);
    return { outcome: 'delivered', detail: `POST ${w.url}: ${res.status}` };
  }

  private async vllm(n: ActivationNotice, isAdapter: boolean): Promise<{ outcome: DeliveryOutcome; detail: string }> {
    if (!isAdapter) return { outcome: 'skipped', detail: `${n.version} is a full-weight version: vLLM loads only adapters at runtime; restart it on ${n.path}` };
    const url = `${this.t.vllm!.url.replace(/\/+$/, '')}/v1/load_lora_adapter`;
    const res = await this.post(url, { lora_name: n.version, lora_path: n.path }, this.t.vllm!.apiKey);
    const text = await res.text();
    if (res.ok) return { outcome: 'delivered', detail: `POST ${url}: ${res.status}` };
    // vLLM answers 400 when the adapter is loaded already (a re-announcement after a restart).
    if (res.status === 400 && /already (been )?loaded/i.test(text)) return { outcome: 'delivered', detail: `${n.version} was loaded already` };
    throw new Error(`POST ${url} answered ${res.status} ${text.slice(0, 300)}`);
  }

  private async post(url: string, body: unknown, token: string | undefined): Promise<Response> {
    return this.fetchFn(url, {
      method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(this.t.timeoutMs),
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
  }
}

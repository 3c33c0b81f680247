import type { Sql } from '../db/sql.ts';
import { readStatus, type Status } from '../operations/status.ts';
import type { NotifierStatus } from '../publication/serving-notifier.ts';
import type { Task } from '../tasks/task.ts';
import type { Route } from './server.ts';

/**
 * GET /status: one self-contained HTML page for people (inline CSS, no scripts, no external
 * assets, refreshes itself every 10 s). The rendering is a pure function of a view; the route
 * only reads the view. Every value from the database or the environment goes through the `html`
 * template, which escapes it: a model version, a round error or a projection name containing
 * markup shows as text and never becomes markup.
 */

export interface StatusPageDeps {
  sql: Sql;
  leader: () => boolean;
  /** The Kafka intake's status() (paused, assigned partitions), or null when Kafka is off. */
  kafka: () => unknown | null;
  /** Messages appended per second over the last minute (the Kafka intake's status().appendedPerSecond). */
  ingestRate: () => number;
  /** Whether /report exists yet; the report comes with a later issue, so absent means "not generated yet". */
  reportAvailable?: () => boolean;
  /** The configured tasks (their kinds and held-out splits). */
  tasks?: readonly Task[];
  /** Announcing the active version to serving (serving-notifier.ts), or null when no target is configured. */
  servingNotify?: () => NotifierStatus | null;
}

/** What the page shows of the Kafka intake (the fields of KafkaIntake.status() it uses). */
export interface KafkaView { paused: boolean; assigned: { topic: string; partition: number }[]; lagEvents: number }

export interface StatusPageView {
  status: Status;
  leader: boolean;
  kafka: KafkaView | null;
  ingestRate: number;
  reportAvailable: boolean;
  servingNotify?: NotifierStatus | null;
  generatedAt: Date;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for use in HTML content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Markup that is already safe: made by `html`, or wrapped around constant markup (the page CSS). */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string { return this.value; }
}

function fragment(v: unknown): string {
  if (v instanceof SafeHtml) return v.value;
  if (v === null || v === undefined || v === false) return '';
  if (Array.isArray(v)) return v.map(fragment).join('');
  return escapeHtml(String(v));
}

/** Template tag: the literal parts are markup, every interpolated value is escaped unless it is SafeHtml. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((v, i) => { out += fragment(v) + strings[i + 1]!; });
  return new SafeHtml(out);
}

/** Narrows the Kafka callback's value to an intake status; anything else reads as "Kafka off". */
export function asKafkaView(v: unknown): KafkaView | null {
  if (typeof v !== 'object' || v === null) return null;
  const s = v as Partial<KafkaView>;
  if (typeof s.paused !== 'boolean' || !Array.isArray(s.assigned)) return null;
  return {
    paused: s.paused,
    assigned: s.assigned.filter((a) => typeof a === 'object' && a !== null).map((a) => ({ topic: String(a.topic), partition: Number(a.partition) })),
    lagEvents: Number(s.lagEvents ?? 0),
  };
}

/** Pass rates found in a round's evaluation JSON: a top-level `passRate`, or one per named entry (e.g. base, candidate). */
export function passRates(evaluation: unknown): { label: string; rate: number }[] {
  if (typeof evaluation !== 'object' || evaluation === null || Array.isArray(evaluation)) return [];
  const e = evaluation as Record<string, unknown>;
  const out: { label: string; rate: number }[] = [];
  if (typeof e.passRate === 'number' && Number.isFinite(e.passRate)) out.push({ label: '', rate: e.passRate });
  for (const [key, value] of Object.entries(e)) {
    if (typeof value === 'object' && value !== null && typeof (value as { passRate?: unknown }).passRate === 'number') {
      const rate = (value as { passRate: number }).passRate;
      if (Number.isFinite(rate)) out.push({ label: key, rate });
    }
  }
  return out;
}

const percent = (r: number) => `${(r <= 1 ? r * 100 : r).toFixed(1)}%`;
const count = (n: number) => n.toLocaleString('en-US');
const prefix = (hash: string, n = 12) => (hash ? hash.slice(0, n) : '—');
function when(d: Date | string | null): string {
  if (d === null || d === undefined) return '—';
  const t = d instanceof Date ? d : new Date(d);
  return Number.isNaN(t.getTime()) ? String(d) : t.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
const yesNo = (b: boolean) => (b ? 'yes' : 'no');

function rate(r: number): string {
  if (!Number.isFinite(r) || r < 0) return 'n/a';
  return `${r.toFixed(r < 10 ? 2 : 1)} messages/s`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 24px;display:flex;align-items:baseline;gap:16px;flex-wrap:wrap}
header h1{font-size:18px;margin:0}
header nav a{color:#9cc4ff;margin-right:14px}
header .muted{color:#aab2c0}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:16px;padding:16px 24px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:12px 16px}
section.wide{grid-column:1/-1}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:#5a6475;margin:0 0 8px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dt{color:#5a6475}
dd{margin:0;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef0f4;padding:1px 4px;border-radius:3px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef0f4;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
th{color:#5a6475;font-weight:600}
.ok{color:#17803d;font-weight:600}
.warn{color:#b45309;font-weight:600}
.bad{color:#b91c1c;font-weight:600}
.muted{color:#7a8494;font-weight:400}
`;

function statusClass(s: string): string {
  return s === 'completed' ? 'ok' : s === 'failed' ? 'bad' : 'warn';
}

/** The page, from a view; pure. */
export function renderStatusPage(v: StatusPageView): string {
  const s = v.status;
  const m = s.activeModel;
  const k = s.knowledge;
  const maxLag = s.projections.reduce((a, p) => Math.max(a, p.lagEvents), 0);

  const model = m
    ? html`<dl>
<dt>version</dt><dd id="model-version"><code>${m.version}</code></dd>
<dt>sha256</dt><dd id="model-sha256"><code title="${m.sha256}">${prefix(m.sha256)}</code></dd>
<dt>activated as</dt><dd>${m.reason}</dd>
</dl>`
    : html`<p id="model-version" class="muted">no model version active yet</p>`;

  const knowledge = html`<dl>
<dt>version</dt><dd id="knowledge-version">${k.version}</dd>
<dt>items</dt><dd id="knowledge-items">${count(k.items)}</dd>
<dt>tokens</dt><dd id="knowledge-tokens">${count(k.tokens)}</dd>
<dt>pools</dt><dd>${count(k.pools)}</dd>
<dt>content hash</dt><dd id="knowledge-hash"><code title="${k.contentHash}">${prefix(k.contentHash)}</code></dd>
</dl>${k.version === 0 ? html`<p class="muted">no knowledge extracted yet</p>` : ''}`;

  const store = html`<dl>
<dt>leader</dt><dd id="leader" class="${v.leader ? 'ok' : 'muted'}">${yesNo(v.leader)}</dd>
<dt>database</dt><dd>${s.database}</dd>
<dt>events stored</dt><dd id="events">${count(s.events)}</dd>
<dt>head position</dt><dd id="head-position">${s.headPosition}</dd>
<dt>dead letters</dt><dd id="dead-letters" class="${s.deadLetters ? 'warn' : ''}">${count(s.deadLetters)}</dd>
<dt>ingestion</dt><dd id="ingest-rate">${rate(v.ingestRate)} <span class="muted">(last minute)</span></dd>
</dl>`;

  const projections = s.projections.length
    ? html`<table id="projections"><thead><tr><th>projection</th><th>position</th><th>lag (events)</th></tr></thead><tbody>
${s.projections.map((p) => html`<tr><td>${p.name}</td><td>${p.globalPosition}</td><td class="${p.lagEvents ? 'warn' : 'ok'}">${count(p.lagEvents)}</td></tr>\n`)}</tbody></table>`
    : html`<p class="muted">no projections yet</p>`;

  const kafka = v.kafka
    ? html`<dl id="kafka">
<dt>state</dt><dd id="kafka-state" class="${v.kafka.paused ? 'warn' : 'ok'}">${v.kafka.paused ? 'paused (projections behind)' : 'consuming'}</dd>
<dt>assigned partitions</dt><dd id="kafka-partitions">${v.kafka.assigned.length
      ? v.kafka.assigned.map((a, i) => html`${i ? ', ' : ''}<code>${a.topic}/${a.partition}</code>`)
      : html`<span class="muted">none</span>`}</dd>
<dt>slowest projection lag</dt><dd>${count(v.kafka.lagEvents)} events</dd>
</dl>`
    : html`<p id="kafka-state" class="muted">Kafka off (no KAFKA_BROKERS): interactions arrive through <code>oeld ingest</code></p>`;

  const n = v.servingNotify;
  const servingNotify = n
    ? html`<dl id="serving-notify">
<dt>targets</dt><dd>${n.targets.join(', ')}</dd>
<dt>announced</dt><dd id="serving-notify-delivered">${n.delivered ? html`<code>${n.delivered.version}</code> at ${n.delivered.at}` : html`<span class="muted">nothing yet</span>`}</dd>
<dt>pending</dt><dd id="serving-notify-pending" class="${n.pending ? 'warn' : 'ok'}">${n.pending ? html`<code>${n.pending}</code>, ${count(n.failures)} failed attempts${n.lastError ? html`<br><span class="muted">${n.lastError}</span>` : ''}` : 'none'}</dd>
</dl>`
    : html`<p id="serving-notify" class="muted">no serving stack to tell (OELD_SERVING_WEBHOOK_URL, OELD_VLLM_URL)</p>`;

  const rounds = s.rounds.length
    ? html`<table id="rounds"><thead><tr><th>round</th><th>task</th><th>status</th><th>trigger</th><th>base model</th><th>knowledge</th><th>new model</th><th>pass rate</th><th>started</th><th>finished</th></tr></thead><tbody>
${s.rounds.map((r) => {
    const rates = passRates(r.evaluation);
    return html`<tr><td><code>${r.roundId}</code></td><td>${r.taskId ? html`<code>${r.taskId}</code>` : '—'}</td><td class="${statusClass(r.status)}">${r.status}${r.error ? html`<br><span class="muted">${r.error}</span>` : ''}${r.skipReason ? html`<br><span class="muted">${r.skipReason}</span>` : ''}</td><td>${r.trigger}</td><td><code>${r.baseModelVersion}</code></td><td>${r.knowledgeVersion}</td><td>${r.newModelVersion ? html`<code>${r.newModelVersion}</code>` : '—'}</td><td>${rates.length ? rates.map((p, i) => html`${i ? ', ' : ''}${p.label ? `${p.label} ` : ''}${percent(p.rate)}`) : html`<span class="muted">—</span>`}</td><td>${when(r.startedAt)}</td><td>${when(r.finishedAt)}</td></tr>\n`;
  })}</tbody></table>`
    : html`<p id="rounds" class="muted">no rounds yet</p>`;

  const tasks = s.tasks.length
    ? html`<table id="tasks"><thead><tr><th>task</th><th>usable for the next round</th><th>held out for the gate</th><th>already used by rounds</th><th>from older versions</th><th>from versions oeld never published</th><th>task not configured</th></tr></thead><tbody>
${s.tasks.map((t) => {
    const unknown = Object.entries(t.why.unknownVersions);
    return html`<tr><td><code>${t.taskId}</code> <span class="muted">${t.kind ?? 'not configured'}</span></td><td class="${t.usable ? 'ok' : 'muted'}">${count(t.usable)}</td><td>${count(t.why.heldOut)}</td><td>${count(t.why.usedByRounds)}</td><td>${count(t.why.olderVersions)}</td><td class="${unknown.length ? 'warn' : ''}">${unknown.length ? unknown.map(([name, n], i) => html`${i ? ', ' : ''}<code>${name}</code> ${count(n)}`) : '0'}</td><td class="${t.why.taskNotConfigured ? 'warn' : ''}">${count(t.why.taskNotConfigured)}</td></tr>\n`;
  })}</tbody></table>`
    : html`<p id="tasks" class="muted">no tasks configured and no interactions yet</p>`;

  const report = v.reportAvailable ? html`<a href="/report">report</a>` : html`<span id="report" class="muted">report not generated yet</span>`;

  return html`<!doctype html>
<html lang="en"><head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta http-equiv="refresh" content="10">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>oeld status</title>
<style>${new SafeHtml(CSS)}</style>
</head><body>
<header><h1>oeld status</h1><nav><a href="/metrics">/metrics</a>${report}</nav><span class="muted">as of ${when(v.generatedAt)} · refreshes every 10 s</span></header>
<main>
<section><h2>Live model</h2>${model}</section>
<section><h2>Knowledge</h2>${knowledge}</section>
<section><h2>Daemon and event store</h2>${store}</section>
<section><h2>Projections</h2>${projections}${maxLag ? html`<p class="warn">slowest projection ${count(maxLag)} events behind</p>` : ''}</section>
<section><h2>Kafka intake</h2>${kafka}</section>
<section><h2>Serving stack</h2>${servingNotify}</section>
<section class="wide"><h2>Interactions per task</h2>${tasks}</section>
<section class="wide"><h2>Last rounds</h2>${rounds}</section>
</main>
</body></html>
`.value;
}

/** The route; reading the status is its only I/O. */
export function statusPageRoute(deps: StatusPageDeps): Route {
  return {
    method: 'GET', path: '/status',
    handle: async () => {
      const status = await readStatus(deps.sql, deps.sql.kind, deps.tasks ?? []);
      const page = renderStatusPage({
        status, leader: deps.leader(), kafka: asKafkaView(deps.kafka()), ingestRate: deps.ingestRate(),
        reportAvailable: deps.reportAvailable?.() ?? false, servingNotify: deps.servingNotify?.() ?? null, generatedAt: new Date(),
      });
      return { status: 200, body: page, contentType: 'text/html; charset=utf-8' };
    },
  };
}


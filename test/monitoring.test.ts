import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createMetrics } from '../src/http/metrics.ts';
import { uuidFromKey } from '../src/events/ids.ts';
import { EventStore } from '../src/store/event-store.ts';
import { serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { extraction } from './helpers/events.ts';
import { badMessages, goodMessage } from './helpers/interaction-messages.ts';
import { produce, testKafka } from './helpers/kafka-client.ts';
import { startMockKafka, type MockKafka } from './helpers/mock-kafka.ts';
import { promtool, startPrometheus, type Prometheus } from './helpers/prometheus.ts';

/**
 * The Grafana dashboard and the Prometheus alert rules (grafana/) against a live daemon: a real
 * Prometheus scrapes an `oeld start` child process fed through librdkafka's mock cluster, and
 * every panel query and every alert expression is evaluated by that Prometheus.
 */

const ROOT = new URL('../', import.meta.url).pathname;
const DASHBOARD = `${ROOT}grafana/dashboards/oeld.json`;
const ALERTS = `${ROOT}grafana/alerts.yml`;
const JOB = 'oeld'; // the job name of grafana/prometheus.yml, which the alert rules select
const MAX = 4096;
const GOOD = 60;
const REPEATS = 10;

/** What Grafana substitutes before sending a query, with the values of a 1 s scrape interval. */
const GRAFANA_VARIABLES: Record<string, string> = {
  __rate_interval: '10s', __interval: '2s', __range: '1m', __range_s: '60', __interval_ms: '2000',
};

interface Target { refId: string; expr: string; legendFormat?: string }
interface Panel { type: string; title: string; targets?: Target[]; panels?: Panel[] }
interface Dashboard {
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; query: string; allValue?: string; includeAll?: boolean; current?: { value: string | string[] } }[] };
}
interface Query { panel: string; refId: string; raw: string; expr: string; legend?: string }

async function loadDashboard(): Promise<{ dashboard: Dashboard; queries: Query[] }> {
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
  const values: Record<string, string> = { ...GRAFANA_VARIABLES };
  for (const v of dashboard.templating.list) {
    // Template variables take what the dashboard's defaults select: the job `oeld`, all instances.
    values[v.name] = v.name === 'job' ? JOB : v.includeAll ? (v.allValue ?? '.*') : String(v.current?.value ?? '');
  }
  const substitute = (expr: string) => expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (m, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    if (!(name in values)) throw new Error(`unknown variable ${m} in ${expr}`);
    return values[name]!;
  });
  const queries: Query[] = [];
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) queries.push({ panel: p.title, refId: t.refId, raw: t.expr, expr: substitute(t.expr), legend: t.legendFormat });
      if (p.panels) walk(p.panels);
    }
  };
  walk(dashboard.panels);
  return { dashboard, queries };
}

/** Metric names and label names oeld's registry declares (its own metrics and prom-client's defaults). */
function declaredMetrics(): Map<string, Set<string>> {
  const { registry } = createMetrics();
  const names = new Map<string, Set<string>>();
  for (const m of registry.getMetricsAsArray()) {
    const { name, type, labelNames } = m as unknown as { name: string; type: string; labelNames?: readonly string[] };
    const labels = new Set(labelNames ?? []);
    names.set(name, labels);
    if (type === 'histogram') {
      names.set(`${name}_bucket`, new Set([...labels, 'le']));
      names.set(`${name}_sum`, labels);
      names.set(`${name}_count`, labels);
    }
    if (type === 'summary') {
      names.set(name, new Set([...labels, 'quantile']));
      names.set(`${name}_sum`, labels);
      names.set(`${name}_count`, labels);
    }
  }
  return names;
}

const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'predict_linear', 'histogram_quantile', 'abs', 'absent',
  'clamp_min', 'clamp_max', 'vector', 'scalar', 'time', 'label_replace', 'max_over_time', 'min_over_time', 'avg_over_time',
  'resets', 'changes', 'inf', 'nan',
]);

/** The problems of one expression: metric names not exported, labels a metric does not have. */
function checkNames(expr: string, declared: Map<string, Set<string>>, legend?: string): string[] {
  const problems: string[] = [];
  const bare = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\[[^\]]*\]/g, '[]');
  const metrics = new Set<string>();
  for (const [, word] of bare.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])/g)) {
    if (PROMQL_WORDS.has(word!.toLowerCase()) || /^\d/.test(word!)) continue;
    metrics.add(word!);
  }
  const labels = new Set<string>();
  for (const [, inner] of bare.matchAll(/\{([^}]*)\}/g)) for (const [, l] of inner!.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)) labels.add(l!);
  for (const [, inner] of bare.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g)) for (const l of inner!.split(',').map((s) => s.trim()).filter(Boolean)) labels.add(l);
  for (const l of labels) metrics.delete(l); // a label name in a matcher or a grouping clause is not a metric
  const allowed = new Set(['job', 'instance']);
  for (const m of metrics) {
    if (m === 'up') continue; // Prometheus's own series for each scrape
    const own = declared.get(m);
    if (!own) { problems.push(`unknown metric ${m}`); continue; }
    for (const l of own) allowed.add(l);
  }
  for (const l of labels) if (!allowed.has(l)) problems.push(`label ${l} is not a label of ${[...metrics].join(', ')}`);
  for (const [, l] of (legend ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)) if (!allowed.has(l!)) problems.push(`legend label ${l} is not a label of ${[...metrics].join(', ')}`);
  return problems;
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, describe?: () => string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await check();
    if (r !== undefined) return r;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${describe ? `: ${describe()}` : ''}`);
    await sleep(250);
  }
}

describe('Grafana dashboard and alert rules against a live daemon and Prometheus', () => {
  let kafka: MockKafka;
  let db: TestDatabase;
  let daemon: DaemonProcess;
  let prometheus: Prometheus;
  let daemonUrl: string;
  const bad = badMessages('mon', MAX);

  before(async () => {
    kafka = await startMockKafka(1);
    await kafka.createTopic('oel.interactions', 2);
    await kafka.createTopic('oel.interactions.dlq', 1);
    await kafka.createTopic('oel.model-versions', 1);
    db = await serverDatabase();
    daemon = spawnDaemon({
      DATABASE_URL: db.url!, KAFKA_BROKERS: kafka.bootstrap, KAFKA_SESSION_TIMEOUT_MS: '6000',
      OELD_MAX_EVENT_BYTES: String(MAX), OELD_PROJECTION_POLL_MS: '100', OELD_LOG_LEVEL: 'info',
    });
    daemonUrl = await daemon.url();
    // Scraping starts before the traffic, so every counter has samples before and after it.
    prometheus = await startPrometheus({ job: JOB, targets: [new URL(daemonUrl).host], ruleFiles: [ALERTS], intervalSeconds: 1 });
    await daemon.waitForLog(/Kafka intake started/, 30_000);

    const client = testKafka(kafka.brokers);
    const good = Array.from({ length: GOOD }, (_, i) => ({ value: goodMessage(i) as string | Buffer | null }));
    await produce(client, 'oel.interactions', [...good, ...bad.map((b) => ({ value: b.value })), ...good.slice(0, REPEATS)]);
    // Model and knowledge versions, appended straight into the store (as the trainer will): the
    // leader's projections fold them and its outbox relay publishes them to oel.model-versions.
    const store = new EventStore(db.sql);
    await store.append([{ streamId: 'models', events: [
      { id: uuidFromKey('monitoring:pub-v1'), type: 'ModelVersionPublished', data: { version: 'v1', path: '/models/v1', sha256: 'a'.repeat(64) } },
      { id: uuidFromKey('monitoring:act-v1'), type: 'ModelVersionActivated', data: { version: 'v1', reason: 'promoted' } },
    ] }]);
    await store.append([{ streamId: 'knowledge', events: [extraction(1, { budget: 200, items: 3 })] }]);
  });

  after(async () => {
    await prometheus?.stop();
    await daemon?.kill('SIGTERM');
    await db?.drop();
    await kafka?.stop();
  });

  it('promtool accepts the alert rules and the generated Prometheus config', async () => {
    assert.match(await promtool('check', 'rules', ALERTS), /SUCCESS: \d+ rules found/);
    assert.match(await promtool('check', 'config', prometheus.configPath), /is valid prometheus config file syntax/);
    assert.match(await promtool('check', 'config', `${ROOT}grafana/prometheus.yml`), /is valid prometheus config file syntax/);
  });

  it('names only metrics and labels that oeld exports, in every panel and alert', async () => {
    const declared = declaredMetrics();
    // What the live daemon serves must be what its registry declares.
    const served = await (await fetch(`${daemonUrl}/metrics`)).text();
    for (const [, name] of served.matchAll(/^# TYPE (\S+) /gm)) assert.ok(declared.has(name!), `served ${name} is declared`);
    const { dashboard, queries } = await loadDashboard();
    assert.ok(dashboard.schemaVersion >= 36, 'a current Grafana schema');
    const rules = await waitFor('the alert rules to load', async () => {
      const r = await prometheus.get<{ groups: { rules: { name: string; query: string }[] }[] }>('/api/v1/rules?type=alert');
      const all = r.data?.groups.flatMap((g) => g.rules) ?? [];
      return all.length ? all : undefined;
    }, 10_000);
    const problems = [
      ...queries.flatMap((q) => checkNames(q.raw, declared, q.legend).map((p) => `panel "${q.panel}" ${q.refId}: ${p}`)),
      ...rules.flatMap((r) => checkNames(r.query, declared).map((p) => `alert ${r.name}: ${p}`)),
    ];
    assert.deepEqual(problems, []);
  });

  it('every panel query of the dashboard returns series from the daemon', async () => {
    const { queries } = await loadDashboard();
    assert.ok(queries.length >= 25, `${queries.length} panel queries`);
    let empty: string[] = [];
    await waitFor('every panel query to return series', async () => {
      empty = [];
      for (const q of queries) {
        const r = await prometheus.query(q.expr);
        assert.equal(r.status, 'success', `panel "${q.panel}" ${q.refId} parses: ${q.expr}\n${r.error ?? ''}`);
        if (!r.data!.result.length) empty.push(`panel "${q.panel}" ${q.refId}: ${q.expr}`);
      }
      return empty.length ? undefined : true;
    }, 45_000, () => `no series for:\n${empty.join('\n')}\n\ndaemon stderr:\n${daemon.stderr().slice(-2000)}\nprometheus:\n${prometheus.log().slice(-2000)}`);

    // The template variables' queries (label_values(selector, label)) find the daemon.
    const { dashboard } = await loadDashboard();
    for (const v of dashboard.templating.list) {
      const m = v.query.match(/^label_values\((.+),\s*(\w+)\)$/);
      assert.ok(m, `variable ${v.name}: ${v.query}`);
      const selector = m[1]!.replace(/\$job\b/g, JOB);
      const r = await prometheus.get<string[]>(`/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(selector)}`);
      assert.equal(r.status, 'success', `variable ${v.name}: ${v.query}`);
      assert.deepEqual(r.data, [v.name === 'job' ? JOB : new URL(daemonUrl).host], `variable ${v.name} lists the daemon`);
    }

    // The figures behind the panels are the work this test did.
    const value = async (expr: string) => {
      const r = await prometheus.query(expr);
      assert.equal(r.status, 'success', expr);
      return r.data!.result.map((s) => ({ labels: s.metric, value: Number(s.value[1]) }));
    };
    const scalar = async (expr: string) => (await value(expr))[0]?.value;
    await waitFor('the traffic to show in Prometheus', async () => (
      await scalar(`sum(oeld_ingest_messages_consumed_total{job="${JOB}"})`) === GOOD + bad.length + REPEATS
      && await scalar(`max(oeld_outbox_published_total{job="${JOB}"})`) === 3
      && await scalar(`max(oeld_knowledge_version{job="${JOB}"})`) === 1 ? true : undefined), 20_000);
    assert.equal(await scalar(`sum(oeld_ingest_messages_appended_total{job="${JOB}"})`), GOOD);
    assert.equal(await scalar(`sum(oeld_ingest_messages_deduplicated_total{job="${JOB}",by="event_id"})`), REPEATS);
    const reasons = Object.fromEntries((await value(`sum by (reason) (oeld_ingest_messages_dead_lettered_total{job="${JOB}"})`)).map((s) => [s.labels.reason, s.value]));
    const expected: Record<string, number> = {};
    for (const b of bad) expected[b.kind] = (expected[b.kind] ?? 0) + 1;
    assert.deepEqual(reasons, expected);
    assert.deepEqual((await value(`oeld_model_active_info{job="${JOB}"}`)).map((s) => s.labels.version), ['v1']);
    assert.equal(await scalar(`max(oeld_knowledge_items{job="${JOB}"})`), 3);
    assert.equal(await scalar(`sum(oeld_leader{job="${JOB}"})`), 1);
    const { rows: [head] } = await db.sql.query<{ n: number; head: number }>('SELECT count(*)::int AS n, max(global_position)::int AS head FROM events');
    assert.equal(head!.n, GOOD + 3, 'the interactions, two model events and one knowledge event');
    await waitFor('the head position to show', async () => (await scalar(`max(oeld_event_store_head_position{job="${JOB}"})`) === head!.head ? true : undefined), 10_000);
  });

  it('every alert expression evaluates, and Prometheus evaluates every rule without error', async () => {
    type Rule = { name: string; query: string; health: string; lastError?: string; state: string; lastEvaluation: string };
    const loaded = await promtool('check', 'rules', ALERTS);
    const count = Number(loaded.match(/SUCCESS: (\d+) rules found/)![1]);
    const rules = await waitFor('every rule to be evaluated', async () => {
      const r = await prometheus.get<{ groups: { rules: Rule[] }[] }>('/api/v1/rules?type=alert');
      const all = r.data?.groups.flatMap((g) => g.rules) ?? [];
      // Rules evaluated at least once since the traffic, and settled (a rule may be pending for a
      // moment while the daemon starts, e.g. oeld_leader is 0 before it wins the election).
      return all.length === count && all.every((x) => !x.lastEvaluation.startsWith('0001') && x.state === 'inactive') ? all : undefined;
    }, 15_000, () => 'rules not yet evaluated or not inactive');
    assert.ok(rules.length >= 7, `${rules.length} alert rules`);
    for (const rule of rules) {
      const r = await prometheus.query(rule.query);
      assert.equal(r.status, 'success', `alert ${rule.name}: ${rule.query}\n${r.error ?? ''}`);
      assert.equal(rule.health, 'ok', `alert ${rule.name} evaluates: ${rule.lastError ?? ''}`);
      // A healthy daemon that has just done its work fires nothing.
      assert.equal(rule.state, 'inactive', `alert ${rule.name} is ${rule.state}`);
    }
    const names = rules.map((r) => r.name);
    for (const n of ['OeldIngestionStalled', 'OeldConsumerLagGrowing', 'OeldProjectionLagging', 'OeldDeadLettersSpiking', 'OeldEventLoopBlocked', 'OeldNoLeader', 'OeldOffsetsSkipped']) {
      assert.ok(names.includes(n), `alert ${n} exists`);
    }
  });
});

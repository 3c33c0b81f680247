import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { uuidFromKey } from '../src/events/ids.ts';
import { STREAMS } from '../src/events/streams.ts';
import { createHttpServer } from '../src/http/server.ts';
import { asKafkaView, escapeHtml, html, passRates, renderStatusPage, SafeHtml, statusPageRoute, type StatusPageView } from '../src/http/status-page.ts';
import { createLogger } from '../src/log.ts';
import { readStatus, type Status } from '../src/operations/status.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { Projector } from '../src/projections/projector.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { EventStore } from '../src/store/event-store.ts';
import { decodePng, domText, dumpDom, requireChromium, screenshot } from './helpers/chromium.ts';
import { serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { extraction } from './helpers/events.ts';

const EVIL = '<script>alert("x")</script>';

function emptyStatus(): Status {
  return {
    database: 'postgres', headPosition: 0, events: 0, deadLetters: 0, projections: [],
    knowledge: { version: 0, contentHash: '', items: 0, tokens: 0, pools: 0 },
    activeModel: null, versions: { kept: 0, pruned: 0, prunedBytes: 0 }, rounds: [], tasks: [],
  };
}

function view(status: Partial<Status> = {}, rest: Partial<StatusPageView> = {}): StatusPageView {
  return {
    status: { ...emptyStatus(), ...status }, leader: false, kafka: null, ingestRate: 0, reportAvailable: false,
    generatedAt: new Date('2026-01-02T03:04:05Z'), ...rest,
  };
}

/** The text inside the element with this id (tags inside it dropped, references decoded). */
function textOfId(page: string, id: string): string {
  const m = page.match(new RegExp(`<(\\w+) id="${id}"[^>]*>([\\s\\S]*?)</\\1>`));
  assert.ok(m, `the page has an element with id="${id}"`);
  return domText(m[2]!).trim();
}

describe('status page: escaping', () => {
  it('escapes the five HTML metacharacters and leaves other text alone', () => {
    assert.equal(escapeHtml(`<a href="x" onclick='y'>&amp;</a>`), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;');
    assert.equal(escapeHtml('plain ünïcode — 42'), 'plain ünïcode — 42');
    assert.equal(escapeHtml(''), '');
  });

  it('html`` escapes every interpolated value unless it is SafeHtml, including inside arrays', () => {
    const r = html`<p title="${'"><b>'}">${EVIL}${[1, '<i>', html`<em>${'&'}</em>`]}${null}${undefined}${false}${0}</p>`;
    assert.ok(r instanceof SafeHtml);
    assert.equal(r.value, '<p title="&quot;&gt;&lt;b&gt;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;1&lt;i&gt;<em>&amp;</em>0</p>');
  });

  it('shows markup from the database as text everywhere on the page', () => {
    const page = renderStatusPage(view({
      activeModel: { version: EVIL, sha256: `<b>${'a'.repeat(64)}`, reason: '<i>promoted</i>', path: '/m' },
      knowledge: { version: 3, contentHash: '<hash>"x"', items: 2, tokens: 40, pools: 1 },
      projections: [{ name: '<u>knowledge</u>', globalPosition: 5, lagEvents: 0 }],
      rounds: [{
        roundId: '<r1>', taskId: '<task-of-round>', failedStage: 'train', status: 'failed', trigger: '<cron>', baseModelVersion: '<v0>', knowledgeVersion: 3,
        startedAt: new Date('2026-01-01T00:00:00Z'), finishedAt: null, newModelVersion: '<v9>', evaluation: null, error: EVIL, skipReason: null,
      }],
      tasks: [{ taskId: '<task>', kind: null, usable: 0, why: { heldOut: 1, usedByRounds: 2, olderVersions: 3, unknownVersions: { '<i>Qwen</i>': 4 }, taskNotConfigured: 5 } }],
    }, { kafka: { paused: false, assigned: [{ topic: '<t>', partition: 0 }], lagEvents: 0 } }));
    assert.doesNotMatch(page, /<script/i, 'no script element');
    assert.doesNotMatch(page, /<(b|i|u|r1|cron|v0|v9|t|hash|task|task-of-round)>/, 'no element made from a value');
    assert.match(page, /&lt;task&gt;/);
    assert.match(page, /&lt;i&gt;Qwen&lt;\/i&gt;/);
    assert.equal(textOfId(page, 'model-version'), EVIL);
    assert.match(page, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;/);
    assert.match(page, /&lt;u&gt;knowledge&lt;\/u&gt;/);
    assert.match(page, /&lt;t&gt;\/0/);
    assert.match(page, /Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"/);
  });
});

describe('status page: rendering', () => {
  it('renders the empty state: no model, knowledge 0, no rounds, Kafka off, no report yet', () => {
    const page = renderStatusPage(view());
    assert.match(page, /^<!doctype html>/);
    assert.match(page, /<meta http-equiv="refresh" content="10">/);
    assert.doesNotMatch(page, /<script|<link|src=|url\(/i, 'self-contained: no scripts, no external assets');
    assert.equal(textOfId(page, 'model-version'), 'no model version active yet');
    assert.equal(textOfId(page, 'knowledge-version'), '0');
    assert.match(page, /no knowledge extracted yet/);
    assert.equal(textOfId(page, 'leader'), 'no');
    assert.equal(textOfId(page, 'events'), '0');
    assert.equal(textOfId(page, 'dead-letters'), '0');
    assert.equal(textOfId(page, 'rounds'), 'no rounds yet');
    assert.match(textOfId(page, 'kafka-state'), /^Kafka off/);
    assert.equal(textOfId(page, 'report'), 'report not generated yet');
    assert.doesNotMatch(page, /href="\/report"/);
    assert.match(page, /<a href="\/metrics">/);
    assert.match(page, /no projections yet/);
    assert.match(textOfId(page, 'ingest-rate'), /^0\.00 messages\/s/);
  });

  it('renders a running daemon: model, knowledge, store, projection lag, report link', () => {
    const page = renderStatusPage(view({
      headPosition: 1234, events: 1200, deadLetters: 3,
      activeModel: { version: 'v7', sha256: 'abcdef0123456789'.repeat(4), reason: 'promoted', path: '/models/v7' },
      knowledge: { version: 12, contentHash: '0123456789abcdef'.repeat(4), items: 48, tokens: 12345, pools: 2 },
      projections: [{ name: 'knowledge', globalPosition: 1234, lagEvents: 0 }, { name: 'rounds', globalPosition: 1000, lagEvents: 234 }],
    }, { leader: true, ingestRate: 12.345, reportAvailable: true }));
    assert.equal(textOfId(page, 'model-version'), 'v7');
    assert.equal(textOfId(page, 'model-sha256'), 'abcdef012345');
    assert.equal(textOfId(page, 'knowledge-version'), '12');
    assert.equal(textOfId(page, 'knowledge-items'), '48');
    assert.equal(textOfId(page, 'knowledge-tokens'), '12,345');
    assert.equal(textOfId(page, 'knowledge-hash'), '0123456789ab');
    assert.equal(textOfId(page, 'leader'), 'yes');
    assert.equal(textOfId(page, 'head-position'), '1234');
    assert.equal(textOfId(page, 'events'), '1,200');
    assert.equal(textOfId(page, 'dead-letters'), '3');
    assert.match(textOfId(page, 'ingest-rate'), /^12\.3 messages\/s/);
    const projections = textOfId(page, 'projections');
    assert.match(projections, /knowledge 1234 0/);
    assert.match(projections, /rounds 1000 234/);
    assert.match(page, /slowest projection 234 events behind/);
    assert.match(page, /<a href="\/report">/);
    assert.doesNotMatch(page, /report not generated yet/);
  });

  it('shows the Kafka intake: state and assigned partitions', () => {
    const running = renderStatusPage(view({}, {
      kafka: { paused: false, assigned: [{ topic: 'oel.interactions', partition: 0 }, { topic: 'oel.interactions', partition: 2 }], lagEvents: 5 },
    }));
    assert.equal(textOfId(running, 'kafka-state'), 'consuming');
    assert.equal(textOfId(running, 'kafka-partitions'), 'oel.interactions/0 , oel.interactions/2');
    const paused = renderStatusPage(view({}, { kafka: { paused: true, assigned: [], lagEvents: 90_000 } }));
    assert.equal(textOfId(paused, 'kafka-state'), 'paused (projections behind)');
    assert.equal(textOfId(paused, 'kafka-partitions'), 'none');
    assert.match(paused, /90,000 events/);
  });

  it('reads the Kafka intake status defensively', () => {
    assert.equal(asKafkaView(null), null);
    assert.equal(asKafkaView(undefined), null);
    assert.equal(asKafkaView({ paused: 'no' }), null);
    assert.deepEqual(asKafkaView({ paused: true, assigned: [{ topic: 't', partition: 1 }], lagEvents: 7, appendedPerSecond: 3 }),
      { paused: true, assigned: [{ topic: 't', partition: 1 }], lagEvents: 7 });
  });

  it('lists the last rounds with status and pass rates from their evaluation JSON', () => {
    const base = { taskId: null, failedStage: null, trigger: 'threshold', baseModelVersion: 'v1', knowledgeVersion: 4, finishedAt: new Date('2026-01-01T01:00:00Z'), error: null, skipReason: null };
    const page = renderStatusPage(view({
      rounds: [
        { ...base, roundId: 'r3', status: 'running', startedAt: new Date('2026-01-01T02:00:00Z'), finishedAt: null, newModelVersion: null, evaluation: null },
        { ...base, roundId: 'r2', status: 'completed', startedAt: new Date('2026-01-01T00:30:00Z'), newModelVersion: 'v2', evaluation: { passRate: 0.875, episodes: 64 } },
        { ...base, roundId: 'r1', status: 'completed', startedAt: new Date('2026-01-01T00:00:00Z'), newModelVersion: 'v1b', evaluation: { base: { passRate: 0.5 }, candidate: { passRate: 0.625 } } },
        { ...base, roundId: 'r00', status: 'skipped', startedAt: new Date('2026-01-01T00:10:00Z'), newModelVersion: null, evaluation: null, skipReason: 'nothing to improve: all validation episodes passed' },
        { ...base, roundId: 'r0', status: 'failed', startedAt: new Date('2026-01-01T00:00:00Z'), newModelVersion: null, evaluation: null, error: 'trainer: out of memory' },
      ],
    }));
    assert.doesNotMatch(page, /no rounds yet/);
    const rows = textOfId(page, 'rounds');
    assert.match(rows, /r3 — running threshold v1 4 — — 2026-01-01 02:00:00Z —/);
    assert.match(rows, /r2 — completed threshold v1 4 v2 87\.5% 2026-01-01 00:30:00Z 2026-01-01 01:00:00Z/);
    assert.match(rows, /r1 — completed .* base 50\.0%, candidate 62\.5%/);
    assert.match(rows, /r0 — failed trainer: out of memory threshold/);
    assert.match(rows, /r00 — skipped nothing to improve: all validation episodes passed threshold/);
    assert.match(page, /<td class="bad">failed/);
  });

  it('finds pass rates only where they are numbers', () => {
    assert.deepEqual(passRates(null), []);
    assert.deepEqual(passRates({ passRate: 'high' }), []);
    assert.deepEqual(passRates([{ passRate: 1 }]), []);
    assert.deepEqual(passRates({ passRate: 1, after: { passRate: 0.25 }, n: 3 }), [{ label: '', rate: 1 }, { label: 'after', rate: 0.25 }]);
  });
});

describe('status page in a browser (headless Chromium, PostgreSQL)', { timeout: 180_000 }, () => {
  let db: TestDatabase;
  let server: Server;
  let url: string;

  before(async () => {
    db = await serverDatabase();
    await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
    const store = new EventStore(db.sql);
    // The schema forbids markup in model versions; `trusted` skips it, standing for any value that
    // reaches the database some other way: the page must not rely on the schema for safety.
    await store.append([{ streamId: STREAMS.models, events: [
      { id: uuidFromKey('status-page:published'), type: 'ModelVersionPublished', data: { version: 'v<b>1</b>', path: '/models/v1', sha256: 'c0ffee'.repeat(10) + 'beef' } },
      { id: uuidFromKey('status-page:activated'), type: 'ModelVersionActivated', data: { version: 'v<b>1</b>', reason: 'initial' } },
    ] }], { trusted: true });
    await store.append([{ streamId: STREAMS.knowledge, events: [extraction(1, { budget: 1000, items: 3 })] }]);
    for (const projection of createProjections()) await new Projector(db.sql, projection).catchUp();
    server = createHttpServer([statusPageRoute({ sql: db.sql, leader: () => true, kafka: () => null, ingestRate: () => 0.5 })], {}, createLogger('silent'));
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', () => resolve()); });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/status`;
  });

  after(async () => {
    await new Promise<void>((resolve) => { if (server) server.close(() => resolve()); else resolve(); });
    await db?.drop();
  });

  it('serves text/html with every database value escaped', async () => {
    const r = await fetch(url);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    const body = await r.text();
    assert.match(body, /v&lt;b&gt;1&lt;\/b&gt;/);
    assert.doesNotMatch(body, /<b>/);
  });

  it('shows the live model, knowledge version and leader state in Chromium', async () => {
    requireChromium();
    const status = await readStatus(db.sql, 'postgres');
    assert.equal(status.knowledge.version, 1, 'the projectors ran');
    const dom = await dumpDom(url);
    assert.match(dom, /<title>oeld status<\/title>/, `Chromium loaded the page; DOM:\n${dom.slice(0, 2000)}`);
    // The version is text in the DOM, not a <b> element.
    assert.doesNotMatch(dom, /<b[\s>]/i, 'no <b> element in the DOM');
    assert.equal(textOfId(dom, 'model-version'), 'v<b>1</b>');
    assert.match(domText(dom), /version v<b>1<\/b> sha256 c0ffeec0ffee/);
    assert.equal(textOfId(dom, 'knowledge-version'), '1');
    assert.equal(textOfId(dom, 'knowledge-items'), '3');
    assert.equal(textOfId(dom, 'knowledge-hash'), status.knowledge.contentHash.slice(0, 12));
    assert.equal(textOfId(dom, 'leader'), 'yes');
    assert.equal(textOfId(dom, 'events'), '3');
    assert.equal(textOfId(dom, 'head-position'), String(status.headPosition));
    assert.match(textOfId(dom, 'ingest-rate'), /^0\.50 messages\/s/);
    assert.equal(textOfId(dom, 'rounds'), 'no rounds yet');
    assert.equal(textOfId(dom, 'report'), 'report not generated yet');
    assert.match(textOfId(dom, 'projections'), /knowledge \d+ 0 models \d+ 0 rounds \d+ 0/);
  });

  it('renders to a non-empty screenshot', async () => {
    requireChromium();
    const png = await screenshot(url, 1280, 1000);
    const image = decodePng(png);
    assert.equal(image.width, 1280);
    assert.equal(image.height, 1000);
    const colours = new Set<number>();
    let dark = 0;
    for (let i = 0; i < image.pixels.length; i += image.channels) {
      const [r, g, b] = image.channels >= 3 ? [image.pixels[i]!, image.pixels[i + 1]!, image.pixels[i + 2]!] : [image.pixels[i]!, image.pixels[i]!, image.pixels[i]!];
      colours.add((r << 16) | (g << 8) | b);
      if (r + g + b < 200) dark++;
    }
    const pixels = image.width * image.height;
    assert.ok(colours.size > 50, `the page is drawn (not one flat colour): ${colours.size} distinct colours`);
    assert.ok(dark / pixels > 0.002, `text and the dark header are drawn: ${dark} dark pixels of ${pixels}`);
  });
});

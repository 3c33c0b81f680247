import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderReport, type ReportData } from '../src/report/render-report.ts';

const T0 = Date.parse('2026-03-01T10:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000);
const EVIL = '<script>alert(1)</script>';

type Evaluation = ReportData['evaluations'][number];
const evaluation = (e: Partial<Evaluation> & Pick<Evaluation, 'modelVersion' | 'passRate'>): Evaluation => ({
  game: 'lake', split: 'validation', knowledge: null, episodes: 40, meanResponseTokens: 100, meanTurns: 3, recordedAt: at(0), ...e,
});

function emptyData(): ReportData {
  return { generatedAt: at(600), title: 'oeld learning report', versions: [], evaluations: [], rounds: [], knowledge: [] };
}

/** 3 versions; validation, test and validation-with-knowledge series; 2 rounds with curves; 3 knowledge versions. */
function realistic(): ReportData {
  return {
    generatedAt: at(600),
    title: 'oeld learning report',
    versions: [
      { version: 'v1', baseVersion: null, roundId: null, publishedAt: at(0), active: false },
      { version: 'v2', baseVersion: 'v1', roundId: 'round-aaaaaaaa-1111', publishedAt: at(100), active: false },
      { version: 'v3', baseVersion: 'v2', roundId: 'round-bbbbbbbb-2222', publishedAt: at(200), active: true },
    ],
    evaluations: [
      // v1 validation was evaluated twice: the later 50% replaces the earlier 10%.
      evaluation({ modelVersion: 'v1', passRate: 0.1, meanResponseTokens: 999.9, recordedAt: at(1) }),
      evaluation({ modelVersion: 'v1', passRate: 0.5, meanResponseTokens: 140.25, recordedAt: at(5) }),
      evaluation({ modelVersion: 'v1', split: 'test', passRate: 0.4, meanResponseTokens: 150, recordedAt: at(5) }),
      evaluation({ modelVersion: 'v2', passRate: 0.625, meanResponseTokens: 123.45, recordedAt: at(105) }),
      evaluation({ modelVersion: 'v2', split: 'test', passRate: 0.55, meanResponseTokens: 120, recordedAt: at(105) }),
      evaluation({ modelVersion: 'v2', knowledge: 'base#0', passRate: 0.7, meanResponseTokens: 110, recordedAt: at(106) }),
      evaluation({ modelVersion: 'v3', passRate: 0.75, meanResponseTokens: 101, recordedAt: at(205) }),
      evaluation({ modelVersion: 'v3', split: 'test', passRate: 0.6, meanResponseTokens: 99, recordedAt: at(205) }),
      evaluation({ modelVersion: 'v3', knowledge: 'base#1', passRate: 0.8, meanResponseTokens: 95, recordedAt: at(206) }),
    ],
    rounds: [
      {
        roundId: 'round-aaaaaaaa-1111', status: 'completed', baseModelVersion: 'v1', newModelVersion: 'v2',
        startedAt: at(90), finishedAt: new Date(at(90).getTime() + 125_000),
        curve: [
          { step: 0, loss: 2.5, gradNorm: 1.5 }, { step: 1, loss: 2.1, gradNorm: 1.2 },
          { step: 2, loss: 1.8, gradNorm: 0.9 }, { step: 3, loss: 1.6, gradNorm: 0.8 },
        ],
        seconds: { extract: 20, train: 90, evaluate: 15 }, error: null,
      },
      {
        roundId: 'round-bbbbbbbb-2222', status: 'completed', baseModelVersion: 'v2', newModelVersion: 'v3',
        startedAt: at(190), finishedAt: at(200),
        curve: [{ step: 1, loss: 1.55, gradNorm: 0.7 }, { step: 2, loss: 1.4 }, { step: 3, loss: 1.3, gradNorm: 0.5 }],
        seconds: { extract: 30, train: 500 }, error: null,
      },
    ],
    knowledge: [
      { version: 1, items: 12, tokens: 800, recordedAt: at(50) },
      { version: 2, items: 30, tokens: 2100, recordedAt: at(150) },
      { version: 3, items: 41, tokens: 12_345, recordedAt: at(250) },
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Checks on the markup

const VOID = new Set(['meta', 'br', 'hr', 'img', 'input', 'link', 'col', 'wbr']);
const TAG = /^<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+(?:="[^"<>]*")?)*)\s*(\/?)>$/;

/**
 * A strict well-formedness check for the report's own markup: every `<` opens a tag whose attributes are all
 * double-quoted, no stray `<`/`>` in text, every `&` starts one of the entities the escaper writes, and every
 * non-void element (svg, table, section, ...) is closed in order.
 */
function assertWellFormed(page: string): void {
  const body = page.replace(/^<!doctype html>/, '').replace(/<style>[\s\S]*?<\/style>/, '<style></style>');
  const tags = body.match(/<[^>]*>/g) ?? [];
  const text = body.replace(/<[^>]*>/g, '');
  assert.ok(!/[<>]/.test(text), `stray < or > in text: ${text.match(/.{0,40}[<>].{0,40}/)?.[0]}`);
  assert.ok(!/&(?!(amp|lt|gt|quot|#39);)/.test(body), `bare & in ${body.match(/.{0,40}&(?!(amp|lt|gt|quot|#39);).{0,40}/)?.[0]}`);
  const stack: string[] = [];
  for (const tag of tags) {
    const m = tag.match(TAG);
    assert.ok(m, `malformed tag ${tag}`);
    const [, closing, name, , selfClosing] = m;
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the element open at that point`);
    else if (!selfClosing && !VOID.has(name!)) stack.push(name!);
  }
  assert.deepEqual(stack, [], 'every element is closed');
}

function assertFinite(page: string): void {
  assert.ok(!/NaN|Infinity/.test(page), `NaN or Infinity in ${page.match(/.{0,60}(NaN|Infinity).{0,60}/)?.[0]}`);
}

/** Every coordinate in every chart is a finite number inside the 640x280 view box. */
function assertCoordinatesInside(page: string): void {
  for (const svg of page.match(/<svg[\s\S]*?<\/svg>/g) ?? []) {
    assert.match(svg, /viewBox="0 0 640 280"/);
    for (const [, attr, value] of svg.matchAll(/\s(x|y|x1|x2|y1|y2|cx|cy)="([^"]*)"/g)) {
      const v = Number(value);
      const max = attr!.startsWith('x') || attr === 'cx' ? 640 : 280;
      assert.ok(Number.isFinite(v) && v >= 0 && v <= max, `${attr}="${value}" is inside the view box`);
    }
    for (const [, points] of svg.matchAll(/\spoints="([^"]*)"/g)) {
      for (const pair of points!.split(' ')) {
        const [x, y] = pair.split(',').map(Number);
        assert.ok(Number.isFinite(x) && Number.isFinite(y) && x! >= 0 && x! <= 640 && y! >= 0 && y! <= 280, `polyline point ${pair}`);
      }
    }
  }
}

function assertSound(page: string): void {
  assertFinite(page);
  assertWellFormed(page);
  assertCoordinatesInside(page);
}

/** The <svg> with this id. */
function chart(page: string, id: string): string {
  const m = page.match(new RegExp(`<svg class="chart" id="${id}"[\\s\\S]*?</svg>`));
  assert.ok(m, `chart ${id} is rendered`);
  return m[0];
}

/** The element with this id, whole. */
function element(page: string, tag: string, id: string): string {
  const m = page.match(new RegExp(`<${tag} id="${id}"[\\s\\S]*?</${tag}>`));
  assert.ok(m, `<${tag} id="${id}"> is rendered`);
  return m[0];
}

const count = (s: string, re: RegExp): number => (s.match(re) ?? []).length;
const circles = (svg: string): number => count(svg, /<circle class="pt"/g);
const seriesPoints = (svg: string): Record<string, number> =>
  Object.fromEntries([...svg.matchAll(/data-series="([^"]*)" data-points="(\d+)"/g)].map(([, s, n]) => [s!, Number(n)]));

// ---------------------------------------------------------------------------------------------------------------

describe('learning report page', () => {
  it('renders every section, chart and table of a realistic data set', () => {
    const page = renderReport(realistic());
    assertSound(page);
    assert.match(page, /^<!doctype html>/);
    assert.ok(!/<script|<link|<img|src=|href=|@import|url\(/i.test(page), 'nothing external, nothing executable');

    // Header.
    assert.match(page, /<h1>oeld learning report<\/h1>/);
    assert.match(page, /<time id="generated-at">2026-03-01 20:00:00Z<\/time>/);
    assert.match(page, /<code id="active-version">v3<\/code>/);

    for (const [id, title] of [['pass-rate', 'Pass rate per model version'], ['response-length', 'Response length per model version'],
      ['loss', 'Loss per training step'], ['knowledge', 'Knowledge size per version'], ['rounds', 'Rounds']] as const) {
      assert.match(element(page, 'section', id), new RegExp(`<h2>${title}</h2>`));
    }
    assert.equal(count(page, /<svg /g), 6, 'pass rate, response length, loss, grad norm, knowledge items and tokens');
    for (const svg of page.match(/<svg[\s\S]*?<\/svg>/g)!) {
      assert.match(svg, /role="img"/);
      assert.match(svg, /<title id="[\w-]+">[^<]+<\/title>/, 'each chart has an accessible title');
      assert.match(svg, /<g class="legend">/, 'each chart has a legend');
      assert.match(svg, /<g class="axes">[\s\S]*text-anchor="end">[^<]+<\/text>/, 'each chart has y tick labels');
    }

    // Pass rate: three series, the latest evaluation per version and series, labelled points.
    const pass = chart(page, 'chart-pass-rate');
    assert.deepEqual(seriesPoints(pass), { 'lake · validation': 3, 'lake · validation · knowledge': 2, 'lake · test': 3 });
    assert.equal(circles(pass), 8);
    assert.equal(count(pass, /class="pt-label"/g), 8);
    assert.match(pass, />62\.5%<\/text>/, 'points carry their value');
    assert.match(pass, />0%<\/text>[\s\S]*>100%<\/text>/, 'y axis runs 0-100%');
    for (const v of ['v1', 'v2', 'v3']) assert.match(pass, new RegExp(`text-anchor="middle">${v}</text>`), `x tick ${v}`);
    const passTable = element(page, 'table', 'table-pass-rate');
    assert.match(passTable, /<td[^>]*>62\.5% <span class="muted">\(40 ep\)<\/span><\/td>/);
    assert.match(passTable, />50\.0% /, 'the later v1 evaluation');
    assert.ok(!page.includes('10.0%'), 'the superseded v1 evaluation is not shown');
    assert.equal(count(passTable, /<tr>/g), 4, 'header and three versions');
    assert.match(passTable, /<th>lake · validation<\/th><th>lake · validation · knowledge<\/th><th>lake · test<\/th>/, 'columns in series order');
    assert.match(passTable, /<tr><td><code>v1<\/code><\/td><td[^>]*>50\.0% <span class="muted">\(40 ep\)<\/span><\/td><td class="muted">—<\/td><td[^>]*>40\.0% /, 'v1 had no with-knowledge evaluation');
    assert.match(passTable, /title="knowledge base#1, recorded 2026-03-01 13:26:00Z">80\.0%/);

    // Response length: same series, mean tokens.
    const resp = chart(page, 'chart-response-tokens');
    assert.equal(circles(resp), 8);
    assert.deepEqual(Object.values(seriesPoints(resp)).sort(), [2, 3, 3]);
    const respTable = element(page, 'table', 'table-response-tokens');
    assert.match(respTable, />123\.5 <span class="muted">tok · 3\.0 turns<\/span>/);
    assert.match(respTable, />140\.3 /);
    assert.ok(!page.includes('999.9'), 'the superseded v1 evaluation is not shown');

    // Loss: one series per round on a global step axis (round 2's steps 1-3 follow round 1's 0-3 as 4-6).
    const loss = chart(page, 'chart-loss');
    assert.deepEqual(seriesPoints(loss), { 'round-aa → v2': 4, 'round-bb → v3': 3 });
    assert.equal(circles(loss), 7);
    assert.deepEqual([...loss.matchAll(/data-point="(\d+)"/g)].map((m) => Number(m[1])), [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(count(loss, /<g class="separator">/g), 2, 'a marker where each round starts');
    const grad = chart(page, 'chart-grad-norm');
    assert.equal(circles(grad), 6, 'one point per recorded gradient norm');
    const lossTable = element(page, 'table', 'table-loss');
    assert.match(lossTable, /<td>4<\/td><td>0–3 <span class="muted">\(global 0–3\)<\/span><\/td><td>2\.5<\/td><td>1\.6<\/td><td>1\.6<\/td><td>0\.8<\/td>/);
    assert.match(lossTable, /<td>3<\/td><td>1–3 <span class="muted">\(global 4–6\)<\/span><\/td><td>1\.55<\/td><td>1\.3<\/td><td>1\.3<\/td><td>0\.5<\/td>/);

    // Knowledge: items and tokens over three versions.
    assert.equal(circles(chart(page, 'chart-knowledge-items')), 3);
    assert.equal(circles(chart(page, 'chart-knowledge-tokens')), 3);
    assert.match(element(page, 'table', 'table-knowledge'), /<tr><td>3<\/td><td>41<\/td><td>12,345<\/td><td>2026-03-01 14:10:00Z<\/td><\/tr>/);

    // Rounds.
    const rounds = element(page, 'table', 'table-rounds');
    assert.equal(count(rounds, /<tr>/g), 3);
    assert.match(rounds, /<code title="round-aaaaaaaa-1111">round-aa<\/code>/);
    assert.match(rounds, /<td class="ok">completed<\/td><td><code>v1<\/code> → <code>v2<\/code><\/td>/);
    assert.match(rounds, /<td>2m 05s<\/td><td><span class="stage">extract 20s<\/span> · <span class="stage">train 1m 30s<\/span> · <span class="stage">evaluate 15s<\/span><\/td>/);
    assert.match(rounds, /<td>10m 00s<\/td><td><span class="stage">extract 30s<\/span> · <span class="stage">train 8m 20s<\/span><\/td>/);
  });

  it('renders empty data as "no ... yet" notes', () => {
    const page = renderReport(emptyData());
    assertSound(page);
    assert.equal(count(page, /<svg/g), 0);
    assert.equal(count(page, /no evaluations yet/g), 2, 'pass rate and response length');
    for (const note of ['no training curves yet', 'no knowledge versions yet', 'no rounds yet', 'no model versions published yet']) {
      assert.ok(page.includes(note), note);
    }
    assert.match(page, /<span id="active-version" class="muted">none yet<\/span>/);
  });

  it('escapes every string from the event log', () => {
    const d = realistic();
    d.title = `report <i>${EVIL}</i>`;
    d.versions.push({ version: EVIL, baseVersion: 'v3', roundId: `r"><svg onload=alert(1)>`, publishedAt: at(300), active: true });
    d.evaluations.push(evaluation({ modelVersion: EVIL, game: '<b>lake</b>', knowledge: '"><img src=x>', passRate: 0.9, recordedAt: at(305) }));
    d.rounds.push({
      roundId: `<r id="x">&`, status: 'failed', baseModelVersion: EVIL, newModelVersion: null, startedAt: at(300), finishedAt: at(301),
      curve: [{ step: 0, loss: 1 }], seconds: { [`<stage>"`]: 3 }, error: `boom &"'<> ${EVIL}`,
    });
    const page = renderReport(d);
    assertSound(page);
    assert.ok(!page.includes(EVIL), 'the raw <script> never appears');
    assert.ok(!/<script|<b>|<i>|<img|<r |<stage>|onload=alert/.test(page.replace(/&lt;[^&]*&gt;/g, '')), 'no injected element');
    assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.match(page, /<code id="active-version">&lt;script&gt;alert\(1\)&lt;\/script&gt;<\/code>/);
    assert.match(page, /<td class="error">boom &amp;&quot;&#39;&lt;&gt; &lt;script&gt;/);
    assert.ok(!page.includes(`&"'<>`), 'the raw error text is absent');
    assert.match(chart(page, 'chart-pass-rate'), /data-series="&lt;b&gt;lake&lt;\/b&gt; · validation · knowledge"/);
    assert.match(page, /title="knowledge &quot;&gt;&lt;img src=x&gt;, recorded/);
    assert.match(page, /<span class="stage">&lt;stage&gt;&quot; 3\.0s<\/span>/);
    assert.match(page, /<title>report &lt;i&gt;/);
  });

  it('plots a single version, step and knowledge version without dividing by zero', () => {
    const d: ReportData = {
      ...emptyData(),
      versions: [{ version: 'only', baseVersion: null, roundId: null, publishedAt: at(0), active: true }],
      evaluations: [evaluation({ modelVersion: 'only', passRate: 1, meanResponseTokens: 0, recordedAt: at(1) })],
      rounds: [{ roundId: 'r1', status: 'running', baseModelVersion: 'only', newModelVersion: null, startedAt: at(595), finishedAt: null, curve: [{ step: 7, loss: 0.5, gradNorm: 0 }], seconds: {}, error: null }],
      knowledge: [{ version: 4, items: 0, tokens: 0, recordedAt: at(2) }],
    };
    const page = renderReport(d);
    assertSound(page);
    const pass = chart(page, 'chart-pass-rate');
    assert.equal(circles(pass), 1);
    assert.match(pass, /<circle class="pt" data-point="0" cx="253" cy="18"/, 'the single version sits mid-axis at 100%');
    assert.match(pass, />100\.0%<\/text>/);
    for (const id of ['chart-response-tokens', 'chart-loss', 'chart-grad-norm', 'chart-knowledge-items', 'chart-knowledge-tokens']) {
      assert.equal(circles(chart(page, id)), 1, id);
    }
    assert.match(element(page, 'table', 'table-rounds'), /<td class="warn">running<\/td>[\s\S]*<td>running for 5m 00s<\/td>/);
  });

  it('shows non-finite numbers as n/a and never writes them into the charts', () => {
    const d = realistic();
    d.evaluations.push(evaluation({ modelVersion: 'v3', game: 'maze', passRate: Number.NaN, meanResponseTokens: Number.POSITIVE_INFINITY, recordedAt: at(300) }));
    d.rounds[0]!.curve.push({ step: 4, loss: Number.NaN, gradNorm: Number.POSITIVE_INFINITY });
    d.rounds[1]!.seconds.train = Number.NaN;
    d.knowledge.push({ version: 5, items: Number.NaN, tokens: 10, recordedAt: new Date(Number.NaN) });
    const page = renderReport(d);
    assertSound(page);
    assert.match(element(page, 'table', 'table-pass-rate'), />n\/a <span class="muted">/);
    assert.equal(circles(chart(page, 'chart-loss')), 7, 'the NaN loss is not plotted');
    assert.match(element(page, 'table', 'table-knowledge'), /<tr><td>5<\/td><td>n\/a<\/td><td>10<\/td><td>invalid date<\/td><\/tr>/);
    assert.match(element(page, 'table', 'table-rounds'), /<span class="stage">train —<\/span>/);
  });

  it('orders evaluated but unpublished versions after the published ones', () => {
    const d = realistic();
    d.evaluations.push(evaluation({ modelVersion: 'candidate-9', passRate: 0.3, recordedAt: at(400) }));
    d.evaluations.push(evaluation({ modelVersion: 'candidate-8', passRate: 0.2, recordedAt: at(350) }));
    const page = renderReport(d);
    assertSound(page);
    const rows = [...element(page, 'table', 'table-pass-rate').matchAll(/<tr><td><code>([^<]+)<\/code>/g)].map((m) => m[1]);
    assert.deepEqual(rows, ['v1', 'v2', 'v3', 'candidate-8', 'candidate-9']);
    assert.match(page, /<code>candidate-8<\/code> <span class="muted">\(not published\)<\/span>/);
    assert.equal(circles(chart(page, 'chart-pass-rate')), 10);
  });

  it('keeps a long training curve bounded: no per-point markers, thinned polyline that keeps spikes', () => {
    const d = realistic();
    const curve = Array.from({ length: 5000 }, (_, i) => ({ step: i, loss: 2 - i / 5000, gradNorm: 1 }));
    curve[2500]!.loss = 40;
    d.rounds = [{ ...d.rounds[0]!, curve }];
    const page = renderReport(d);
    assertSound(page);
    const loss = chart(page, 'chart-loss');
    assert.equal(circles(loss), 0);
    assert.match(loss, /data-points="5000"/);
    const points = loss.match(/\spoints="([^"]*)"/)![1]!.split(' ');
    assert.ok(points.length <= 800, `${points.length} polyline points`);
    assert.ok(points.some((p) => p.endsWith(',18')), 'the spike reaches the top of the plot');
    assert.ok(page.length < 200_000, `page is ${page.length} characters`);
  });
});

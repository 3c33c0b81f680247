/**
 * The learning report: one self-contained HTML page (inline CSS and hand-written inline SVG; no scripts, fonts or
 * external assets), because operators open it from disk or attach it to a ticket and it must render offline, as
 * generated. renderReport is pure; every string from the event log is escaped by the `html` tag of the status page.
 */
import { html, SafeHtml } from '../http/status-page.ts';

export interface ReportData {
  generatedAt: Date;
  title: string; // e.g. "oeld learning report"
  versions: { version: string; baseVersion: string | null; roundId: string | null; publishedAt: Date; active: boolean }[]; // in publication order
  evaluations: { modelVersion: string; game: string; split: 'validation' | 'test'; knowledge: string | null /* e.g. "base#0" when knowledge was in context, null otherwise */; episodes: number; passRate: number /* 0..1 */; meanResponseTokens: number; meanTurns: number; recordedAt: Date }[];
  rounds: { roundId: string; /** null: a round from before tasks. */ taskId?: string | null; status: 'running' | 'completed' | 'failed'; baseModelVersion: string; newModelVersion: string | null; startedAt: Date; finishedAt: Date | null; curve: { step: number; loss: number; gradNorm?: number; responseTokens?: number }[]; seconds: Record<string, number>; error: string | null }[];
  knowledge: { version: number; items: number; tokens: number; recordedAt: Date }[];
  /** Chat tasks' gate measurements (token-mean KL; lower is better). */
  measurements?: { kind: 'distillation-gap' | 'retention' | 'external'; taskId: string; modelVersion: string; against: string; prompts: number; figure: string; roundId: string | null; recordedAt: Date }[];
}

type Evaluation = ReportData['evaluations'][number];
type Round = ReportData['rounds'][number];
type Knowledge = ReportData['knowledge'][number];

// ---------------------------------------------------------------------------------------------------------------
// Formatting

const finite = (v: number): boolean => typeof v === 'number' && Number.isFinite(v);
const time = (d: Date): number => (d instanceof Date && finite(d.getTime()) ? d.getTime() : Number.NEGATIVE_INFINITY);

function when(d: Date | null): string {
  if (d === null) return '—';
  return finite(time(d)) ? d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : 'invalid date';
}
const percent = (r: number): string => (finite(r) ? `${(r * 100).toFixed(1)}%` : 'n/a');
const integer = (n: number): string => (finite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const decimal = (n: number, digits = 1): string => (finite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a');
/** Losses and gradient norms: four significant digits. */
const measure = (n: number | undefined): string => (n === undefined ? '—' : finite(n) ? String(Number(n.toPrecision(4))) : 'n/a');
const shortId = (id: string, n = 8): string => (id.length > n ? id.slice(0, n) : id);
const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function duration(seconds: number): string {
  if (!finite(seconds) || seconds < 0) return '—';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h ? `${h}h ${String(m).padStart(2, '0')}m` : `${m}m ${String(sec).padStart(2, '0')}s`;
}

/** Tick labels: as many decimals as the tick step needs, thousands and millions shortened. */
function tickFormat(step: number): (v: number) => string {
  const decimals = step >= 1 ? 0 : Math.min(10, -Math.floor(Math.log10(step) + 1e-9));
  return (v) => {
    const a = Math.abs(v);
    const trim = (s: string) => s.replace(/\.0$/, '');
    if (a >= 1e6) return `${trim((v / 1e6).toFixed(1))}M`;
    if (a >= 1e4) return `${trim((v / 1e3).toFixed(1))}k`;
    return v.toFixed(decimals);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Scales and charts. Every coordinate written into the SVG goes through `px`, which never emits NaN or Infinity.

const W = 640, H = 280;
const PLOT = { left: 62, right: 444, top: 18, bottom: 230 };
const LEGEND_X = 456;
const LEGEND_ROW = 18;
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
/** Above this many points in a chart, points get no circle markers (the polyline and the table carry them). */
const MAX_MARKERS = 150;
/** A series longer than this is drawn through min/max buckets, so loss spikes stay visible. */
const MAX_LINE_POINTS = 800;
/** Point value labels only while the categories are few enough to read. */
const MAX_LABELLED_CATEGORIES = 12;

const px = (v: number): string => (finite(v) ? String(Math.round(v * 10) / 10) : '0');
const colour = (i: number): string => PALETTE[i % PALETTE.length]!;
const dash = (i: number): string => ['', '6 3', '2 3'][Math.floor(i / PALETTE.length) % 3]!;

interface Scale { domain: [number, number]; ticks: number[]; step: number }

function niceStep(raw: number): number {
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/** A domain covering [lo, hi] rounded out to about five 1-2-5 ticks; a single value gets a band around it. */
function niceScale(lo: number, hi: number, o: { zero?: boolean; integer?: boolean } = {}): Scale {
  const fallback: Scale = { domain: [0, 1], ticks: [0, 0.2, 0.4, 0.6, 0.8, 1], step: 0.2 };
  if (!finite(lo) || !finite(hi)) return fallback;
  if (o.zero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
  if (lo === hi) {
    const pad = o.integer ? 1 : Math.abs(lo) * 0.1 || 1;
    const nonNegative = lo >= 0;
    lo -= pad; hi += pad;
    if (nonNegative) lo = Math.max(lo, 0);
  }
  const raw = (hi - lo) / 5;
  if (!finite(raw) || raw <= 0) return fallback;
  let step = niceStep(raw);
  if (o.integer && step < 1) step = 1;
  const start = Math.floor(lo / step), end = Math.ceil(hi / step);
  if (!finite(start) || !finite(end) || end - start > 50) return fallback;
  const ticks: number[] = [];
  for (let i = start; i <= end; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { domain: [ticks[0]!, ticks[ticks.length - 1]!], ticks, step };
}

/** Maps a domain onto a pixel range; a collapsed domain maps to the middle. */
function linear([d0, d1]: [number, number], r0: number, r1: number): (v: number) => number {
  return (v) => (d1 === d0 ? (r0 + r1) / 2 : r0 + ((v - d0) / (d1 - d0)) * (r1 - r0));
}

/** Evenly spaced category positions; a single category sits in the middle. */
function categoryPositions(n: number): (i: number) => number {
  const pad = 24;
  return (i) => (n <= 1 ? (PLOT.left + PLOT.right) / 2 : PLOT.left + pad + (i * (PLOT.right - PLOT.left - 2 * pad)) / (n - 1));
}

interface Point { x: number; y: number; tip: string; label?: string }
interface Line { name: string; colour: string; dash: string; points: Point[] }
type XAxis =
  | { kind: 'category'; title: string; labels: string[] }
  | { kind: 'linear'; title: string; integer: boolean };
interface YAxis { title: string; format?: (v: number) => string; fixed?: Scale; zero?: boolean }
interface Chart {
  id: string;
  title: string;
  desc: string;
  x: XAxis;
  y: YAxis;
  lines: Line[];
  /** Write each point's value next to it (categorical charts with few categories). */
  pointLabels?: boolean;
  /** Vertical markers, e.g. where one round's steps end and the next round's begin. */
  separators?: { x: number; label: string }[];
}

/** Keeps at most MAX_LINE_POINTS points: the lowest and highest y of each bucket, in x order. */
function thin(points: Point[]): Point[] {
  if (points.length <= MAX_LINE_POINTS) return points;
  const size = Math.ceil(points.length / (MAX_LINE_POINTS / 2));
  const out: Point[] = [];
  for (let i = 0; i < points.length; i += size) {
    const bucket = points.slice(i, i + size);
    let lo = bucket[0]!, hi = bucket[0]!;
    for (const p of bucket) { if (p.y < lo.y) lo = p; if (p.y > hi.y) hi = p; }
    if (lo === hi) out.push(lo);
    else out.push(...(lo.x <= hi.x ? [lo, hi] : [hi, lo]));
  }
  return out;
}

function legend(lines: Line[]): SafeHtml {
  const room = Math.floor((PLOT.bottom - PLOT.top) / LEGEND_ROW);
  const shown = lines.length > room ? lines.slice(0, room - 1) : lines;
  const rest = lines.length - shown.length;
  return html`<g class="legend">${shown.map((l, i) => {
    const y = PLOT.top + 6 + i * LEGEND_ROW;
    return html`<g class="legend-item"><line x1="${LEGEND_X}" x2="${LEGEND_X + 18}" y1="${px(y)}" y2="${px(y)}" stroke="${l.colour}" stroke-width="2.5"${l.dash ? html` stroke-dasharray="${l.dash}"` : ''}/><text x="${LEGEND_X + 22}" y="${px(y + 4)}">${clip(l.name, 28)}<title>${l.name}</title></text></g>`;
  })}${rest > 0 ? html`<text x="${LEGEND_X}" y="${px(PLOT.top + 10 + shown.length * LEGEND_ROW)}">+${rest} more (see table)</text>` : ''}</g>`;
}

/** One line chart as inline SVG, or a note when nothing in it is a finite number. */
function renderChart(c: Chart): SafeHtml {
  const lines = c.lines
    .map((l) => ({ ...l, points: l.points.filter((p) => finite(p.x) && finite(p.y)).sort((a, b) => a.x - b.x) }))
    .filter((l) => l.points.length > 0);
  if (lines.length === 0) return html`<p class="muted" data-chart="${c.id}">nothing to plot: no finite values</p>`;
  const all = lines.flatMap((l) => l.points);

  const ys = all.map((p) => p.y);
  const yScale = c.y.fixed ?? niceScale(Math.min(...ys), Math.max(...ys), { zero: c.y.zero });
  const yFormat = c.y.format ?? tickFormat(yScale.step);
  const toY = linear(yScale.domain, PLOT.bottom, PLOT.top);
  const yOf = (v: number) => Math.min(PLOT.bottom, Math.max(PLOT.top, toY(v)));

  let xOf: (v: number) => number;
  let xTicks: { at: number; label: string; full: string }[];
  if (c.x.kind === 'category') {
    const labels = c.x.labels;
    xOf = categoryPositions(labels.length);
    const stride = Math.max(1, Math.ceil(labels.length / 10));
    xTicks = labels.flatMap((l, i) => (i % stride === 0 ? [{ at: xOf(i), label: clip(l, 12), full: l }] : []));
  } else {
    const xs = all.map((p) => p.x);
    const lo = Math.min(...xs), hi = Math.max(...xs);
    const s = niceScale(lo, hi, { integer: c.x.integer, zero: lo >= 0 && lo <= (hi - lo) / 2 });
    xOf = linear(s.domain, PLOT.left, PLOT.right);
    const f = tickFormat(s.step);
    xTicks = s.ticks.map((t) => ({ at: xOf(t), label: f(t), full: f(t) }));
  }

  const markers = all.length <= MAX_MARKERS;
  const labelled = !!c.pointLabels && c.x.kind === 'category' && c.x.labels.length <= MAX_LABELLED_CATEGORIES;
  const titleId = `${c.id}-title`, descId = `${c.id}-desc`;
  const midY = (PLOT.top + PLOT.bottom) / 2;

  return html`<svg class="chart" id="${c.id}" data-chart="${c.id}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-labelledby="${titleId} ${descId}" xmlns="http://www.w3.org/2000/svg">
<title id="${titleId}">${c.title}</title><desc id="${descId}">${c.desc}</desc>
<g class="axes">
${yScale.ticks.map((t) => html`<line class="grid" x1="${PLOT.left}" x2="${PLOT.right}" y1="${px(yOf(t))}" y2="${px(yOf(t))}" stroke="#e6e9ef"/><text x="${PLOT.left - 6}" y="${px(yOf(t) + 4)}" text-anchor="end">${yFormat(t)}</text>\n`)}<line x1="${PLOT.left}" x2="${PLOT.left}" y1="${PLOT.top}" y2="${PLOT.bottom}" stroke="#5a6475"/><line x1="${PLOT.left}" x2="${PLOT.right}" y1="${PLOT.bottom}" y2="${PLOT.bottom}" stroke="#5a6475"/>
${xTicks.map((t) => html`<line x1="${px(t.at)}" x2="${px(t.at)}" y1="${PLOT.bottom}" y2="${PLOT.bottom + 4}" stroke="#5a6475"/><text x="${px(t.at)}" y="${PLOT.bottom + 16}" text-anchor="middle">${t.label}${t.full !== t.label ? html`<title>${t.full}</title>` : ''}</text>\n`)}<text class="axis-title" x="${px((PLOT.left + PLOT.right) / 2)}" y="${H - 8}" text-anchor="middle">${c.x.title}</text>
<text class="axis-title" transform="translate(14 ${px(midY)}) rotate(-90)" text-anchor="middle">${c.y.title}</text>
</g>
${(c.separators ?? []).map((s) => html`<g class="separator"><line x1="${px(xOf(s.x))}" x2="${px(xOf(s.x))}" y1="${PLOT.top}" y2="${PLOT.bottom}" stroke="#aab2c0" stroke-dasharray="3 3"/><text x="${px(xOf(s.x) + 3)}" y="${PLOT.top + 9}" class="sep-label">${s.label}</text></g>\n`)}${lines.map((l) => html`<g class="series" data-series="${l.name}" data-points="${l.points.length}">
<polyline fill="none" stroke="${l.colour}" stroke-width="2"${l.dash ? html` stroke-dasharray="${l.dash}"` : ''} points="${thin(l.points).map((p) => `${px(xOf(p.x))},${px(yOf(p.y))}`).join(' ')}"/>
${markers ? l.points.map((p) => html`<circle class="pt" data-point="${p.x}" cx="${px(xOf(p.x))}" cy="${px(yOf(p.y))}" r="3.5" fill="${l.colour}"><title>${l.name} · ${p.tip}</title></circle>`) : ''}${labelled ? l.points.map((p) => html`<text class="pt-label" x="${px(xOf(p.x))}" y="${px(yOf(p.y) - 7)}" text-anchor="middle" fill="${l.colour}">${p.label ?? ''}</text>`) : ''}
</g>
`)}${legend(lines)}
</svg>`;
}

// ---------------------------------------------------------------------------------------------------------------
// Sections

/** One evaluation series: a game, a split, with or without knowledge in context. */
interface EvalSeries { key: string; game: string; split: string; withKnowledge: boolean; name: string; colour: string; dash: string }

const seriesKey = (e: Evaluation): string => JSON.stringify([e.game, e.split, e.knowledge !== null]);

function evaluationSeries(evaluations: Evaluation[]): EvalSeries[] {
  const seen = new Map<string, Evaluation>();
  for (const e of evaluations) if (!seen.has(seriesKey(e))) seen.set(seriesKey(e), e);
  const sorted = [...seen.entries()].sort(([, a], [, b]) =>
    a.game.localeCompare(b.game) || (a.split === b.split ? 0 : a.split === 'validation' ? -1 : 1) || (a.knowledge === null ? 0 : 1) - (b.knowledge === null ? 0 : 1));
  // A game and split keep one colour; the with-knowledge line is the dashed twin of the one without.
  const colourOf = new Map<string, number>();
  return sorted.map(([key, e]) => {
    const gs = JSON.stringify([e.game, e.split]);
    if (!colourOf.has(gs)) colourOf.set(gs, colourOf.size);
    const i = colourOf.get(gs)!;
    const withKnowledge = e.knowledge !== null;
    return {
      key, game: e.game, split: e.split, withKnowledge,
      name: `${e.game} · ${e.split}${withKnowledge ? ' · knowledge' : ''}`,
      colour: colour(i), dash: withKnowledge ? '6 3' : dash(i),
    };
  });
}

/** Published versions in publication order, then versions only seen in evaluations, by their first evaluation. */
function versionOrder(d: ReportData): { version: string; published: boolean }[] {
  const out: { version: string; published: boolean }[] = [];
  const seen = new Set<string>();
  for (const v of d.versions) if (!seen.has(v.version)) { seen.add(v.version); out.push({ version: v.version, published: true }); }
  const unpublished = new Map<string, number>();
  for (const e of d.evaluations) {
    if (seen.has(e.modelVersion)) continue;
    unpublished.set(e.modelVersion, Math.min(unpublished.get(e.modelVersion) ?? Number.POSITIVE_INFINITY, time(e.recordedAt)));
  }
  for (const [version] of [...unpublished.entries()].sort((a, b) => (a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1))) out.push({ version, published: false });
  return out;
}

/** The latest evaluation per (version, series); on equal times the later one in the log wins. */
function latestEvaluations(evaluations: Evaluation[]): Map<string, Evaluation> {
  const latest = new Map<string, Evaluation>();
  for (const e of evaluations) {
    const k = JSON.stringify([e.modelVersion, seriesKey(e)]);
    const prev = latest.get(k);
    if (!prev || time(e.recordedAt) >= time(prev.recordedAt)) latest.set(k, e);
  }
  return latest;
}

interface EvalView { versions: { version: string; published: boolean }[]; series: EvalSeries[]; at: (version: string, s: EvalSeries) => Evaluation | undefined }

function evalView(d: ReportData): EvalView {
  const latest = latestEvaluations(d.evaluations);
  return {
    versions: versionOrder(d),
    series: evaluationSeries(d.evaluations),
    at: (version, s) => latest.get(JSON.stringify([version, s.key])),
  };
}

function evaluationChart(v: EvalView, o: { id: string; title: string; yTitle: string; value: (e: Evaluation) => number; format: (n: number) => string; fixed?: Scale }): SafeHtml {
  const labels = v.versions.map((x) => x.version);
  return renderChart({
    id: o.id, title: o.title,
    desc: `${o.yTitle} of ${v.series.length} evaluation series across ${labels.length} model versions; the latest evaluation per version and series.`,
    x: { kind: 'category', title: 'model version (publication order)', labels },
    y: { title: o.yTitle, fixed: o.fixed, zero: true, format: o.fixed ? (n) => `${Math.round(n * 100)}%` : undefined },
    pointLabels: true,
    lines: v.series.map((s) => ({
      name: s.name, colour: s.colour, dash: s.dash,
      points: labels.flatMap((version, i) => {
        const e = v.at(version, s);
        if (!e) return [];
        const y = o.value(e);
        return [{ x: i, y, tip: `${version}: ${o.format(y)} over ${integer(e.episodes)} episodes`, label: o.format(y) }];
      }),
    })),
  });
}

function evaluationTable(v: EvalView, id: string, cell: (e: Evaluation) => SafeHtml): SafeHtml {
  return html`<table id="${id}"><thead><tr><th>model version</th>${v.series.map((s) => html`<th>${s.name}</th>`)}</tr></thead><tbody>
${v.versions.map(({ version, published }) => html`<tr><td><code>${version}</code>${published ? '' : html` <span class="muted">(not published)</span>`}</td>${v.series.map((s) => {
    const e = v.at(version, s);
    return e
      ? html`<td title="${e.knowledge !== null ? `knowledge ${e.knowledge}, ` : ''}recorded ${when(e.recordedAt)}">${cell(e)}</td>`
      : html`<td class="muted">—</td>`;
  })}</tr>\n`)}</tbody></table>`;
}

const PASS_RATE_SCALE: Scale = { domain: [0, 1], ticks: [0, 0.2, 0.4, 0.6, 0.8, 1], step: 0.2 };

function passRateSection(v: EvalView, empty: boolean): SafeHtml {
  const body = empty
    ? html`<p class="muted empty">no evaluations yet</p>`
    : html`${evaluationChart(v, { id: 'chart-pass-rate', title: 'Pass rate per model version', yTitle: 'pass rate', value: (e) => e.passRate, format: percent, fixed: PASS_RATE_SCALE })}
${evaluationTable(v, 'table-pass-rate', (e) => html`${percent(e.passRate)} <span class="muted">(${integer(e.episodes)} ep)</span>`)}`;
  return html`<section id="pass-rate"><h2>Pass rate per model version</h2>
<p class="note">One line per game, split and whether knowledge was in context (dashed); the latest evaluation of each version.</p>
${body}</section>`;
}

function responseSection(v: EvalView, empty: boolean): SafeHtml {
  const body = empty
    ? html`<p class="muted empty">no evaluations yet</p>`
    : html`${evaluationChart(v, { id: 'chart-response-tokens', title: 'Response length per model version', yTitle: 'mean response tokens', value: (e) => e.meanResponseTokens, format: (n) => decimal(n) })}
${evaluationTable(v, 'table-response-tokens', (e) => html`${decimal(e.meanResponseTokens)} <span class="muted">tok · ${decimal(e.meanTurns)} turns</span>`)}`;
  return html`<section id="response-length"><h2>Response length per model version</h2>
<p class="note">Mean tokens per response, same series as above.</p>
${body}</section>`;
}

/** Each round's curve, sorted by step, placed end to end: global step = the round's offset + (step − its first step). */
function globalCurves(rounds: Round[]): { round: Round; index: number; offset: number; points: (Round['curve'][number] & { x: number })[] }[] {
  const out: ReturnType<typeof globalCurves> = [];
  let offset = 0;
  rounds.forEach((round, index) => {
    const curve = round.curve.filter((p) => finite(p.step)).sort((a, b) => a.step - b.step);
    if (curve.length === 0) return;
    const first = curve[0]!.step, last = curve[curve.length - 1]!.step;
    out.push({ round, index, offset, points: curve.map((p) => ({ ...p, x: offset + (p.step - first) })) });
    offset += last - first + 1;
  });
  return out;
}

function roundName(r: Round): string {
  return `${shortId(r.roundId)} → ${r.newModelVersion ?? r.status}`;
}

function lossSection(d: ReportData): SafeHtml {
  const curves = globalCurves(d.rounds);
  if (curves.length === 0) {
    return html`<section id="loss"><h2>Loss per training step</h2><p class="muted empty">no training curves yet</p></section>`;
  }
  const line = (c: (typeof curves)[number], value: (p: Round['curve'][number]) => number | undefined, what: string): Line => ({
    name: roundName(c.round), colour: colour(c.index), dash: dash(c.index),
    points: c.points.flatMap((p) => {
      const y = value(p);
      return y === undefined ? [] : [{ x: p.x, y, tip: `step ${p.step} (global ${p.x}): ${what} ${measure(y)}` }];
    }),
  });
  const separators = curves.map((c) => ({ x: c.offset, label: shortId(c.round.roundId) }));
  const xAxis: XAxis = { kind: 'linear', title: 'global training step (rounds end to end, dashed line = round start)', integer: true };
  const loss = renderChart({
    id: 'chart-loss', title: 'Loss per training step',
    desc: `Training loss of ${curves.length} rounds, their steps laid end to end in round order.`,
    x: xAxis, y: { title: 'loss' }, separators, lines: curves.map((c) => line(c, (p) => p.loss, 'loss')),
  });
  const hasGrad = curves.some((c) => c.points.some((p) => p.gradNorm !== undefined && finite(p.gradNorm)));
  const grad = hasGrad
    ? renderChart({
      id: 'chart-grad-norm', title: 'Gradient norm per training step',
      desc: 'Gradient norm of the same rounds, on the same global step axis.',
      x: xAxis, y: { title: 'gradient norm', zero: true }, separators, lines: curves.map((c) => line(c, (p) => p.gradNorm, 'grad norm')),
    })
    : html`<p class="muted">no gradient norms recorded</p>`;

  const rows = curves.map((c) => {
    const losses = c.points.map((p) => p.loss).filter(finite);
    const lastGrad = [...c.points].reverse().find((p) => p.gradNorm !== undefined)?.gradNorm;
    const first = c.points[0]!, last = c.points[c.points.length - 1]!;
    return html`<tr><td><code title="${c.round.roundId}">${shortId(c.round.roundId)}</code></td><td>${c.points.length}</td><td>${first.step}–${last.step} <span class="muted">(global ${first.x}–${last.x})</span></td><td>${measure(first.loss)}</td><td>${measure(last.loss)}</td><td>${losses.length ? measure(Math.min(...losses)) : 'n/a'}</td><td>${measure(lastGrad)}</td></tr>\n`;
  });
  return html`<section id="loss"><h2>Loss per training step</h2>
<p class="note">x is the global step: each round's steps follow the previous round's; a dashed line marks where a round starts.</p>
${loss}
<h3>Gradient norm per training step</h3>
${grad}
<table id="table-loss"><thead><tr><th>round</th><th>points</th><th>steps</th><th>first loss</th><th>last loss</th><th>min loss</th><th>last grad norm</th></tr></thead><tbody>
${rows}</tbody></table></section>`;
}

const KNOWLEDGE_TABLE_ROWS = 100;

function knowledgeSection(d: ReportData): SafeHtml {
  const latest = new Map<number, Knowledge>();
  for (const k of d.knowledge) {
    const prev = latest.get(k.version);
    if (!prev || time(k.recordedAt) >= time(prev.recordedAt)) latest.set(k.version, k);
  }
  const ks = [...latest.values()].sort((a, b) => a.version - b.version);
  if (ks.length === 0) {
    return html`<section id="knowledge"><h2>Knowledge size per version</h2><p class="muted empty">no knowledge versions yet</p></section>`;
  }
  const chart = (id: string, title: string, what: 'items' | 'tokens', i: number) => renderChart({
    id, title, desc: `Knowledge ${what} at each of ${ks.length} knowledge versions.`,
    x: { kind: 'linear', title: 'knowledge version', integer: true }, y: { title: what, zero: true },
    lines: [{ name: what, colour: colour(i), dash: '', points: ks.map((k) => ({ x: k.version, y: k[what], tip: `version ${k.version}: ${integer(k[what])} ${what}` })) }],
  });
  const shown = ks.slice(-KNOWLEDGE_TABLE_ROWS);
  return html`<section id="knowledge"><h2>Knowledge size per version</h2>
<div class="pair">${chart('chart-knowledge-items', 'Knowledge items per version', 'items', 0)}${chart('chart-knowledge-tokens', 'Knowledge tokens per version', 'tokens', 1)}</div>
${shown.length < ks.length ? html`<p class="muted">table shows the last ${shown.length} of ${ks.length} versions</p>` : ''}<table id="table-knowledge"><thead><tr><th>version</th><th>items</th><th>tokens</th><th>recorded</th></tr></thead><tbody>
${shown.map((k) => html`<tr><td>${k.version}</td><td>${integer(k.items)}</td><td>${integer(k.tokens)}</td><td>${when(k.recordedAt)}</td></tr>\n`)}</tbody></table></section>`;
}

/** The chat gate's measurements, newest last: token-mean KL (lower is better). */
function chatGateSection(d: ReportData): SafeHtml {
  const ms = d.measurements ?? [];
  if (ms.length === 0) return html``;
  return html`<section id="chat-gate"><h2>Chat gate: distillation gap and retention</h2>
<p class="muted">distillation-gap: token-mean KL of the version without knowledge against the round-start teacher with the task's knowledge, on held-out logs (lower is better; a round that consolidated the knowledge lowers it). retention: KL of the version against the round-start version on anchor prompts. external: a team's own evaluator's verdicts on replies to held-out prompts.</p>
<table id="table-chat-gate"><thead><tr><th>task</th><th>measurement</th><th>version</th><th>against</th><th>prompts</th><th>result</th><th>round</th><th>recorded</th></tr></thead><tbody>
${ms.map((m) => html`<tr><td><code>${m.taskId}</code></td><td>${m.kind}</td><td><code>${m.modelVersion}</code></td><td><code>${m.against}</code></td><td>${integer(m.prompts)}</td><td>${m.figure}</td><td>${m.roundId !== null ? html`<code title="${m.roundId}">${shortId(m.roundId)}</code>` : '—'}</td><td>${when(m.recordedAt)}</td></tr>\n`)}</tbody></table></section>`;
}

function statusClass(s: string): string {
  return s === 'completed' ? 'ok' : s === 'failed' ? 'bad' : 'warn';
}

function roundDuration(r: Round, now: Date): string {
  const start = time(r.startedAt);
  if (r.finishedAt !== null) return finite(start) && finite(time(r.finishedAt)) ? duration((time(r.finishedAt) - start) / 1000) : '—';
  if (r.status === 'running' && finite(start) && finite(time(now))) return `running for ${duration((time(now) - start) / 1000)}`;
  return '—';
}

function roundsSection(d: ReportData): SafeHtml {
  if (d.rounds.length === 0) return html`<section id="rounds"><h2>Rounds</h2><p class="muted empty">no rounds yet</p></section>`;
  const rows = d.rounds.map((r) => {
    const stages = Object.entries(r.seconds);
    return html`<tr><td><code title="${r.roundId}">${shortId(r.roundId)}</code></td><td>${r.taskId ? html`<code>${r.taskId}</code>` : html`<span class="muted">—</span>`}</td><td class="${statusClass(r.status)}">${r.status}</td><td><code>${r.baseModelVersion}</code> → ${r.newModelVersion !== null ? html`<code>${r.newModelVersion}</code>` : html`<span class="muted">none</span>`}</td><td>${when(r.startedAt)}</td><td>${roundDuration(r, d.generatedAt)}</td><td>${stages.length ? stages.map(([stage, s], i) => html`${i ? ' · ' : ''}<span class="stage">${stage} ${duration(s)}</span>`) : html`<span class="muted">—</span>`}</td><td class="error">${r.error ?? ''}</td></tr>\n`;
  });
  return html`<section id="rounds"><h2>Rounds</h2>
<table id="table-rounds"><thead><tr><th>round</th><th>task</th><th>status</th><th>base → new version</th><th>started</th><th>duration</th><th>time by stage</th><th>error</th></tr></thead><tbody>
${rows}</tbody></table></section>`;
}

function versionsSection(d: ReportData): SafeHtml {
  if (d.versions.length === 0) return html`<section id="versions"><h2>Model versions</h2><p class="muted empty">no model versions published yet</p></section>`;
  return html`<section id="versions"><h2>Model versions</h2>
<table id="table-versions"><thead><tr><th>version</th><th>base</th><th>round</th><th>published</th><th>active</th></tr></thead><tbody>
${d.versions.map((v) => html`<tr><td><code>${v.version}</code></td><td>${v.baseVersion !== null ? html`<code>${v.baseVersion}</code>` : '—'}</td><td>${v.roundId !== null ? html`<code title="${v.roundId}">${shortId(v.roundId)}</code>` : '—'}</td><td>${when(v.publishedAt)}</td><td class="${v.active ? 'ok' : 'muted'}">${v.active ? 'active' : 'no'}</td></tr>\n`)}</tbody></table></section>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 24px;display:flex;align-items:baseline;gap:20px;flex-wrap:wrap}
header h1{font-size:18px;margin:0}
header .muted{color:#aab2c0}
header code{background:#2e3646;color:#fff}
main{display:flex;flex-direction:column;gap:16px;padding:16px 24px;max-width:1400px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:12px 16px;overflow-x:auto}
h2{font-size:15px;margin:0 0 4px}
h3{font-size:13px;color:#5a6475;margin:12px 0 4px}
.note{color:#5a6475;margin:0 0 8px;font-size:13px}
.pair{display:flex;flex-wrap:wrap;gap:8px}
svg.chart{display:block;width:100%;max-width:${W}px;height:auto}
svg.chart text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:#5a6475}
svg.chart text.axis-title{font-size:12px;fill:#1d2330}
svg.chart text.pt-label{font-size:10px;font-weight:600}
svg.chart text.sep-label{font-size:10px;fill:#7a8494}
svg.chart .legend text{font-size:10px;fill:#1d2330}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef0f4;padding:1px 4px;border-radius:3px}
table{border-collapse:collapse;margin-top:8px}
th,td{text-align:left;padding:4px 10px;border-bottom:1px solid #eef0f4;font-variant-numeric:tabular-nums;overflow-wrap:anywhere;vertical-align:top}
th{color:#5a6475;font-weight:600}
td.error{color:#b91c1c;max-width:40em}
.ok{color:#17803d;font-weight:600}
.warn{color:#b45309;font-weight:600}
.bad{color:#b91c1c;font-weight:600}
.muted{color:#7a8494;font-weight:400}
`;

/** The report page, from the data; pure. */
export function renderReport(d: ReportData): string {
  const active = [...d.versions].reverse().find((v) => v.active);
  const evals = evalView(d);
  const noEvals = d.evaluations.length === 0;
  return html`<!doctype html>
<html lang="en"><head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${d.title}</title>
<style>${new SafeHtml(CSS)}</style>
</head><body>
<header><h1>${d.title}</h1><span class="muted">generated <time id="generated-at">${when(d.generatedAt)}</time></span><span>active version ${active ? html`<code id="active-version">${active.version}</code>` : html`<span id="active-version" class="muted">none yet</span>`}</span><span class="muted">${d.versions.length} versions · ${d.rounds.length} rounds · ${d.evaluations.length} evaluations · ${new Set(d.knowledge.map((k) => k.version)).size} knowledge versions</span></header>
<main>
${passRateSection(evals, noEvals)}
${responseSection(evals, noEvals)}
${lossSection(d)}
${chatGateSection(d)}
${knowledgeSection(d)}
${roundsSection(d)}
${versionsSection(d)}
</main>
</body></html>
`.value;
}

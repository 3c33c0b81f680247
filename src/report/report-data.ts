/** Reads what the HTML report shows from the event log and the projections (src/report/render-report.ts draws it). */
import type { Queryable } from '../db/sql.ts';
import { upcastEvaluation, type EventDataMap } from '../events/schemas.ts';
import { readActiveModel } from '../projections/models/model-projection.ts';
import { readEventsOfTypes } from '../store/log-queries.ts';
import type { ReportData } from './render-report.ts';

const MAX_KNOWLEDGE_POINTS = 400;

export async function readReportData(q: Queryable, title = 'oeld learning report'): Promise<ReportData> {
  const active = await readActiveModel(q);
  const versions = await q.query<{ version: string; base_version: string | null; round_id: string | null; published_at: Date }>(
    'SELECT version, base_version, round_id, published_at FROM model_versions ORDER BY global_position');
  const evaluations = { rows: (await readEventsOfTypes(q, ['EvaluationRecorded'])).map((e) => ({ data: upcastEvaluation(e.schemaVersion, e.data), recorded_at: e.recordedAt })) };
  const roundEvents = { rows: (await readEventsOfTypes(q, ['RoundStarted', 'RoundCompleted', 'RoundFailed'])).map((e) => ({ type: e.type, data: e.data as Record<string, unknown>, recorded_at: e.recordedAt })) };
  const knowledge = await q.query<{ version: string; item_count: number; tokens: number; recorded_at: Date }>(
    'SELECT version, item_count, tokens, recorded_at FROM knowledge_versions ORDER BY version');

  const rounds = new Map<string, ReportData['rounds'][number]>();
  for (const e of roundEvents.rows) {
    const id = e.data.roundId as string;
    if (e.type === 'RoundStarted') {
      const d = e.data as EventDataMap['RoundStarted'];
      rounds.set(id, { roundId: id, taskId: d.taskId ?? null, status: 'running', baseModelVersion: d.baseModelVersion, newModelVersion: null, startedAt: e.recorded_at, finishedAt: null, curve: [], seconds: {}, error: null });
      continue;
    }
    const r = rounds.get(id);
    if (!r) continue;
    r.finishedAt = e.recorded_at;
    if (e.type === 'RoundCompleted') {
      const d = e.data as EventDataMap['RoundCompleted'];
      Object.assign(r, { status: 'completed', newModelVersion: d.newModelVersion ?? null, curve: d.curve ?? [], seconds: d.seconds ?? {} });
    } else {
      const d = e.data as EventDataMap['RoundFailed'];
      Object.assign(r, { status: 'failed', error: `${d.stage}: ${d.error}` });
    }
  }
  // A round adds one knowledge version per extraction: thin the series to keep the page light.
  const every = Math.max(1, Math.ceil(knowledge.rows.length / MAX_KNOWLEDGE_POINTS));
  const kRows = knowledge.rows.filter((_, i) => i % every === 0 || i === knowledge.rows.length - 1);
  return {
    generatedAt: new Date(),
    title,
    versions: versions.rows.map((v) => ({ version: v.version, baseVersion: v.base_version, roundId: v.round_id, publishedAt: v.published_at, active: v.version === active?.version })),
    evaluations: evaluations.rows.flatMap(({ data: d, recorded_at }) => d.kind !== 'game' ? [] : [{
      modelVersion: d.modelVersion, game: d.game, split: d.split, knowledge: d.knowledge ? `${d.knowledge.modelVersion}#${d.knowledge.slot}` : null,
      episodes: d.episodes, passRate: d.passRate, meanResponseTokens: d.meanResponseTokens, meanTurns: d.meanTurns, recordedAt: recorded_at,
    }]),
    measurements: evaluations.rows.flatMap(({ data: d, recorded_at }) => {
      if (d.kind === 'game') return [];
      const common = { kind: d.kind, taskId: d.taskId, modelVersion: d.modelVersion, prompts: d.prompts, roundId: d.roundId ?? null, recordedAt: recorded_at };
      if (d.kind === 'external') return [{ ...common, against: d.evaluator, figure: `${d.passed} of ${d.prompts} passed (${(100 * d.passRate).toFixed(1)}%)` }];
      return [{ ...common, against: d.kind === 'retention' ? d.referenceVersion : d.teacherVersion, figure: `KL ${d.meanKl.toFixed(4)} over ${d.tokens} reply tokens` }];
    }),
    rounds: [...rounds.values()],
    knowledge: kRows.map((k) => ({ version: Number(k.version), items: Number(k.item_count), tokens: Number(k.tokens), recordedAt: k.recorded_at })),
  };
}

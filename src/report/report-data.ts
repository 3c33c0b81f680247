/** Reads what the HTML report shows: evaluations from the log, the rest through the projections' query modules (src/report/render-report.ts draws it). */
import type { Queryable } from '../db/sql.ts';
import { upcastEvaluation } from '../events/schemas.ts';
import { readKnowledgeHistory } from '../projections/knowledge/knowledge-queries.ts';
import { readActiveModel, readVersionHistory } from '../projections/models/model-projection.ts';
import { readAllRounds } from '../projections/rounds/round-projection.ts';
import { readEventsOfTypes } from '../store/log-queries.ts';
import type { ReportData } from './render-report.ts';

const MAX_KNOWLEDGE_POINTS = 400;

export async function readReportData(q: Queryable, title = 'oeld learning report'): Promise<ReportData> {
  const active = await readActiveModel(q);
  const versions = await readVersionHistory(q);
  const evaluations = { rows: (await readEventsOfTypes(q, ['EvaluationRecorded'])).map((e) => ({ data: upcastEvaluation(e.schemaVersion, e.data), recorded_at: e.recordedAt })) };
  const rounds = await readAllRounds(q);
  const knowledge = await readKnowledgeHistory(q);

  // A round adds one knowledge version per extraction: thin the series to keep the page light.
  const every = Math.max(1, Math.ceil(knowledge.length / MAX_KNOWLEDGE_POINTS));
  const kRows = knowledge.filter((_, i) => i % every === 0 || i === knowledge.length - 1);
  return {
    generatedAt: new Date(),
    title,
    versions: versions.map((v) => ({ ...v, active: v.version === active?.version })),
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
    rounds: rounds.map((r) => ({
      roundId: r.roundId, taskId: r.taskId, status: r.status as ReportData['rounds'][number]['status'], baseModelVersion: r.baseModelVersion,
      newModelVersion: r.newModelVersion, startedAt: r.startedAt, finishedAt: r.finishedAt, curve: r.curve, seconds: r.seconds,
      error: r.error === null ? null : `${r.failedStage ?? 'unknown stage'}: ${r.error}`,
    })),
    knowledge: kRows.map((k) => ({ version: k.version, items: k.itemCount, tokens: k.tokens, recordedAt: k.recordedAt })),
  };
}

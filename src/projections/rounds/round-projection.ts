import { readFileSync } from 'node:fs';
import type { Queryable } from '../../db/sql.ts';
import { isType, type RecordedEvent } from '../../events/envelope.ts';
import type { Projection } from '../projection.ts';

const DDL = readFileSync(new URL('./tables.sql', import.meta.url), 'utf8');

/** Rounds and their outcome. A round re-run after a failure starts a new round id. */
export class RoundProjection implements Projection {
  readonly name = 'rounds';
  readonly types = ['RoundStarted', 'RoundCompleted', 'RoundSkipped', 'RoundFailed'] as const;
  readonly ddl = DDL;
  readonly tables = [{ name: 'rounds', orderBy: 'round_id' }] as const;

  async load(): Promise<void> {}

  async apply(tx: Queryable, events: RecordedEvent[]): Promise<void> {
    for (const e of events) {
      if (isType(e, 'RoundStarted')) {
        const d = e.data;
        await tx.query(
          `INSERT INTO rounds (round_id, task_id, status, trigger, base_model_version, knowledge_version, config, started_at)
           VALUES ($1, $7, 'running', $2, $3, $4, $5, $6) ON CONFLICT (round_id) DO NOTHING`,
          [d.roundId, d.trigger, d.baseModelVersion, d.knowledgeVersion, JSON.stringify(d.config), e.recordedAt, d.taskId ?? null]);
      } else if (isType(e, 'RoundCompleted')) {
        const d = e.data;
        await tx.query(
          `UPDATE rounds SET status = 'completed', finished_at = $2, new_model_version = $3, steps = $4, loss_summary = $5, evaluation = $6, curve = $7, seconds = $8, inputs = $9
            WHERE round_id = $1 AND status = 'running'`,
          [d.roundId, e.recordedAt, d.newModelVersion ?? null, d.steps, d.lossSummary ? JSON.stringify(d.lossSummary) : null,
            d.evaluation ? JSON.stringify(d.evaluation) : null, d.curve ? JSON.stringify(d.curve) : null, d.seconds ? JSON.stringify(d.seconds) : null,
            d.inputs ? JSON.stringify(d.inputs) : null]);
      } else if (isType(e, 'RoundSkipped')) {
        await tx.query(`UPDATE rounds SET status = 'skipped', finished_at = $2, skip_reason = $3 WHERE round_id = $1 AND status = 'running'`, [e.data.roundId, e.recordedAt, e.data.reason]);
      } else if (isType(e, 'RoundFailed')) {
        const d = e.data;
        await tx.query(
          `UPDATE rounds SET status = 'failed', finished_at = $2, failed_stage = $3, error = $4 WHERE round_id = $1 AND status = 'running'`,
          [d.roundId, e.recordedAt, d.stage, d.error]);
      }
    }
  }
}

export interface RoundView {
  roundId: string;
  /** null: a round from before tasks. */
  taskId: string | null;
  status: string; trigger: string; baseModelVersion: string; knowledgeVersion: number; startedAt: Date; finishedAt: Date | null;
  newModelVersion: string | null; evaluation: unknown;
  /** A failed round's stage and error. */
  failedStage: string | null;
  error: string | null;
  /** Why a skipped round did not train. */
  skipReason: string | null;
}
/** A round with its training curve and time by stage (the report draws them). */
export interface RoundDetail extends RoundView {
  curve: { step: number; loss: number; gradNorm?: number; responseTokens?: number }[];
  seconds: Record<string, number>;
}

const toView = (r: Record<string, unknown>): RoundDetail => ({
  roundId: r.round_id as string, taskId: (r.task_id as string | null) ?? null, status: r.status as string, trigger: r.trigger as string,
  baseModelVersion: r.base_model_version as string, knowledgeVersion: Number(r.knowledge_version), startedAt: r.started_at as Date,
  finishedAt: (r.finished_at as Date | null) ?? null, newModelVersion: (r.new_model_version as string | null) ?? null, evaluation: r.evaluation ?? null,
  failedStage: (r.failed_stage as string | null) ?? null, error: (r.error as string | null) ?? null, skipReason: (r.skip_reason as string | null) ?? null,
  curve: (r.curve as RoundDetail['curve'] | null) ?? [], seconds: (r.seconds as Record<string, number> | null) ?? {},
});

export async function readRecentRounds(q: Queryable, limit = 10): Promise<RoundView[]> {
  const { rows } = await q.query<Record<string, unknown>>('SELECT * FROM rounds ORDER BY started_at DESC, round_id DESC LIMIT $1', [limit]);
  return rows.map(toView);
}

/** Every round, oldest first, with its curve and time by stage. */
export async function readAllRounds(q: Queryable): Promise<RoundDetail[]> {
  const { rows } = await q.query<Record<string, unknown>>('SELECT * FROM rounds ORDER BY started_at, round_id');
  return rows.map(toView);
}

/**
 * What a round that made `version` recorded about it: the validation it measured for it (the
 * gate's `after`) and its inputs (round-inputs.ts); null when no completed round made it.
 */
export async function readRoundOfVersion(q: Queryable, version: string): Promise<{ roundId: string; validation: { passRate: number; episodes: number } | null; knowledgeEventIds: string[] | null } | null> {
  const { rows } = await q.query<{ round_id: string; evaluation: { after?: { passRate?: number; episodes?: number } | null } | null; inputs: { knowledgeEventIds?: string[] } | null }>(
    `SELECT round_id, evaluation, inputs FROM rounds WHERE status = 'completed' AND new_model_version = $1 ORDER BY finished_at DESC LIMIT 1`, [version]);
  const r = rows[0];
  if (!r) return null;
  const after = r.evaluation?.after;
  return {
    roundId: r.round_id,
    validation: after && typeof after.passRate === 'number' && typeof after.episodes === 'number' ? { passRate: after.passRate, episodes: after.episodes } : null,
    knowledgeEventIds: r.inputs?.knowledgeEventIds ?? null,
  };
}

/** Completed rounds from `version` since `since` (its activation), every one refused by the gate: the refusals in a row (an activated round would have made another version active). */
export async function countRefusedSince(q: Queryable, version: string, since: Date): Promise<number> {
  const { rows } = await q.query<{ n: string }>(
    `SELECT count(*) AS n FROM rounds WHERE status = 'completed' AND base_model_version = $1 AND started_at >= $2
       AND evaluation IS NOT NULL AND (evaluation->>'activated') = 'false'`, [version, since]);
  return Number(rows[0]?.n ?? 0);
}

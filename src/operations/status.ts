import type { Queryable } from '../db/sql.ts';
import { readKnowledgeVersion } from '../projections/knowledge/knowledge-queries.ts';
import { readActiveModel, readPublishedVersions, readRetention } from '../projections/models/model-projection.ts';
import { readInteractionCounts } from '../projections/trajectories/trajectory-queries.ts';
import { heldOutPercentOf, type Task } from '../tasks/task.ts';
import { taskUsage, type TaskUsage } from './task-usage.ts';
import { readRecentRounds, type RoundView } from '../projections/rounds/round-projection.ts';
import { readCheckpoints } from '../projections/checkpoints.ts';
import { countDeadLetters } from '../ingest/dead-letters.ts';
import { countEvents, headPosition as readHeadPosition } from '../store/log-queries.ts';

export interface Status {
  database: 'postgres' | 'pglite';
  headPosition: number;
  events: number;
  deadLetters: number;
  projections: { name: string; globalPosition: number; lagEvents: number }[];
  knowledge: { version: number; contentHash: string; items: number; tokens: number; pools: number };
  activeModel: { version: string; sha256: string; reason: string; path: string } | null;
  /** Published versions whose files are kept, those pruned by the retention policy, and the bytes pruning freed. */
  versions: { kept: number; pruned: number; prunedBytes: number };
  rounds: RoundView[];
  /** Per task: interactions the next round can use, and why the others cannot. */
  tasks: TaskUsage[];
}

/** Everything an operator asks first, read from the projections and the store. */
/** `tasks`: the configured tasks (their held-out splits and kinds); none: every task is shown as not configured. */
export async function readStatus(q: Queryable, database: Status['database'], tasks: readonly Task[] = []): Promise<Status> {
  const headPosition = await readHeadPosition(q);
  const cps = await readCheckpoints(q);
  const k = await readKnowledgeVersion(q);
  const active = await readActiveModel(q);
  return {
    database,
    headPosition,
    events: await countEvents(q),
    deadLetters: await countDeadLetters(q),
    projections: cps.map((c) => ({ name: c.name, globalPosition: c.checkpoint.globalPosition, lagEvents: Math.max(0, headPosition - c.checkpoint.globalPosition) })),
    knowledge: { version: k?.version ?? 0, contentHash: k?.contentHash ?? '', items: k?.itemCount ?? 0, tokens: k?.tokens ?? 0, pools: k?.pools.length ?? 0 },
    activeModel: active ? { version: active.version, sha256: active.sha256, reason: active.reason, path: active.path } : null,
    versions: await readRetention(q),
    rounds: await readRecentRounds(q, 5),
    tasks: taskUsage(await readInteractionCounts(q, new Map(tasks.map((t) => [t.id, heldOutPercentOf(t)]))), active?.version ?? null, await readPublishedVersions(q), tasks),
  };
}

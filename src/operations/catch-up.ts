import type { Sql } from '../db/sql.ts';
import { createProjections } from '../projections/all-projections.ts';
import { CheckpointConflictError } from '../projections/checkpoints.ts';
import { Projector } from '../projections/projector.ts';

/**
 * Folds events the projections have not seen yet, for a CLI command that reads them while no
 * daemon runs. Where a daemon's leader is folding at the same moment, its work wins and this
 * steps aside (the tables are then as current as the leader keeps them).
 */
export async function catchUpProjections(sql: Sql): Promise<void> {
  for (const p of createProjections()) {
    try {
      await new Projector(sql, p).catchUp();
    } catch (err) {
      if (!(err instanceof CheckpointConflictError)) throw err;
    }
  }
}

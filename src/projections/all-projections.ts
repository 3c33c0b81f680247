import { KnowledgeProjection } from './knowledge/knowledge-projection.ts';
import { ModelProjection } from './models/model-projection.ts';
import type { Projection } from './projection.ts';
import { RoundProjection } from './rounds/round-projection.ts';
import { TrajectoryProjection } from './trajectories/trajectory-projection.ts';

/** A fresh instance of every projection (each holds its own in-memory state). */
export const createProjections = (): Projection[] => [new KnowledgeProjection(), new ModelProjection(), new RoundProjection(), new TrajectoryProjection()];

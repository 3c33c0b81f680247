/**
 * The held-out split of a chat task: an interaction belongs to bucket 0..99 by a hash of its id,
 * so the split is the same on every replay, every node and every version of oeld; buckets below
 * the task's held-out percent are never trained or extracted on, only measured.
 */
import { createHash } from 'node:crypto';

export const SPLIT_BUCKETS = 100;

const SALT = 'oeld-split:';

export function splitBucket(interactionId: string): number {
  return createHash('sha256').update(`${SALT}${interactionId}`).digest().readUInt32BE(0) % SPLIT_BUCKETS;
}

/**
 * The same rule in SQL, for a fold that runs in the database: the bucket of the interaction id in
 * the text expression `idExpression` (the first four bytes of the digest, big-endian, mod 100).
 * test/trajectories-projection.test.ts checks that both give the same bucket.
 */
export const splitBucketSql = (idExpression: string): string =>
  `((('x' || left(encode(sha256(convert_to('${SALT}' || ${idExpression}, 'UTF8')), 'hex'), 8))::bit(32)::bigint % ${SPLIT_BUCKETS})::smallint)`;

export const isHeldOut = (interactionId: string, heldOutPercent: number): boolean => splitBucket(interactionId) < heldOutPercent;

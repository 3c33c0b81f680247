/**
 * The held-out split of a chat task: an interaction belongs to bucket 0..99 by a hash of its id,
 * so the split is the same on every replay, every node and every version of oeld; buckets below
 * the task's held-out percent are never trained or extracted on, only measured.
 */
import { createHash } from 'node:crypto';

export const SPLIT_BUCKETS = 100;

export function splitBucket(interactionId: string): number {
  return createHash('sha256').update(`oeld-split:${interactionId}`).digest().readUInt32BE(0) % SPLIT_BUCKETS;
}

export const isHeldOut = (interactionId: string, heldOutPercent: number): boolean => splitBucket(interactionId) < heldOutPercent;

/**
 * Pause when the store falls behind by more than `limit` events; resume only below half of it,
 * so intake does not flap around the threshold.
 */
export function backpressureDecision(paused: boolean, lagEvents: number, limit: number): 'pause' | 'resume' | null {
  if (!paused && lagEvents > limit) return 'pause';
  if (paused && lagEvents < limit / 2) return 'resume';
  return null;
}

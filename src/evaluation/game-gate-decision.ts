/**
 * The game gate's decision, a pure function of pass rates (game-gate.ts measures them):
 *
 *   - the candidate's validation pass rate must be at least the BEST of the recently activated
 *     versions' (the round-start version among them) minus the tolerance, so that drops the
 *     tolerance lets through cannot add up round after round against the version before;
 *   - where the task has a world the rounds never train on (FrozenLake's out-of-distribution
 *     world), the candidate's pass rate there must be at least the lineage root's (the published
 *     base) minus the tolerance: what rounds erode without training on it is watched against a
 *     fixed point.
 */
export interface PassRate { version: string; passRate: number; episodes: number }

export interface GameGateFigures {
  candidate: PassRate;
  /** Recently activated versions' validation pass rates, newest first (the round-start version first). */
  recent: PassRate[];
  /** The out-of-distribution check, where the task has one: the candidate's and the lineage root's. */
  retention?: { world: string; candidate: PassRate; root: PassRate };
}

export interface GameGateDecision { ok: boolean; reasons: string[] }

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function decideGameGate(f: GameGateFigures, tolerance: number): GameGateDecision {
  if (f.recent.length === 0) throw new Error('game gate: no activated version to compare the candidate with');
  const start = f.recent[0]!;
  const best = f.recent.reduce((a, b) => (b.passRate > a.passRate ? b : a));
  const needed = Math.max(0, best.passRate - tolerance);
  const validationOk = f.candidate.passRate >= needed - 1e-12;
  const bestNote = f.recent.length === 1 ? '' : `; best of the last ${f.recent.length} activated: ${pct(best.passRate)} (${best.version})`;
  const reasons = [`validation pass rate ${pct(start.passRate)} -> ${pct(f.candidate.passRate)} (${f.candidate.episodes} episodes${bestNote}; at least ${pct(needed)} needed)`];
  let retentionOk = true;
  if (f.retention) {
    const r = f.retention;
    const floor = Math.max(0, r.root.passRate - tolerance);
    retentionOk = r.candidate.passRate >= floor - 1e-12;
    reasons.push(`${r.world} (never trained on) pass rate ${pct(r.candidate.passRate)} against the base ${r.root.version}'s ${pct(r.root.passRate)} (${r.candidate.episodes} episodes; at least ${pct(floor)} needed)`);
  }
  return { ok: validationOk && retentionOk, reasons };
}

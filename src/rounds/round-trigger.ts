// When a training round may start: pure decision logic over a snapshot of the daemon's state.
// Kept free of I/O and timers so every rule can be tested with a table of cases; the node-cron
// wiring lives in round-scheduler.ts. Every decision carries a human-readable reason with the
// numbers behind it, so operators can see why a round did or did not start.

export interface TriggerSettings {
  /** Interactions recorded from the active model version since it was activated needed for a threshold round (>= 1). */
  minInteractions: number;
  /** Seconds that must pass after the end of the previous round (or activation of the active version) before another (>= 0). */
  minIntervalSeconds: number;
  /**
   * Trajectories that make the knowledge pool complete (>= 0; 0 = no requirement): a threshold round
   * also needs at least this many interactions from the active version.
   */
  poolTrajectories: number;
  /** Stop after this many completed rounds in this process (0 = no limit). */
  maxRounds: number;
  /**
   * After rounds from the active version were refused by the gate k times in a row, a threshold round
   * waits this many seconds times 2^(k-1) (at most 64 times) after the previous one ended (0 = no back-off;
   * absent: none). A round that keeps producing refused candidates costs its training each time.
   */
  refusalBackoffSeconds?: number;
}

export interface TriggerState {
  now: Date;
  roundRunning: boolean;
  /** null: no model yet. */
  activeVersion: string | null;
  /** Recorded since the active version was activated. */
  interactionsFromActive: number;
  /** End of the last round (completed or failed). */
  lastRoundEndedAt: Date | null;
  /** When the active version was activated. */
  activeSince: Date | null;
  roundsCompletedHere: number;
  /** Completed rounds from the active version since it was activated, all refused by the gate (absent: 0). */
  refusedInARow?: number;
}

export type RoundTrigger = 'threshold' | 'cron' | 'manual';
export type TriggerCause = 'check' | 'cron' | 'manual';

export type TriggerDecision =
  | { start: true; trigger: RoundTrigger; reason: string }
  | { start: false; reason: string };

/** Throws a RangeError naming the field and its value when a setting is out of range. */
export function checkTriggerSettings(s: TriggerSettings): void {
  const integerAtLeast = (field: keyof TriggerSettings, min: number) => {
    const v = s[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new RangeError(`round trigger setting ${field} must be an integer >= ${min}, got ${String(v)}`);
    }
  };
  integerAtLeast('minInteractions', 1);
  // Fractional seconds are allowed (tests and small deployments use sub-second intervals).
  const interval = s.minIntervalSeconds;
  if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 0) {
    throw new RangeError(`round trigger setting minIntervalSeconds must be a finite number >= 0, got ${String(interval)}`);
  }
  integerAtLeast('poolTrajectories', 0);
  integerAtLeast('maxRounds', 0);
  const backoff = s.refusalBackoffSeconds ?? 0;
  if (typeof backoff !== 'number' || !Number.isFinite(backoff) || backoff < 0) {
    throw new RangeError(`round trigger setting refusalBackoffSeconds must be a finite number >= 0, got ${String(backoff)}`);
  }
}

/** The extra wait after k refused rounds in a row: base x 2^(k-1), at most 64 x base; 0 for k = 0. */
export function refusalBackoffSeconds(base: number, refusedInARow: number): number {
  if (base <= 0 || refusedInARow <= 0) return 0;
  return base * 2 ** Math.min(refusedInARow - 1, 6);
}

/** Seconds, truncated to one decimal so a reason never claims an interval passed when it has not. */
function seconds(ms: number): string {
  return String(Math.floor(ms / 100) / 10);
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Decides whether `cause` may start a round now. Pure: the same inputs always give the same decision. */
export function decideRound(state: TriggerState, settings: TriggerSettings, cause: TriggerCause): TriggerDecision {
  if (state.roundRunning) return { start: false, reason: 'a round is already running' };
  if (state.activeVersion === null) return { start: false, reason: 'no active model version yet' };

  const version = state.activeVersion;
  const n = state.interactionsFromActive;
  const fromActive = `${plural(n, 'interaction')} from version ${version}`;
  const maxReached = settings.maxRounds > 0 && state.roundsCompletedHere >= settings.maxRounds;
  const maxReason = `max rounds reached: ${state.roundsCompletedHere} of ${settings.maxRounds} completed in this process`;

  if (cause === 'manual') {
    // An operator asked explicitly, so thresholds, interval and maxRounds do not apply; a round
    // with no data from the active version would have nothing to learn from, though.
    if (n < 1) return { start: false, reason: `manual round needs at least 1 interaction from version ${version}, got ${n}` };
    return { start: true, trigger: 'manual', reason: `manual request with ${fromActive}` };
  }

  if (cause === 'cron') {
    if (maxReached) return { start: false, reason: maxReason };
    if (n < 1) return { start: false, reason: `cron round needs at least 1 interaction from version ${version}, got ${n}` };
    return { start: true, trigger: 'cron', reason: `cron schedule fired with ${fromActive}` };
  }

  // cause === 'check': the periodic threshold check.
  if (maxReached) return { start: false, reason: maxReason };
  const needed = Math.max(settings.minInteractions, settings.poolTrajectories);
  if (n < needed) {
    const why = settings.poolTrajectories > settings.minInteractions ? ' (needed to complete the knowledge pool)' : '';
    return { start: false, reason: `waiting for interactions: ${n} of ${needed} interactions from version ${version}${why}` };
  }

  // The interval runs from whichever happened later: the end of the previous round or the
  // activation of the active version (a new version deserves time to gather fresh experience).
  const ended = state.lastRoundEndedAt;
  const since = state.activeSince;
  let reference: { at: Date; what: string } | null = null;
  if (ended && (!since || ended.getTime() >= since.getTime())) reference = { at: ended, what: 'the previous round ended' };
  else if (since) reference = { at: since, what: `version ${version} was activated` };

  const minMs = settings.minIntervalSeconds * 1000;
  let intervalNote = 'no previous round or activation time to wait after';
  // Refused rounds in a row from this version: wait longer before training another candidate from it.
  const refused = state.refusedInARow ?? 0;
  const backoff = refusalBackoffSeconds(settings.refusalBackoffSeconds ?? 0, refused);
  if (backoff > 0 && ended) {
    const elapsedMs = state.now.getTime() - ended.getTime();
    if (elapsedMs < backoff * 1000) {
      return { start: false, reason: `backing off after ${plural(refused, 'refused round')} in a row from version ${version}: ${seconds(elapsedMs)} s of ${backoff} s since the previous round ended` };
    }
  }
  if (reference) {
    const elapsedMs = state.now.getTime() - reference.at.getTime();
    if (elapsedMs < minMs) {
      return { start: false, reason: `waiting for interval: ${seconds(elapsedMs)} s of ${settings.minIntervalSeconds} s since ${reference.what}` };
    }
    intervalNote = `${seconds(elapsedMs)} s since ${reference.what} (min ${settings.minIntervalSeconds} s)`;
  }
  return { start: true, trigger: 'threshold', reason: `threshold met: ${n} of ${needed} interactions from version ${version}, ${intervalNote}` };
}

/**
 * One task's trigger state and settings: its own threshold and fresh interactions; the interval
 * (from the newest round of any task, in `state.lastRoundEndedAt`) and the round limit are shared.
 */
export interface TaskTrigger {
  taskId: string;
  state: TriggerState;
  settings: TriggerSettings;
  /** When this task's own newest round ended (null: never): the task that waited longest goes first. */
  taskRoundEndedAt: Date | null;
}

export type TaskTriggerDecision =
  | { start: true; taskId: string; trigger: RoundTrigger; reason: string }
  | { start: false; reason: string };

/**
 * Decides over every task: of the tasks whose round may start, the one whose own last round ended
 * longest ago (never first; configuration order breaks ties) gets it, so that no task starves
 * another; `only` limits a manual request to one task. When none may start, the reason lists each task's.
 */
export function decideTaskRound(tasks: readonly TaskTrigger[], cause: TriggerCause, only?: string): TaskTriggerDecision {
  const candidates = only === undefined ? tasks : tasks.filter((t) => t.taskId === only);
  if (candidates.length === 0) {
    return { start: false, reason: only === undefined ? 'no tasks are configured (OELD_TASKS)' : `no task ${JSON.stringify(only)} is configured (tasks: ${tasks.map((t) => t.taskId).join(', ')})` };
  }
  const reasons: string[] = [];
  let chosen: { t: TaskTrigger; trigger: RoundTrigger; reason: string } | null = null;
  const waited = (t: TaskTrigger) => t.taskRoundEndedAt?.getTime() ?? Number.NEGATIVE_INFINITY;
  for (const t of candidates) {
    const d = decideRound(t.state, t.settings, cause);
    if (!d.start) { reasons.push(candidates.length === 1 ? `task ${t.taskId}: ${d.reason}` : `${t.taskId}: ${d.reason}`); continue; }
    if (chosen === null || waited(t) < waited(chosen.t)) chosen = { t, trigger: d.trigger, reason: d.reason };
  }
  if (chosen) return { start: true, taskId: chosen.t.taskId, trigger: chosen.trigger, reason: `task ${chosen.t.taskId}: ${chosen.reason}` };
  return { start: false, reason: reasons.join('; ') };
}

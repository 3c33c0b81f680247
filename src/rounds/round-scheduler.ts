// Wires the pure round trigger (round-trigger.ts) to node-cron: a periodic threshold check, an
// optional cron expression that triggers rounds, and manual requests from the CLI/admin API.
// All three go through one in-flight slot so overlapping ticks can never start two rounds.
import cron, { type ScheduledTask } from 'node-cron';
import { checkTriggerSettings, decideTaskRound, type RoundTrigger, type TaskTrigger, type TaskTriggerDecision, type TriggerCause } from './round-trigger.ts';

export const DEFAULT_CHECK_EXPRESSION = '*/5 * * * * *';

export interface RoundSchedulerOptions {
  /** How often thresholds are checked: a node-cron expression; default every 5 seconds '*\/5 * * * * *'. */
  checkExpression?: string;
  /** Optional cron expression that triggers rounds (e.g. '0 3 * * *'); validated, error names OELD_ROUND_CRON and the value. */
  roundExpression?: string;
  /** Reads each task's state and settings (async: the daemon queries the database). */
  state: () => Promise<TaskTrigger[]>;
  /**
   * Starts a round. Contract: resolve once the round has been kicked off and is recorded as running
   * (so the next `state()` reports roundRunning = true), not when it finishes. The scheduler awaits
   * it while holding its in-flight slot; a startRound that waited for the whole round would block
   * every check until then, and one that resolved before the round is visible as running could let
   * the next tick start a second round.
   */
  startRound: (taskId: string, trigger: RoundTrigger, reason: string) => Promise<void>;
  /** Called with every decision taken (including "don't start"); exceptions go to onError. */
  onDecision?: (d: TaskTriggerDecision, cause: TriggerCause) => void;
  /** Errors from state(), startRound() or onDecision() during ticks (manual requests reject instead); default console.error. */
  onError?: (err: Error) => void;
}

const toError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

export class RoundScheduler {
  readonly #o: RoundSchedulerOptions;
  readonly #checkExpression: string;
  #tasks: ScheduledTask[] = [];
  /** The evaluation (state read, decision, startRound) now running, if any; never rejects. */
  #inFlight: Promise<void> | null = null;
  #started = false;
  #stopped = false;

  constructor(o: RoundSchedulerOptions) {
    // Validate everything up front so a misconfigured daemon fails at startup, not at the first tick.
    this.#checkExpression = o.checkExpression ?? DEFAULT_CHECK_EXPRESSION;
    if (!cron.validate(this.#checkExpression)) {
      throw new RangeError(`invalid round check cron expression: '${this.#checkExpression}'`);
    }
    if (o.roundExpression !== undefined && !cron.validate(o.roundExpression)) {
      throw new RangeError(`OELD_ROUND_CRON is not a valid cron expression: '${o.roundExpression}'`);
    }
    this.#o = o;
  }

  /** Starts ticking. Idempotent while running; a stopped scheduler cannot be restarted. */
  start(): void {
    if (this.#stopped) throw new Error('RoundScheduler was stopped and cannot be restarted');
    if (this.#started) return;
    this.#started = true;
    // A missed threshold check is harmless (the next one re-evaluates), so its warning is noise.
    this.#tasks.push(cron.schedule(this.#checkExpression, () => this.#tick('check'), { name: 'oeld-round-check', suppressMissedWarning: true }));
    if (this.#o.roundExpression !== undefined) {
      // A busy event loop or machine can delay a heartbeat past node-cron's
      // default 1 s tolerance, which would silently drop e.g. the nightly round; allow a minute.
      this.#tasks.push(cron.schedule(this.#o.roundExpression, () => this.#tick('cron'), { name: 'oeld-round-cron', missedExecutionTolerance: 60_000 }));
    }
  }

  /** Stops the cron tasks, then waits for an evaluation in flight (a round it started keeps running). */
  async stop(): Promise<void> {
    this.#stopped = true;
    const tasks = this.#tasks;
    this.#tasks = [];
    // destroy() also removes the task from node-cron's global registry.
    for (const t of tasks) await t.destroy();
    while (this.#inFlight) await this.#inFlight;
  }

  /**
   * Manual trigger from the CLI/admin API: waits for an evaluation in flight, then decides with
   * cause 'manual' and, if allowed, awaits startRound (which only kicks the round off, see
   * RoundSchedulerOptions.startRound). Resolves with the decision; rejects if state() or startRound() fails.
   */
  async requestManual(taskId?: string): Promise<TaskTriggerDecision> {
    // Wait rather than refuse: the in-flight tick is short, and the operator asked explicitly.
    while (this.#inFlight) await this.#inFlight;
    if (this.#stopped) {
      const d: TaskTriggerDecision = { start: false, reason: 'the round scheduler is stopped' };
      this.#notify(d, 'manual');
      return d;
    }
    const run = this.#evaluate('manual', taskId);
    this.#hold(run.then(() => undefined, () => undefined));
    return run;
  }

  #tick(cause: 'check' | 'cron'): void {
    // Skip rather than queue: a tick arriving while an evaluation or startRound is in flight
    // would only re-read a state that is about to say roundRunning.
    if (this.#inFlight || this.#stopped) return;
    this.#hold(this.#evaluate(cause).then(() => undefined, (e: unknown) => this.#report(toError(e))));
  }

  /** Occupies the in-flight slot until `p` settles (`p` must not reject). */
  #hold(p: Promise<void>): void {
    const held = p.finally(() => {
      if (this.#inFlight === held) this.#inFlight = null;
    });
    this.#inFlight = held;
  }

  async #evaluate(cause: TriggerCause, taskId?: string): Promise<TaskTriggerDecision> {
    const tasks = await this.#o.state();
    for (const t of tasks) checkTriggerSettings(t.settings);
    let d = decideTaskRound(tasks, cause, taskId);
    // A stop() that arrived while state() was pending means the daemon is shutting down:
    // starting a round now would race the shutdown.
    if (d.start && this.#stopped) d = { start: false, reason: 'the round scheduler is stopping' };
    this.#notify(d, cause);
    if (d.start) await this.#o.startRound(d.taskId, d.trigger, d.reason);
    return d;
  }

  #notify(d: TaskTriggerDecision, cause: TriggerCause): void {
    try {
      this.#o.onDecision?.(d, cause);
    } catch (e) {
      this.#report(toError(e));
    }
  }

  #report(err: Error): void {
    try {
      // Without a handler, still say something: a silently failing check would stall learning.
      if (this.#o.onError) this.#o.onError(err);
      else console.error('oeld round scheduler:', err);
    } catch {
      // An error handler that throws has nowhere left to report to; never let it kill the tick loop.
    }
  }
}

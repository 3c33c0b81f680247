// Tests for when a training round starts: the pure rules in round-trigger.ts (a table of cases,
// each reason checked for its numbers) and the node-cron scheduler with a real every-second
// schedule. Scheduler tests assert counts only, never durations; waits are generous because the
// machine running them may be busy.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import cron from 'node-cron';
import { RoundScheduler, type RoundSchedulerOptions } from '../src/rounds/round-scheduler.ts';
import { checkTriggerSettings, decideRound, decideTaskRound, type TaskTrigger, type TriggerCause, type TriggerSettings, type TriggerState } from '../src/rounds/round-trigger.ts';

const NOW = new Date('2025-01-01T12:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000);

const settings: TriggerSettings = { minInteractions: 64, minIntervalSeconds: 60, poolTrajectories: 0, maxRounds: 0 };
const state: TriggerState = {
  now: NOW, roundRunning: false, activeVersion: 'base', interactionsFromActive: 100,
  lastRoundEndedAt: ago(600), activeSince: ago(900), roundsCompletedHere: 0,
};

interface Case {
  name: string;
  cause: TriggerCause;
  state?: Partial<TriggerState>;
  settings?: Partial<TriggerSettings>;
  start: boolean;
  trigger?: 'threshold' | 'cron' | 'manual';
  /** Substrings the reason must contain (the numbers behind the decision). */
  reason: (string | RegExp)[];
}

const cases: Case[] = [
  // Never while a round runs or with no model, whatever the cause.
  ...(['check', 'cron', 'manual'] as const).flatMap((cause): Case[] => [
    { name: `${cause}: a round is running`, cause, state: { roundRunning: true }, start: false, reason: ['already running'] },
    { name: `${cause}: no active version`, cause, state: { activeVersion: null, activeSince: null }, start: false, reason: ['no active model version'] },
  ]),

  // manual: only needs one interaction from the active version.
  { name: 'manual: no interactions', cause: 'manual', state: { interactionsFromActive: 0 }, start: false, reason: ['at least 1 interaction', 'version base', 'got 0'] },
  { name: 'manual: ignores thresholds, interval and maxRounds', cause: 'manual',
    state: { interactionsFromActive: 1, lastRoundEndedAt: ago(1), roundsCompletedHere: 3 }, settings: { maxRounds: 3, poolTrajectories: 500 },
    start: true, trigger: 'manual', reason: ['manual', '1 interaction from version base'] },

  // cron: one interaction and maxRounds not reached; ignores minInteractions and the interval.
  { name: 'cron: no interactions', cause: 'cron', state: { interactionsFromActive: 0 }, start: false, reason: ['at least 1 interaction', 'version base', 'got 0'] },
  { name: 'cron: maxRounds reached', cause: 'cron', state: { roundsCompletedHere: 2 }, settings: { maxRounds: 2 }, start: false, reason: ['max rounds', '2 of 2'] },
  { name: 'cron: ignores minInteractions and interval', cause: 'cron', state: { interactionsFromActive: 5, lastRoundEndedAt: ago(1) },
    start: true, trigger: 'cron', reason: ['cron', '5 interactions from version base'] },
  { name: 'cron: maxRounds 0 means no limit', cause: 'cron', state: { roundsCompletedHere: 1000 }, start: true, trigger: 'cron', reason: ['100 interactions'] },

  // check: interactions >= max(minInteractions, poolTrajectories), interval passed, maxRounds not reached.
  { name: 'check: too few interactions', cause: 'check', state: { interactionsFromActive: 42 }, start: false, reason: ['42 of 64 interactions from version base'] },
  { name: 'check: knowledge pool incomplete', cause: 'check', state: { interactionsFromActive: 80 }, settings: { poolTrajectories: 96 },
    start: false, reason: ['80 of 96 interactions from version base', 'knowledge pool'] },
  { name: 'check: exactly the threshold', cause: 'check', state: { interactionsFromActive: 64 }, start: true, trigger: 'threshold',
    reason: ['64 of 64 interactions from version base', '600 s since the previous round ended'] },
  { name: 'check: pool requirement met', cause: 'check', state: { interactionsFromActive: 96 }, settings: { poolTrajectories: 96 },
    start: true, trigger: 'threshold', reason: ['96 of 96 interactions'] },
  { name: 'check: interval since previous round not passed', cause: 'check', state: { lastRoundEndedAt: ago(30) },
    start: false, reason: ['30 s of 60 s', 'previous round ended'] },
  { name: 'check: interval since activation not passed (activation later than last round)', cause: 'check',
    state: { lastRoundEndedAt: ago(100), activeSince: ago(12.5) }, start: false, reason: ['12.5 s of 60 s', 'version base was activated'] },
  { name: 'check: interval just short is not rounded up', cause: 'check', state: { lastRoundEndedAt: new Date(NOW.getTime() - 59_999) },
    start: false, reason: ['59.9 s of 60 s'] },
  { name: 'check: interval exactly passed', cause: 'check', state: { lastRoundEndedAt: ago(60), activeSince: ago(120) },
    start: true, trigger: 'threshold', reason: ['60 s since the previous round ended'] },
  { name: 'check: no previous round, interval since activation', cause: 'check', state: { lastRoundEndedAt: null, activeSince: ago(61) },
    start: true, trigger: 'threshold', reason: ['61 s since version base was activated'] },
  { name: 'check: no reference time at all', cause: 'check', state: { lastRoundEndedAt: null, activeSince: null }, start: true, trigger: 'threshold', reason: ['100 of 64'] },
  { name: 'check: maxRounds reached', cause: 'check', state: { roundsCompletedHere: 3 }, settings: { maxRounds: 3 }, start: false, reason: ['3 of 3'] },
  { name: 'check: maxRounds not yet reached', cause: 'check', state: { roundsCompletedHere: 2 }, settings: { maxRounds: 3 }, start: true, trigger: 'threshold', reason: ['100 of 64'] },

  // check, after refused rounds in a row from the active version: base x 2^(k-1) since the previous round, at most 64 x base.
  { name: 'check: backing off after 3 refusals', cause: 'check', state: { refusedInARow: 3, lastRoundEndedAt: ago(100) }, settings: { refusalBackoffSeconds: 60 },
    start: false, reason: ['backing off after 3 refused rounds in a row from version base', '100 s of 240 s since the previous round ended'] },
  { name: 'check: the back-off passed', cause: 'check', state: { refusedInARow: 3, lastRoundEndedAt: ago(241) }, settings: { refusalBackoffSeconds: 60 }, start: true, trigger: 'threshold', reason: ['threshold met'] },
  { name: 'check: one refusal waits the base', cause: 'check', state: { refusedInARow: 1, lastRoundEndedAt: ago(59) }, settings: { refusalBackoffSeconds: 60, minIntervalSeconds: 0 }, start: false, reason: ['1 refused round in a row', '59 s of 60 s'] },
  { name: 'check: the back-off is capped at 64 x base', cause: 'check', state: { refusedInARow: 20, lastRoundEndedAt: ago(3000) }, settings: { refusalBackoffSeconds: 60 }, start: false, reason: ['3000 s of 3840 s'] },
  { name: 'check: no back-off when it is 0', cause: 'check', state: { refusedInARow: 5 }, settings: { refusalBackoffSeconds: 0 }, start: true, trigger: 'threshold', reason: ['threshold met'] },
  { name: 'cron: not held back by refusals', cause: 'cron', state: { refusedInARow: 5, lastRoundEndedAt: ago(1) }, settings: { refusalBackoffSeconds: 60 }, start: true, trigger: 'cron', reason: ['cron schedule fired'] },
];

describe('decideRound (pure rules)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const d = decideRound({ ...state, ...c.state }, { ...settings, ...c.settings }, c.cause);
      assert.equal(d.start, c.start, d.reason);
      if (d.start) assert.equal(d.trigger, c.trigger);
      for (const part of c.reason) {
        if (typeof part === 'string') assert.ok(d.reason.includes(part), `reason ${JSON.stringify(d.reason)} lacks ${JSON.stringify(part)}`);
        else assert.match(d.reason, part);
      }
    });
  }
});

describe('checkTriggerSettings', () => {
  it('accepts valid settings, including fractional intervals and zero limits', () => {
    checkTriggerSettings(settings);
    checkTriggerSettings({ minInteractions: 1, minIntervalSeconds: 0.5, poolTrajectories: 0, maxRounds: 0 });
  });
  const bad: [keyof TriggerSettings, number, string][] = [
    ['minInteractions', 0, '0'], ['minInteractions', 1.5, '1.5'], ['minInteractions', Number.NaN, 'NaN'],
    ['minIntervalSeconds', -1, '-1'], ['minIntervalSeconds', Number.POSITIVE_INFINITY, 'Infinity'],
    ['poolTrajectories', -1, '-1'], ['poolTrajectories', 2.5, '2.5'],
    ['maxRounds', -1, '-1'], ['maxRounds', 0.5, '0.5'],
  ];
  for (const [field, value, shown] of bad) {
    it(`rejects ${field} = ${shown}`, () => {
      assert.throws(() => checkTriggerSettings({ ...settings, [field]: value }), (e: unknown) => {
        assert.ok(e instanceof RangeError);
        assert.ok(e.message.includes(field), e.message);
        assert.ok(e.message.includes(`got ${shown}`), e.message);
        return true;
      });
    });
  }
});

/** Polls until `cond` holds; fails the test (rather than hanging) after a generous deadline. */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A fake daemon: state() reports the fields below; startRound() records its calls. */
function fakeDaemon(opts: { interactions?: number; stateDelayMs?: number; kickoffMs?: number } = {}) {
  const f = {
    running: false,
    interactions: opts.interactions ?? 100,
    stateCalls: 0,
    stateActive: 0,
    maxStateActive: 0,
    startCalls: [] as { trigger: string; reason: string }[],
    kickedOff: 0,
    errors: [] as Error[],
    decisions: [] as { start: boolean; cause: string; reason: string }[],
    settings: { minInteractions: 10, minIntervalSeconds: 0, poolTrajectories: 0, maxRounds: 0 } as TriggerSettings,
  };
  const options: RoundSchedulerOptions = {
    checkExpression: '* * * * * *',
    state: async () => {
      f.stateCalls++;
      f.stateActive++;
      f.maxStateActive = Math.max(f.maxStateActive, f.stateActive);
      try {
        if (opts.stateDelayMs) await sleep(opts.stateDelayMs);
        return [{ taskId: 'game', settings: f.settings, taskRoundEndedAt: null, state: { ...state, now: new Date(), roundRunning: f.running, interactionsFromActive: f.interactions, lastRoundEndedAt: null, activeSince: null } }];
      } finally {
        f.stateActive--;
      }
    },
    // Kicking off takes a while; only when it resolves is the round visible as running.
    startRound: async (_taskId, trigger, reason) => {
      f.startCalls.push({ trigger, reason });
      if (opts.kickoffMs) await sleep(opts.kickoffMs);
      f.running = true;
      f.kickedOff++;
    },
    onDecision: (d, cause) => f.decisions.push({ start: d.start, cause, reason: d.reason }),
    onError: (e) => f.errors.push(e),
  };
  return { f, options };
}

describe('RoundScheduler', () => {
  it('rejects an invalid OELD_ROUND_CRON expression, naming the variable and the value', async () => {
    const { options } = fakeDaemon();
    for (const expr of ['61 * * * *', 'every night', '']) {
      assert.throws(() => new RoundScheduler({ ...options, roundExpression: expr }), (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.ok(e.message.includes('OELD_ROUND_CRON'), e.message);
        assert.ok(e.message.includes(`'${expr}'`), e.message);
        return true;
      });
    }
    assert.throws(() => new RoundScheduler({ ...options, checkExpression: 'nope' }), /nope/);
    // Settings come with each task's state: a bad one fails the check that reads it, naming the field.
    const { f: bad, options: badOptions } = fakeDaemon();
    bad.settings = { ...bad.settings, minInteractions: 0 };
    await assert.rejects(new RoundScheduler(badOptions).requestManual(), /minInteractions.*got 0/);
    // A valid expression is accepted (and nothing is scheduled until start()).
    new RoundScheduler({ ...options, roundExpression: '0 3 * * *' });
  });

  it('starts exactly one round while ticks keep coming during the slow kick-off', async () => {
    const { f, options } = fakeDaemon({ kickoffMs: 1500 });
    const s = new RoundScheduler(options);
    s.start();
    try {
      await waitFor(() => f.kickedOff === 1, 'the round to be kicked off');
      const callsAtKickoff = f.stateCalls;
      // Further ticks must now see the running round and decline.
      await waitFor(() => f.stateCalls >= callsAtKickoff + 2, 'two more ticks');
    } finally {
      await s.stop();
    }
    assert.equal(f.startCalls.length, 1);
    assert.deepEqual(f.startCalls[0]?.trigger, 'threshold');
    assert.match(f.startCalls[0]?.reason ?? '', /100 of 10 interactions from version base/);
    assert.ok(f.decisions.some((d) => !d.start && /already running/.test(d.reason)));
    assert.deepEqual(f.errors, []);
  });

  it('skips ticks while a slow state() is in flight: never two evaluations at once', async () => {
    const { f, options } = fakeDaemon({ interactions: 0, stateDelayMs: 2500 });
    const s = new RoundScheduler(options);
    s.start();
    try {
      await waitFor(() => f.stateCalls >= 2 && f.stateActive === 0, 'two slow evaluations');
    } finally {
      await s.stop();
    }
    assert.equal(f.maxStateActive, 1);
    assert.equal(f.decisions.length, f.stateCalls);
    assert.equal(f.startCalls.length, 0);
    assert.match(f.decisions[0]?.reason ?? '', /0 of 10 interactions/);
  });

  it('stop() waits for the tick in flight, and no tick runs after it', async () => {
    const { f, options } = fakeDaemon({ interactions: 0, stateDelayMs: 400 });
    const s = new RoundScheduler(options);
    s.start();
    await waitFor(() => f.stateCalls >= 2 && f.stateActive === 1, 'a tick in flight');
    await s.stop();
    assert.equal(f.stateActive, 0, 'stop() resolved before the in-flight tick finished');
    // The tasks are destroyed, not just muted: left in node-cron's registry they would keep the process alive.
    assert.deepEqual([...cron.getTasks().values()].filter((t) => t.name?.startsWith('oeld-round')), []);
    const calls = f.stateCalls;
    await sleep(2500);
    assert.equal(f.stateCalls, calls);
    assert.throws(() => s.start(), /cannot be restarted/);
  });

  it('a tick that reads state while stop() is pending does not start a round', async () => {
    const { f, options } = fakeDaemon({ stateDelayMs: 400 });
    const s = new RoundScheduler(options);
    s.start();
    await waitFor(() => f.stateActive === 1, 'a tick in flight');
    await s.stop();
    assert.equal(f.startCalls.length, 0);
    assert.match(f.decisions.at(-1)?.reason ?? '', /stopping/);
  });

  it('the round cron expression starts a round below the interaction threshold', async () => {
    const { f, options } = fakeDaemon({ interactions: 3 });
    // The threshold check fires rarely (New Year at midnight); the round cron every second.
    const s = new RoundScheduler({ ...options, checkExpression: '0 0 1 1 *', roundExpression: '* * * * * *' });
    s.start();
    try {
      await waitFor(() => f.stateCalls >= 3, 'three cron ticks');
    } finally {
      await s.stop();
    }
    assert.deepEqual(f.startCalls.map((c) => c.trigger), ['cron']);
    assert.match(f.startCalls[0]?.reason ?? '', /3 interactions from version base/);
    assert.ok(f.decisions.every((d) => d.cause === 'cron'));
  });

  it('reports state() errors through onError and keeps ticking', async () => {
    const { f, options } = fakeDaemon();
    let calls = 0;
    const s = new RoundScheduler({ ...options, state: async () => { calls++; throw new Error(`db down ${calls}`); } });
    s.start();
    try {
      await waitFor(() => f.errors.length >= 2, 'two errors');
    } finally {
      await s.stop();
    }
    assert.match(f.errors[0]?.message ?? '', /db down 1/);
    assert.equal(f.startCalls.length, 0);
  });

  describe('requestManual', () => {
    it('refuses without interactions from the active version and starts with one', async () => {
      const { f, options } = fakeDaemon({ interactions: 0 });
      const s = new RoundScheduler(options); // not started: manual requests need no cron
      const refused = await s.requestManual();
      assert.equal(refused.start, false);
      assert.match(refused.reason, /at least 1 interaction.*got 0/);
      assert.equal(f.startCalls.length, 0);

      f.interactions = 1;
      const d = await s.requestManual();
      assert.deepEqual(d, { start: true, taskId: 'game', trigger: 'manual', reason: 'task game: manual request with 1 interaction from version base' });
      // Resolved once the round was kicked off.
      assert.equal(f.kickedOff, 1);
      assert.deepEqual(f.startCalls.map((c) => c.trigger), ['manual']);
      await s.stop();
      assert.equal((await s.requestManual()).start, false);
    });

    it('waits for a tick that is starting a round instead of starting a second one', async () => {
      const { f, options } = fakeDaemon({ kickoffMs: 1000 });
      const s = new RoundScheduler(options);
      s.start();
      try {
        await waitFor(() => f.startCalls.length === 1, 'a tick to call startRound');
        assert.equal(f.kickedOff, 0);
        const d = await s.requestManual();
        assert.equal(d.start, false);
        assert.match(d.reason, /already running/);
      } finally {
        await s.stop();
      }
      assert.equal(f.startCalls.length, 1);
    });

    it('rejects when startRound fails', async () => {
      const { options } = fakeDaemon();
      const s = new RoundScheduler({ ...options, startRound: async () => { throw new Error('trainer unavailable'); } });
      await assert.rejects(s.requestManual(), /trainer unavailable/);
      // The in-flight slot was released: a second request is evaluated, not stuck.
      await assert.rejects(s.requestManual(), /trainer unavailable/);
      await s.stop();
    });
  });
});

describe('decideTaskRound', () => {
  const t = (taskId: string, interactions: number, taskRoundEndedAt: Date | null = null): TaskTrigger => ({ taskId, settings, taskRoundEndedAt, state: { ...state, interactionsFromActive: interactions, lastRoundEndedAt: null, activeSince: null } });
  it('gives the round to the task whose own last round ended longest ago, so that none starves', () => {
    const d = decideTaskRound([t('game', 100, ago(10)), t('support', 100, ago(500)), t('billing', 100, ago(100))], 'check');
    assert.equal(d.start && d.taskId, 'support');
    const never = decideTaskRound([t('game', 100, ago(10)), t('support', 100, null)], 'check');
    assert.equal(never.start && never.taskId, 'support', 'a task that never had a round goes first');
    const tie = decideTaskRound([t('game', 100), t('support', 100)], 'check');
    assert.equal(tie.start && tie.taskId, 'game', 'configuration order breaks ties');
  });
  it('starts a task whose round may start, and names it', () => {
    const d = decideTaskRound([t('game', 3), t('support', 70)], 'check');
    assert.equal(d.start, true);
    assert.equal(d.start && d.taskId, 'support');
    assert.match(d.reason, /^task support: threshold met: 70 of 64/);
  });
  it('lists every task\'s reason when none may start', () => {
    const d = decideTaskRound([t('game', 3), t('support', 5)], 'check');
    assert.equal(d.start, false);
    assert.match(d.reason, /game: waiting for interactions: 3 of 64.*; support: waiting for interactions: 5 of 64/);
  });
  it('limits a manual request to the task it names, and refuses an unknown one with the known ones', () => {
    const d = decideTaskRound([t('game', 3), t('support', 0)], 'manual', 'support');
    assert.equal(d.start, false);
    assert.match(d.reason, /task support: manual round needs at least 1 interaction/);
    const g = decideTaskRound([t('game', 3), t('support', 0)], 'manual', 'game');
    assert.equal(g.start && g.taskId, 'game');
    const u = decideTaskRound([t('game', 3)], 'manual', 'nope');
    assert.equal(u.start, false);
    assert.match(u.reason, /no task "nope" is configured \(tasks: game\)/);
  });
});

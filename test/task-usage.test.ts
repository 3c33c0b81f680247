import assert from 'node:assert/strict';
import { UNKNOWN_NAMES_SHOWN, unknownNames } from '../src/daemon/metrics-refresh.ts';
import { describe, it } from 'node:test';
import { describeTaskUsage, taskUsage } from '../src/operations/task-usage.ts';

describe('task usage (what the next round can learn from, and why the rest cannot)', () => {
  const counts = [
    { taskId: 'support', modelVersion: 'v2', heldOut: false, recorded: 30, fresh: 12 },
    { taskId: 'support', modelVersion: 'v2', heldOut: true, recorded: 4, fresh: 1 },
    { taskId: 'support', modelVersion: 'v1', heldOut: false, recorded: 7, fresh: 7 },
    { taskId: 'support', modelVersion: 'Qwen-Qwen3-8B', heldOut: false, recorded: 5, fresh: 5 },
    { taskId: 'billing', modelVersion: 'v2', heldOut: false, recorded: 9, fresh: 9 },
  ];
  const tasks = [{ id: 'frozenlake', kind: 'game' as const }, { id: 'support', kind: 'chat' as const }];

  it('accounts for every interaction, per task, with its reason', () => {
    const u = taskUsage(counts, 'v2', new Set(['v1', 'v2']), tasks);
    const support = u.find((t) => t.taskId === 'support')!;
    assert.equal(support.usable, 12);
    assert.deepEqual(support.why, { heldOut: 4, usedByRounds: 18, olderVersions: 7, unknownVersions: { 'Qwen-Qwen3-8B': 5 }, taskNotConfigured: 0 });
    const billing = u.find((t) => t.taskId === 'billing')!;
    assert.equal(billing.kind, null);
    assert.equal(billing.usable, 0);
    assert.equal(billing.why.taskNotConfigured, 9);
    assert.equal(u.find((t) => t.taskId === 'frozenlake')!.usable, 0, 'a configured task without interactions is listed');
    const total = (t: typeof support) => t.usable + t.why.heldOut + t.why.usedByRounds + t.why.olderVersions + t.why.taskNotConfigured + Object.values(t.why.unknownVersions).reduce((a, b) => a + b, 0);
    assert.equal(u.reduce((n, t) => n + total(t), 0), counts.reduce((n, c) => n + c.recorded, 0), 'none silently ignored');
    assert.equal(describeTaskUsage(support), 'support (chat): 12 usable for the next round; 4 held out for the gate; 18 already used by rounds; 7 from older versions (extraction needs the version that acted); 5 from versions oeld never published (Qwen-Qwen3-8B: 5)');
    assert.match(describeTaskUsage(billing), /billing: 0 usable.*9 of a task OELD_TASKS does not name/);
  });

  it('keeps the unknown-name metric\'s labels bounded: the largest names, the rest summed under one', () => {
    const counts = Array.from({ length: UNKNOWN_NAMES_SHOWN + 5 }, (_, i) => ({ name: `model-${String(i).padStart(2, '0')}`, recorded: 100 - i }));
    const shown = unknownNames([...counts, { name: 'model-00', recorded: 1 }]);
    assert.equal(shown.length, UNKNOWN_NAMES_SHOWN + 1);
    assert.deepEqual(shown[0], ['model-00', 101], 'a name\'s counts over tasks are summed');
    assert.deepEqual(shown.at(-1), ['(other names)', counts.slice(UNKNOWN_NAMES_SHOWN).reduce((n, c) => n + c.recorded, 0)]);
    assert.equal(shown.reduce((n, [, k]) => n + k, 0), counts.reduce((n, c) => n + c.recorded, 0) + 1, 'nothing dropped');
    assert.deepEqual(unknownNames([{ name: 'a', recorded: 2 }]), [['a', 2]]);
  });
});

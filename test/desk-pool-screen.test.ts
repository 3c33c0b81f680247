import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEPLOYED_COMPANY_SEEDS } from '../src/envs/seed-ranges.ts';
import { answerWith, FACTS, factValues, statedValues, type Fact } from '../src/envs/support-desk/facts.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { screenFor } from '../src/evaluation/task-screen.ts';
import { renderItemTexts } from '../src/projections/knowledge/knowledge-base.ts';
import { companyAt } from '../src/simulator/desk-simulator.ts';
import { DESK_TASK_NAME, loadTasks } from '../src/tasks/task-config.ts';
import type { ChatTask } from '../src/tasks/task.ts';

const defaults = { minInteractions: 1, maxRetentionKl: 1, anchorPromptsFile: 'config/anchor-prompts.jsonl' };
const [desk, logs] = loadTasks([DESK_TASK_NAME, 'support'], undefined, defaults) as [ChatTask, ChatTask];
const world = { kind: 'support-desk' as const, companySeed: DEPLOYED_COMPANY_SEEDS.start + 3, drift: { afterConversations: 100, facts: 4 } };

const askedFact = (text: string): Fact => {
  const fact = FACTS.find((f) => [...f.asked, ...f.testOnly].some((q) => text.toLowerCase().includes(q.slice(1).toLowerCase())));
  assert.ok(fact, `a question of some fact in ${JSON.stringify(text)}`);
  return fact;
};

/**
 * A stand-in for a model that reads its context: it answers with the value of the fact's item in its
 * system message, and with a value no company has where there is none.
 */
function contextReader(calls: { prompts: number }): ModelEngine {
  const engine: Pick<ModelEngine, 'complete'> = {
    async complete(_version, prompts) {
      calls.prompts += prompts.length;
      return prompts.map((p) => {
        assert.ok(typeof p !== 'string');
        const system = p.filter((m) => m.role === 'system').map((m) => m.content).join('\n');
        const fact = askedFact(p.at(-1)!.content);
        // The fact's own item ("The refund window is 30 days."), not another fact's value of the same kind.
        const read = system.split('\n').flatMap((line) => statedValues(fact, line).filter((v) => line.includes(fact.item(v))))[0];
        return { text: answerWith(fact, read ?? 'none'), tokens: 8 };
      });
    },
  };
  return engine as ModelEngine;
}

const knowledge = (values: Record<string, string>) => renderItemTexts(FACTS.map((f) => f.item(values[f.id]!)));
const otherValue = (f: Fact, v: string) => factValues(f).find((x) => x !== v)!;

describe('screening the support desk\'s pool before training', () => {
  it('keeps the slots whose knowledge answers the company as it is now, and drops wrong and outdated ones', async () => {
    const before = companyAt(world, 0);
    const now = companyAt(world, 100);
    assert.equal(now.changed.length, 4);
    const calls = { prompts: 0 };
    const screen = screenFor(contextReader(calls), desk, 64, async () => now.company);
    assert.ok(screen, 'the desk has a screen');
    const wrong = Object.fromEntries(FACTS.map((f) => [f.id, otherValue(f, now.company.facts[f.id]!)]));
    const half = Object.fromEntries(FACTS.map((f, i) => [f.id, i % 2 ? wrong[f.id]! : now.company.facts[f.id]!]));
    const texts = [
      { slot: 0, text: knowledge(now.company.facts) },
      { slot: 2, text: knowledge(before.company.facts) },
      { slot: 3, text: knowledge(wrong) },
      { slot: 5, text: knowledge(half) },
    ];
    const progress: number[] = [];
    const s = await screen('v', texts, (done) => progress.push(done));
    assert.equal(s.episodes, 64);
    assert.equal(s.withoutKnowledge, 0, 'no knowledge: no value right');
    const rate = Object.fromEntries(s.slots.map((x) => [x.slot, x.passRate]));
    assert.equal(rate[0], 1);
    assert.equal(rate[2], 12 / 16, 'the four changed facts are answered with their old values');
    assert.equal(rate[3], 0);
    assert.equal(rate[5], 0.5);
    assert.deepEqual(s.slots.filter((x) => x.kept).map((x) => x.slot), [0], 'only the slot within 10 points of the best');
    assert.equal(calls.prompts, 64 * 5, 'the same 64 questions without knowledge and with each slot');
    assert.deepEqual(progress, [1, 2, 3, 4, 5]);
  });

  it('asks the company when it screens (the policy may have changed since the daemon started)', async () => {
    let asked = 0;
    const screen = screenFor(contextReader({ prompts: 0 }), desk, 16, async () => { asked++; return companyAt(world, 0).company; })!;
    await screen('v', [{ slot: 0, text: knowledge(companyAt(world, 0).company.facts) }]);
    await screen('v', [{ slot: 0, text: knowledge(companyAt(world, 0).company.facts) }]);
    assert.equal(asked, 2);
  });

  it('screens nothing for a chat task of logs only, without a company, or with 0 episodes', () => {
    const engine = contextReader({ prompts: 0 });
    const company = async () => companyAt(world, 0).company;
    assert.equal(screenFor(engine, logs, 32, company), undefined);
    assert.equal(screenFor(engine, desk, 32), undefined);
    assert.equal(screenFor(engine, desk, 0, company), undefined);
  });
});

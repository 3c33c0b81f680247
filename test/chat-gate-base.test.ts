/**
 * The chat gate watches retention against the lineage's base too (#19, no unbounded ratchet):
 * rounds that each drift a little from their round-start version, within the per-round bound,
 * are refused once their drift from the base passes its own bound. A stand-in engine gives the
 * KL of each (student, teacher) pair, so the sequence is exact.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { ChatGate } from '../src/evaluation/chat-gate.ts';
import { userPrompt } from '../src/model/inference/chat-prompt.ts';
import type { ChatTask } from '../src/tasks/task.ts';
import { TINY_CHAT_TASK } from './helpers/round-settings.ts';

/** Version vN is N rounds from the base v0; each round drifts 0.04 on the anchors (bound 0.05 a round), so vN is 0.04 N from v0. */
function standInEngine(calls: string[]): ModelEngine {
  const gen = (v: string) => Number(v.slice(1));
  return {
    load: async (version: string) => { calls.push(`load ${version}`); return { parameters: 1, backend: 'stand-in' }; },
    unload: async (version: string) => { calls.push(`unload ${version}`); },
    measureKl: async (student: string, teacher: string, pairs: { knowledge: string }[]) => {
      const withKnowledge = pairs.some((p) => p.knowledge !== '');
      // Held-out gap: the candidate has consolidated the knowledge (lower); anchors: 0.04 per round between the two.
      const meanKl = withKnowledge ? (student === teacher ? 0.5 : 0.4) : 0.04 * Math.abs(gen(student) - gen(teacher));
      return { meanKl, tokens: 10 * pairs.length, prompts: pairs.length };
    },
  } as unknown as ModelEngine;
}

const task: ChatTask = { ...TINY_CHAT_TASK, maxRetentionKl: 0.05, maxBaseRetentionKl: 0.15 };
const gateOf = (engine: ModelEngine, watch: boolean) => new ChatGate(engine, task, {
  heldOutPrompts: async () => [userPrompt('How long is the warranty?'), userPrompt('Can I return it?')],
  anchorPrompts: () => [userPrompt('What is the capital of France?')],
  gate: true, tolerance: 0, temperature: 0.7, topK: 20, seed: 1,
  ...(watch ? { lineageRoot: async () => ({ version: 'v0', path: '/models/v0', pruned: false }) } : {}),
});
const roundFrom = (gate: ChatGate, n: number) => gate.evaluate({ roundId: `r${n + 1}`, baseVersion: `v${n}`, candidateVersion: `v${n + 1}`, knowledgeTexts: ['- EXPERIENCE ITEM: 24 months'] });

describe('the chat gate against the lineage\'s base', () => {
  it('lets small drifts through round after round until their sum passes the base bound, then refuses, naming both figures', async () => {
    const calls: string[] = [];
    const gate = gateOf(standInEngine(calls), true);
    const verdicts: boolean[] = [];
    for (let n = 0; n < 5; n++) verdicts.push((await roundFrom(gate, n)).passed);
    // v1 is measured against v0 once (the base is the round-start version); v2, v3: 0.08, 0.12; v4: 0.16 > 0.15.
    assert.deepEqual(verdicts, [true, true, true, false, false]);
    const refused = await roundFrom(gate, 3);
    assert.ok(refused.reasons.includes('retention KL on 1 anchor prompts 0.0400 (at most 0.05)'), refused.reasons.join('; '));
    assert.ok(refused.reasons.includes('retention KL from the base v0 0.1600 (at most 0.15)'), refused.reasons.join('; '));
    assert.equal(refused.chat!.baseRetentionKl, 0.16);
    const fromBase = refused.evaluations.filter((e) => e.kind === 'retention' && e.referenceVersion === 'v0');
    assert.equal(fromBase.length, 1);
    // The base is loaded for its measurement and unloaded after (the worker holds only the versions in use).
    assert.deepEqual(calls.slice(-2), ['load v0', 'unload v0']);
  });

  it('without watching the base (OELD_GATE_WATCH_UNTRAINED=false) the same drifts add up unchecked', async () => {
    const gate = gateOf(standInEngine([]), false);
    for (let n = 0; n < 5; n++) {
      const r = await roundFrom(gate, n);
      assert.equal(r.passed, true);
      assert.equal(r.chat!.baseRetentionKl, null);
    }
  });
});

describe('the chat gate where the task\'s own accuracy decides (the support desk)', () => {
  /** A candidate whose gap grew (0.5 -> 0.6) and whose anchors stayed put. */
  const grewEngine = {
    measureKl: async (student: string, teacher: string, pairs: { knowledge: string }[]) => ({
      meanKl: pairs.some((p) => p.knowledge !== '') ? (student === teacher ? 0.5 : 0.6) : 0.01, tokens: 10 * pairs.length, prompts: pairs.length,
    }),
  } as unknown as ModelEngine;
  const gate = (gapDecides: boolean | undefined, heldOut = 2) => new ChatGate(grewEngine, task, {
    heldOutPrompts: async () => [userPrompt('How long is the warranty?'), userPrompt('Can I return it?')].slice(0, heldOut),
    anchorPrompts: () => [userPrompt('What is the capital of France?')],
    gate: true, tolerance: 0, temperature: 0.7, topK: 20, seed: 1, ...(gapDecides === undefined ? {} : { gapDecides }),
  });
  const ctx = { roundId: 'r1', baseVersion: 'v0', candidateVersion: 'v1', knowledgeTexts: ['- EXPERIENCE ITEM: 24 months'] };

  it('refuses a grown gap by default, and only reports it with gapDecides false', async () => {
    const refused = await gate(undefined).evaluate(ctx);
    assert.equal(refused.passed, false);
    assert.ok(refused.reasons.includes('distillation gap on 2 held-out prompts 0.5000 -> 0.6000 (grew)'), refused.reasons.join('; '));
    const reported = await gate(false).evaluate(ctx);
    assert.equal(reported.passed, true);
    assert.ok(reported.reasons.includes('distillation gap on 2 held-out prompts 0.5000 -> 0.6000 (grew; not deciding: the task\'s own accuracy does)'), reported.reasons.join('; '));
    assert.deepEqual([reported.chat!.gapBefore, reported.chat!.gapAfter], [0.5, 0.6], 'still measured and recorded');
    assert.equal(reported.evaluations.filter((e) => e.kind === 'distillation-gap').length, 2);
  });

  it('still refuses on retention with gapDecides false, and lets a round without held-out logs through', async () => {
    const noLogs = await gate(false, 0).evaluate(ctx);
    assert.equal(noLogs.passed, true, noLogs.reasons.join('; '));
    assert.equal((await gate(undefined, 0).evaluate(ctx)).passed, false);
    const drifted = new ChatGate({ measureKl: async (_s: string, _t: string, pairs: { knowledge: string }[]) => ({ meanKl: pairs.some((p) => p.knowledge !== '') ? 0.1 : 0.2, tokens: 1, prompts: 1 }) } as unknown as ModelEngine, task, {
      heldOutPrompts: async () => [userPrompt('How long is the warranty?')], anchorPrompts: () => [userPrompt('Hi')],
      gate: true, tolerance: 0, temperature: 0.7, topK: 20, seed: 1, gapDecides: false,
    });
    assert.equal((await drifted.evaluate(ctx)).passed, false, 'retention 0.2 over its bound 0.05');
  });
});

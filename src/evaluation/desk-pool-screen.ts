/**
 * Screening a support-desk round's knowledge pool before training: the desk's counterpart of a
 * game's screen (pool-screen.ts). Extraction samples, and a slot can hold a wrong value (the
 * assistant's guess written down instead of the customer's correction, measured: 4 of 13 items of
 * one slot on seed 11) or an old one after the policy changed; distilled, it is taught. The
 * round-start version answers the same conversations (extraction seeds, deployment phrasings,
 * every fact asked equally often) without knowledge and with each slot's knowledge in context,
 * against the company as its customers know it now; the same rule keeps a slot (keepSlots).
 */
import { EXTRACTION_SEEDS } from '../envs/seed-ranges.ts';
import type { Company } from '../envs/support-desk/company.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import type { ChatTask } from '../tasks/task.ts';
import { evaluateDesk } from './desk-evaluation.ts';
import { keepSlots, type PoolScreen } from './pool-screen.ts';

/** A desk task's screen: `questions` single-question conversations per slot (and without knowledge). */
export function deskPoolScreen(engine: ModelEngine, task: ChatTask, company: () => Promise<Company>, questions: number): PoolScreen {
  return async (version, texts, onProgress) => {
    const now = await company();
    const seeds = { ...EXTRACTION_SEEDS, count: questions };
    const answer = async (knowledge?: { text: string; slot: number }) => (await evaluateDesk(engine, version, {
      taskId: task.id, company: now, seeds, split: 'validation', maxNewTokens: task.responseTokens,
      ...(knowledge ? { knowledge: { ...knowledge, modelVersion: version } } : {}),
    })).stats.passRate;
    const without = await answer();
    onProgress?.(1, texts.length + 1);
    const slots: { slot: number; passRate: number }[] = [];
    for (const t of texts) {
      slots.push({ slot: t.slot, passRate: await answer(t) });
      onProgress?.(slots.length + 1, texts.length + 1);
    }
    return { episodes: questions, withoutKnowledge: without, slots: keepSlots(without, slots, questions) };
  };
}

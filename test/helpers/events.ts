import type { NewEvent } from '../../src/events/envelope.ts';
import { uuidFromKey } from '../../src/events/ids.ts';

/** A game trajectory of roughly `bytes` bytes, deterministic in i. */
export function interaction(i: number, opts: { bytes?: number; model?: string; prefix?: string } = {}): NewEvent<'InteractionRecorded'> {
  const pad = 'x'.repeat(Math.max(0, (opts.bytes ?? 300) - 250));
  return {
    id: uuidFromKey(`${opts.prefix ?? 'test'}:interaction:${i}`),
    type: 'InteractionRecorded',
    data: {
      interactionId: `${opts.prefix ?? 'test'}-${i}`,
      source: { kind: 'simulator', episodeSeed: i },
      modelVersion: opts.model ?? 'v0',
      taskId: 'frozenlake',
      turns: [{ prompt: `board ${i} ${pad}`, response: 'I move [right]', action: 'right' }],
      outcome: { success: i % 3 === 0, reward: i % 3 === 0 ? 1 : 0, feedback: i % 3 === 0 ? 'reached the goal' : 'fell into a hole' },
    },
  };
}

export function extraction(i: number, opts: { model?: string; slot?: number; budget?: number; items?: number; words?: number } = {}): NewEvent<'KnowledgeExtracted'> {
  const n = opts.items ?? 1;
  return {
    id: uuidFromKey(`test:extraction:${i}:${opts.model ?? 'v0'}:${opts.slot ?? 0}`),
    type: 'KnowledgeExtracted',
    data: {
      extractingModelVersion: opts.model ?? 'v0',
      poolSlot: opts.slot ?? 0,
      tokenBudget: opts.budget ?? 64,
      sourceInteractionIds: [`test-${i}`],
      items: Array.from({ length: n }, (_, k) => ({
        id: `item-${i}-${k}`,
        text: `Avoid cell H near step ${i}.${k} ${'word '.repeat(opts.words ?? 3).trim()}`,
      })),
    },
  };
}

/** Settings and a scripted extraction endpoint for the tiny-model round tests (shared with the child process). */
import { VALIDATION_SEEDS } from '../../src/envs/seed-ranges.ts';
import type { NewEvent } from '../../src/events/envelope.ts';
import { uuidFromKey } from '../../src/events/ids.ts';
import { createGate } from '../../src/evaluation/task-gate.ts';
import type { EventStore } from '../../src/store/event-store.ts';
import { GameGate } from '../../src/evaluation/game-gate.ts';
import type { ExtractFn } from '../../src/extraction/extract-pool.ts';
import type { ModelEngine } from '../../src/engine/model-engine.ts';
import type { RoundRunnerDeps, RoundSettings } from '../../src/rounds/round-runner.ts';
import { loadTasks } from '../../src/tasks/task-config.ts';
import type { ChatTask, GameTask } from '../../src/tasks/task.ts';
import { DEFAULT_ROUND_TRAINING } from '../../src/trainer/opcd-round.ts';

export const TINY_ROUND: RoundSettings = {
  trajectoriesPerRound: 8, poolSlots: 2, poolTrajectories: 3, tokenBudget: 64, teacherContext: 'knowledge',
  training: { ...DEFAULT_ROUND_TRAINING, steps: 3, batchSize: 4, learningRate: 1e-2 },
};

/** FrozenLake with the tiny model's short answers and extractions. */
export const TINY_GAME_TASK: GameTask = {
  ...(loadTasks(['frozenlake'], undefined, { minInteractions: 1, maxRetentionKl: 1, anchorPromptsFile: 'unused' })[0] as GameTask),
  responseTokens: 6, extractionTokens: 8,
};

/** The game task and its gate (4 validation episodes, activate whatever they show). */
export function tinyGameRound(engine: ModelEngine): Pick<RoundRunnerDeps, 'task' | 'gate'> {
  return { task: TINY_GAME_TASK, gate: new GameGate(engine, TINY_GAME_TASK, { seeds: { ...VALIDATION_SEEDS, count: 4 }, gate: false, tolerance: 0 }) };
}

/** A chat task for the tiny model: short replies, a quarter of the logs held out, a lenient retention bound. */
export const TINY_CHAT_TASK: ChatTask = {
  ...(loadTasks(['support'], undefined, { minInteractions: 1, maxRetentionKl: 50, anchorPromptsFile: 'config/anchor-prompts.jsonl' })[0] as ChatTask),
  responseTokens: 6, extractionTokens: 8, heldOutPercent: 25, gatePrompts: 4,
};

/** The chat task and its gate. */
export function tinyChatRound(engine: ModelEngine, store: EventStore): Pick<RoundRunnerDeps, 'task' | 'gate'> {
  return { task: TINY_CHAT_TASK, gate: createGate(engine, store, TINY_CHAT_TASK, { gameEpisodes: 0, gate: true, gameTolerance: 0, temperature: 0.7, topK: 256, seed: 1 }) };
}

/** Support conversations of version `version` (every other one with a correction), as the intake would store them. */
export function supportChats(version: string, count: number, prefix = 'chat'): NewEvent<'InteractionRecorded'>[] {
  return Array.from({ length: count }, (_, i) => ({
    id: uuidFromKey(`${prefix}:${i}`), type: 'InteractionRecorded' as const, data: {
      interactionId: `${prefix}-${i}`, source: { kind: 'http' as const }, modelVersion: version, taskId: 'support',
      messages: [
        { role: 'system' as const, content: 'You are the support desk.' },
        { role: 'user' as const, content: `How long is the warranty? (${i})` },
        { role: 'assistant' as const, content: 'Six months.' },
        { role: 'user' as const, content: i % 2 ? "No, it's 24 months." : 'Thanks.' },
        { role: 'assistant' as const, content: 'Noted.' },
      ],
      outcome: { success: i % 2 === 0 },
    },
  }));
}

/** An extraction endpoint that always answers with items (the tiny model writes none). */
export function scriptedExtractor(seen: string[]): () => Promise<ExtractFn> {
  let n = 0;
  return async () => async (prompts) => prompts.map((p) => {
    seen.push(p);
    n++;
    return { text: `Thinking.\n- EXPERIENCE ITEM: G is the goal.\n- EXPERIENCE ITEM: lesson ${n}\nnot an item`, tokens: 9 };
  });
}

/** The gate a task's rounds use: a game's validation seeds, or a chat task's KL measurements (and the support desk's validation conversations). */
import { VALIDATION_SEEDS } from '../envs/seed-ranges.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { countSimulatorEpisodes, readHeldOutPrompts } from '../rounds/round-queries.ts';
import { companyAt } from '../simulator/desk-simulator.ts';
import { DeskGate } from './desk-gate.ts';
import type { RoundGate } from '../rounds/round-runner.ts';
import type { EventStore } from '../store/event-store.ts';
import type { Task } from '../tasks/task.ts';
import { readAnchorPrompts } from './anchor-prompts.ts';
import { ChatGate } from './chat-gate.ts';
import { GameGate } from './game-gate.ts';

export interface GateSettings {
  /** Game tasks: validation episodes per version (0: no evaluation, activate always). */
  gameEpisodes: number;
  /** Refuse candidates that fail the checks (false: record them, activate anyway). */
  gate: boolean;
  /** The pass-rate drop tolerated (a game's validation episodes, a chat task's external evaluator). */
  gameTolerance: number;
  /** Chat tasks: the KL's sampling (the round's temperature and top-k) and its seed. */
  temperature: number;
  topK: number;
  seed: number;
}

export function createGate(engine: ModelEngine, store: EventStore, task: Task, s: GateSettings): RoundGate | null {
  if (task.kind === 'game') {
    if (s.gameEpisodes === 0) return null;
    return new GameGate(engine, task, { seeds: { ...VALIDATION_SEEDS, count: s.gameEpisodes }, gate: s.gate, tolerance: s.gameTolerance });
  }
  // Read at start, so that a missing or malformed file stops the daemon with its name and line.
  const anchors = readAnchorPrompts(task.anchorPromptsFile);
  const chat = new ChatGate(engine, task, {
    heldOutPrompts: () => readHeldOutPrompts(store.sql, task.id, task.heldOutPercent, task.gatePrompts),
    anchorPrompts: () => anchors, gate: s.gate, tolerance: s.gameTolerance, temperature: s.temperature, topK: s.topK, seed: s.seed,
  });
  if (!task.world) return chat;
  const world = task.world;
  return new DeskGate(engine, task, chat, {
    company: async () => companyAt(world, await countSimulatorEpisodes(store.sql, task.id)).company,
    ...(s.gameEpisodes > 0 ? { seeds: { ...VALIDATION_SEEDS, count: s.gameEpisodes } } : {}),
    gate: s.gate, tolerance: s.gameTolerance,
  });
}

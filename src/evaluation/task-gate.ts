/** The gate a task's rounds use: a game's validation seeds, or a chat task's KL measurements (and the support desk's validation conversations). */
import { VALIDATION_SEEDS } from '../envs/seed-ranges.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { readHeldOutPrompts } from '../rounds/round-queries.ts';
import { companyNow } from '../simulator/desk-simulator.ts';
import { DeskGate } from './desk-gate.ts';
import type { RoundGate } from '../rounds/round-runner.ts';
import type { EventStore } from '../store/event-store.ts';
import type { Task } from '../tasks/task.ts';
import { readAnchorPrompts } from './anchor-prompts.ts';
import { ChatGate } from './chat-gate.ts';
import { GameGate, type GateRegistry } from './game-gate.ts';
import type { Queryable } from '../db/sql.ts';
import { untrainedWorldOf } from '../envs/games.ts';
import { readLineageRoot, readRecentlyActive } from '../projections/models/model-projection.ts';

export interface GateSettings {
  /** Game tasks: validation episodes per version (0: no evaluation, activate always). */
  gameEpisodes: number;
  /** Refuse candidates that fail the checks (false: record them, activate anyway). */
  gate: boolean;
  /** The pass-rate drop tolerated (a game's validation episodes, a chat task's external evaluator). */
  gameTolerance: number;
  /** Game tasks: recently activated versions the candidate is compared with, the round-start version included (OELD_GATE_HISTORY). */
  gameHistory?: number;
  /** Game tasks: watch the world the rounds never train on against the lineage's root (OELD_GATE_WATCH_UNTRAINED). */
  watchUntrained?: boolean;
  /** Chat tasks: the KL's sampling (the round's temperature and top-k) and its seed. */
  temperature: number;
  topK: number;
  seed: number;
}

/** The model registry as the game gate reads it. */
export function gateRegistry(q: Queryable): GateRegistry {
  return { recentlyActive: (limit) => readRecentlyActive(q, limit), lineageRoot: (version) => readLineageRoot(q, version) };
}

export function createGate(engine: ModelEngine, store: EventStore, task: Task, s: GateSettings): RoundGate | null {
  if (task.kind === 'game') {
    if (s.gameEpisodes === 0) return null;
    const untrained = s.watchUntrained ? untrainedWorldOf(task.game) : undefined;
    return new GameGate(engine, task, {
      seeds: { ...VALIDATION_SEEDS, count: s.gameEpisodes }, gate: s.gate, tolerance: s.gameTolerance, history: s.gameHistory ?? 1,
      ...(untrained ? { retentionGame: untrained } : {}), registry: gateRegistry(store.sql),
    });
  }
  // Read at start, so that a missing or malformed file stops the daemon with its name and line.
  const anchors = readAnchorPrompts(task.anchorPromptsFile);
  const chat = new ChatGate(engine, task, {
    heldOutPrompts: () => readHeldOutPrompts(store.sql, task.id, task.heldOutPercent, task.gatePrompts),
    anchorPrompts: () => anchors, gate: s.gate, tolerance: s.gameTolerance, temperature: s.temperature, topK: s.topK, seed: s.seed,
    ...(s.watchUntrained ? { lineageRoot: (version: string) => readLineageRoot(store.sql, version) } : {}),
    // The support desk's truth is known: its fact accuracy decides where logs only have the gap.
    gapDecides: !task.world,
  });
  if (!task.world) return chat;
  const world = task.world;
  return new DeskGate(engine, task, chat, {
    company: () => companyNow(store.sql, task.id, world),
    ...(s.gameEpisodes > 0 ? { seeds: { ...VALIDATION_SEEDS, count: s.gameEpisodes } } : {}),
    gate: s.gate, tolerance: s.gameTolerance,
  });
}

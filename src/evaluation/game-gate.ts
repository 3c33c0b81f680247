/**
 * The gate of a game task (the decision: game-gate-decision.ts). Measured with no knowledge in
 * context, on the validation seeds: the round-start version, the candidate, and the other recently
 * activated versions (up to `history` in all); and, where the task has a world the rounds never
 * train on (`retentionGame`), the candidate and the lineage's root there. A version's statistics
 * never change, so each is played once per process; a version played only for the comparison is
 * unloaded afterwards.
 */
import type { GameSpec } from '../envs/environment.ts';
import type { SeedRange } from '../envs/seed-ranges.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import type { EpisodeStats } from '../simulator/play-episodes.ts';
import type { GameTask } from '../tasks/task.ts';
import { evaluateVersion, type GameEvaluation } from './evaluate.ts';
import { decideGameGate, type PassRate } from './game-gate-decision.ts';
import type { GateContext, GateResult } from './gate.ts';

/** Where the gate finds the versions it compares with (the model registry). */
export interface GateRegistry {
  recentlyActive(limit: number): Promise<{ version: string; path: string }[]>;
  lineageRoot(version: string): Promise<{ version: string; path: string; pruned: boolean } | null>;
}

export interface GameGateOptions {
  seeds: SeedRange;
  gate: boolean;
  tolerance: number;
  /** Recently activated versions the candidate is compared with, the round-start version included (1: that one only). */
  history?: number;
  /** A world the rounds never train on, watched against the lineage's root. */
  retentionGame?: GameSpec;
  registry?: GateRegistry;
}

export class GameGate {
  private readonly evaluated = new Map<string, EpisodeStats>();

  constructor(private readonly engine: ModelEngine, private readonly task: GameTask, private readonly o: GameGateOptions) {}

  async evaluate(ctx: GateContext): Promise<GateResult> {
    const evaluations: GameEvaluation[] = [];
    const loadedHere: string[] = [];
    const run = async (version: string, game: GameSpec, path?: string): Promise<EpisodeStats> => {
      const key = `${game.id}\u0000${version}`;
      let stats = this.evaluated.get(key);
      if (!stats) {
        if (path && version !== ctx.baseVersion && version !== ctx.candidateVersion) {
          await this.engine.load(version, path);
          loadedHere.push(version);
        }
        const r = await evaluateVersion(this.engine, version, {
          game, seeds: this.o.seeds, split: 'validation', maxNewTokens: this.task.responseTokens, roundId: ctx.roundId,
          onProgress: (p) => ctx.onProgress?.({ done: p.episodesDone, of: p.episodes, message: game.id === this.task.game.id ? version : `${version} on ${game.id}` }),
        });
        evaluations.push(r.event);
        this.evaluated.set(key, r.stats);
        stats = r.stats;
      }
      return stats;
    };
    const rate = (version: string, s: EpisodeStats): PassRate => ({ version, passRate: s.passRate, episodes: s.episodes });
    try {
      const before = await run(ctx.baseVersion, this.task.game);
      const after = await run(ctx.candidateVersion, this.task.game);
      const recent: PassRate[] = [rate(ctx.baseVersion, before)];
      const history = this.o.history ?? 1;
      if (history > 1 && this.o.registry) {
        for (const v of await this.o.registry.recentlyActive(history + 1)) {
          if (recent.length >= history) break;
          if (v.version === ctx.baseVersion || v.version === ctx.candidateVersion) continue;
          recent.push(rate(v.version, await run(v.version, this.task.game, v.path)));
        }
      }
      let retention;
      if (this.o.retentionGame && this.o.registry) {
        const root = await this.o.registry.lineageRoot(ctx.baseVersion);
        if (root && !root.pruned) {
          const game = this.o.retentionGame;
          retention = { world: game.id, root: rate(root.version, await run(root.version, game, root.path)), candidate: rate(ctx.candidateVersion, await run(ctx.candidateVersion, game)) };
        }
      }
      const d = decideGameGate({ candidate: rate(ctx.candidateVersion, after), recent, ...(retention ? { retention } : {}) }, this.o.tolerance);
      const reasons = this.o.gate ? d.reasons : [...d.reasons, 'the gate is off'];
      return { passed: !this.o.gate || d.ok, reasons, evaluations, before, after, chat: null };
    } finally {
      for (const v of loadedHere) await this.engine.unload(v).catch(() => {});
    }
  }
}

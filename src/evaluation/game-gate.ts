/**
 * The gate of a game task (the decision: game-gate-decision.ts). Measured with no knowledge in
 * context, on the validation seeds: the round-start version, the candidate, and the other recently
 * activated versions (up to `history` in all); and, where the task has a world the rounds never
 * train on (`retentionGame`), the candidate and the lineage's root there. A version's weights
 * never change, so each is played once per process, but the world it plays may (a rule, a policy):
 * the round-start version is played again every round, and when its figure has moved beyond both
 * figures' 95% intervals, every figure on the task's game is dropped and played again, so that a
 * candidate is never held to a figure of a world that no longer is. A version played only for the
 * comparison is unloaded afterwards.
 */
import type { GameSpec } from '../envs/environment.ts';
import type { SeedRange } from '../envs/seed-ranges.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import type { EpisodeStats } from '../simulator/play-episodes.ts';
import type { GameTask } from '../tasks/task.ts';
import { evaluateVersion, type GameEvaluation } from './evaluate.ts';
import { wilsonInterval } from './confidence.ts';
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
      const worldNote = await this.checkWorld(ctx.baseVersion, run);
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
      const reasons = [...(worldNote ? [worldNote] : []), ...d.reasons, ...(this.o.gate ? [] : ['the gate is off'])];
      return { passed: !this.o.gate || d.ok, reasons, evaluations, before, after, chat: null };
    } finally {
      for (const v of loadedHere) await this.engine.unload(v).catch(() => {});
    }
  }

  /**
   * Plays the round-start version again when it was played before; when its figure moved beyond
   * both 95% intervals, drops every figure on the task's game (they are played again as needed)
   * and says so. Returns that line, or undefined when the world is as it was.
   */
  private async checkWorld(version: string, run: (version: string, game: GameSpec) => Promise<EpisodeStats>): Promise<string | undefined> {
    const game = this.task.game;
    const key = `${game.id}\u0000${version}`;
    const earlier = this.evaluated.get(key);
    if (!earlier) return undefined;
    this.evaluated.delete(key);
    const now = await run(version, game);
    if (!ratesDiffer(earlier, now)) return undefined;
    for (const k of [...this.evaluated.keys()]) if (k.startsWith(`${game.id}\u0000`)) this.evaluated.delete(k);
    this.evaluated.set(key, now);
    return `${game.id} changed: ${version} passes ${pct(now.passRate)} of the validation episodes now, ${pct(earlier.passRate)} when it was first played; every figure on it is measured again`;
  }
}

const pct = (r: number) => `${(100 * r).toFixed(1)}%`;

/**
 * Whether two pass rates differ beyond both 95% Wilson intervals: each outside the other's. (The
 * same version on the same episodes gives the same figure; the margin is for what is not.)
 */
export function ratesDiffer(a: Pick<EpisodeStats, 'passRate' | 'episodes'>, b: Pick<EpisodeStats, 'passRate' | 'episodes'>): boolean {
  const outside = (x: typeof a, of: typeof a) => {
    const w = wilsonInterval(Math.round(of.passRate * of.episodes), of.episodes);
    return x.passRate < w.low || x.passRate > w.high;
  };
  return outside(a, b) && outside(b, a);
}

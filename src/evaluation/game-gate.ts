/**
 * The gate of a game task: both versions play the validation seeds (no knowledge in context), and
 * the candidate passes if its pass rate is at least the round-start version's minus the tolerance.
 * A version's statistics never change, so each is played once per process.
 */
import type { SeedRange } from '../envs/seed-ranges.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import type { EpisodeStats } from '../simulator/play-episodes.ts';
import type { GameTask } from '../tasks/task.ts';
import { evaluateVersion, type GameEvaluation } from './evaluate.ts';
import type { GateContext, GateResult } from './gate.ts';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export class GameGate {
  private readonly evaluated = new Map<string, EpisodeStats>();

  constructor(private readonly engine: ModelEngine, private readonly task: GameTask, private readonly o: { seeds: SeedRange; gate: boolean; tolerance: number }) {}

  async evaluate(ctx: GateContext): Promise<GateResult> {
    const evaluations: GameEvaluation[] = [];
    const run = async (version: string) => {
      const known = this.evaluated.get(version);
      if (known) return known;
      const r = await evaluateVersion(this.engine, version, {
        game: this.task.game, seeds: this.o.seeds, split: 'validation', maxNewTokens: this.task.responseTokens, roundId: ctx.roundId,
        onProgress: (p) => ctx.onProgress?.({ done: p.episodesDone, of: p.episodes, message: version }),
      });
      evaluations.push(r.event);
      this.evaluated.set(version, r.stats);
      return r.stats;
    };
    const before = await run(ctx.baseVersion);
    const after = await run(ctx.candidateVersion);
    const ok = after.passRate >= before.passRate - this.o.tolerance;
    const reason = `validation pass rate ${pct(before.passRate)} -> ${pct(after.passRate)} (${after.episodes} episodes; at least ${pct(Math.max(0, before.passRate - this.o.tolerance))} needed)`;
    return { passed: !this.o.gate || ok, reasons: [this.o.gate ? reason : `${reason}; the gate is off`], evaluations, before, after, chat: null };
  }
}

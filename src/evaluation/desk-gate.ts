/**
 * The gate of the built-in support desk: a chat task's gate (chat-gate.ts: the distillation gap on
 * held-out logs, retention on anchor prompts) and, because this world's truth is known, the
 * world's own check: both versions answer the validation conversations (deployment phrasings, no
 * knowledge in context) and the candidate's fact accuracy may drop at most the tolerance. A
 * version's accuracy is measured once per company state (the policy can drift). That accuracy
 * decides in place of the distillation gap, which is still measured and reported (task-gate.ts
 * builds the chat gate with gapDecides false): measured, a candidate at 82.0% against the
 * round-start version's 61.7% was refused because its gap went from 0.0954 to 0.0975.
 */
import { VALIDATION_SEEDS, type SeedRange } from '../envs/seed-ranges.ts';
import type { Company } from '../envs/support-desk/company.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import type { EpisodeStats } from '../simulator/play-episodes.ts';
import type { ChatTask } from '../tasks/task.ts';
import { evaluateDesk } from './desk-evaluation.ts';
import type { GameEvaluation } from './evaluate.ts';
import type { GateContext, GateResult } from './gate.ts';
import type { RoundGate } from '../rounds/round-runner.ts';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export interface DeskGateOptions {
  /** The company as its customers know it now. */
  company: () => Promise<Company>;
  seeds?: SeedRange;
  gate: boolean;
  tolerance: number;
}

export class DeskGate implements RoundGate {
  private readonly measured = new Map<string, EpisodeStats>();

  constructor(private readonly engine: ModelEngine, private readonly task: ChatTask, private readonly chat: RoundGate, private readonly o: DeskGateOptions) {}

  async evaluate(ctx: GateContext): Promise<GateResult> {
    const chat = await this.chat.evaluate(ctx);
    const company = await this.o.company();
    const seeds = this.o.seeds ?? VALIDATION_SEEDS;
    const evaluations: GameEvaluation[] = [];
    const run = async (version: string): Promise<EpisodeStats> => {
      const key = `${version}\n${JSON.stringify(company.facts)}`;
      const known = this.measured.get(key);
      if (known) return known;
      const r = await evaluateDesk(this.engine, version, { taskId: this.task.id, company, seeds, split: 'validation', maxNewTokens: this.task.responseTokens, roundId: ctx.roundId });
      ctx.onProgress?.({ done: r.stats.episodes, of: seeds.count, message: `${version}: fact accuracy` });
      evaluations.push(r.event);
      this.measured.set(key, r.stats);
      return r.stats;
    };
    const before = await run(ctx.baseVersion);
    const after = await run(ctx.candidateVersion);
    const ok = after.passRate >= before.passRate - this.o.tolerance;
    const reason = `validation fact accuracy ${pct(before.passRate)} -> ${pct(after.passRate)} (${after.episodes} questions; at least ${pct(Math.max(0, before.passRate - this.o.tolerance))} needed)`;
    return {
      ...chat,
      passed: chat.passed && (!this.o.gate || ok),
      reasons: [...chat.reasons, this.o.gate ? reason : `${reason}; the gate is off`],
      evaluations: [...chat.evaluations, ...evaluations],
      before, after,
    };
  }
}

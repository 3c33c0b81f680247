/**
 * The gate of a chat task, which needs no game (docs/chat-learning.md):
 *
 *   - distillation gap on held-out logs: the conversations of the task's held-out split (never
 *     trained or extracted on) give prompts; a version answers each without knowledge, and the
 *     round-start teacher scores the reply with the round's knowledge in its system prompt; the
 *     token-mean reverse KL is the gap. Measured for the round-start version and the candidate with
 *     the same seed and knowledge: a round that consolidated the knowledge lowers it.
 *   - retention on anchor prompts: the candidate's KL from the round-start version on prompts
 *     unrelated to the task; it must stay at or under the task's bound. With `lineageRoot` (the
 *     gate watching what rounds do not train, OELD_GATE_WATCH_UNTRAINED), also the KL from the
 *     lineage's base, under its own bound: small drifts tolerated round after round cannot add up.
 *
 *   - optionally, the team's own evaluator (external-evaluator.ts) judges both versions' replies to
 *     the held-out prompts; the candidate's pass rate may drop at most the tolerance.
 *
 * Each measurement is an EvaluationRecorded event; the candidate passes when the gap did not grow
 * (unless `gapDecides` is false), retention is within its bound, and the evaluator (if any) did not
 * judge it worse.
 */
import { randomUUID } from 'node:crypto';
import type { EventDataMap } from '../events/schemas.ts';
import type { Prompt } from '../model/inference/chat-prompt.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import type { ChatTask } from '../tasks/task.ts';
import type { KlMeasurement } from '../trainer/measure-kl.ts';
import { EVALUATION_SAMPLING } from '../model/inference/sampling.ts';
import { describeEvaluator, runEvaluator } from './external-evaluator.ts';
import type { GateContext, GateResult } from './gate.ts';

export interface ChatGateOptions {
  /** Prompts of the held-out logs (newest first), already cut to the task's gatePrompts. */
  heldOutPrompts: () => Promise<Prompt[]>;
  anchorPrompts: () => Prompt[];
  gate: boolean;
  /** External evaluator: the pass-rate drop from the round-start version it tolerates. */
  tolerance: number;
  temperature: number;
  topK: number;
  seed: number;
  /**
   * Whether the distillation gap refuses a candidate (default true). False where the task's truth
   * is measured directly (the support desk's fact accuracy, desk-gate.ts): the gap is measured
   * against the round's own pool, whose slots can hold wrong values, so a candidate that learned
   * the right ones can score a larger gap; it is then measured and reported, and decides nothing.
   */
  gapDecides?: boolean;
  /** The lineage's base (first version) of a version: retention is also measured against it (absent: only against the round-start version). */
  lineageRoot?: (version: string) => Promise<{ version: string; path: string; pruned: boolean } | null>;
}

const f = (x: number) => x.toFixed(4);

export class ChatGate {
  constructor(private readonly engine: ModelEngine, private readonly task: ChatTask, private readonly o: ChatGateOptions) {}

  async evaluate(ctx: GateContext): Promise<GateResult> {
    const heldOut = await this.o.heldOutPrompts();
    const anchors = this.o.anchorPrompts();
    const measure = (student: string, pairs: { prompt: Prompt; knowledge: string }[], teacher = ctx.baseVersion): Promise<KlMeasurement> => this.engine.measureKl(student, teacher, pairs, {
      maxNewTokens: this.task.responseTokens, temperature: this.o.temperature, topK: this.o.topK, seed: this.o.seed, batchSize: 8,
      knowledgePlacement: this.task.knowledgePlacement, ...(Object.keys(this.task.templateVariables).length ? { templateVariables: this.task.templateVariables } : {}),
    });
    const evaluations: EventDataMap['EvaluationRecorded'][] = [];
    const common = (version: string, prompts: number, m: KlMeasurement) => ({
      evaluationId: randomUUID(), modelVersion: version, taskId: this.task.id, prompts, tokens: m.tokens, meanKl: m.meanKl, roundId: ctx.roundId,
    });
    const reasons: string[] = [];
    let passed = true;
    let gapBefore: number | null = null;
    let gapAfter: number | null = null;
    const evaluator = this.task.evaluator;
    const root = this.o.lineageRoot ? await this.o.lineageRoot(ctx.baseVersion) : null;
    const watchRoot = root !== null && !root.pruned && root.version !== ctx.baseVersion;
    const steps = (heldOut.length > 0 ? 2 : 0) + 1 + (watchRoot ? 1 : 0) + (evaluator && heldOut.length > 0 ? 2 : 0);
    let done = 0;
    const progress = (message: string) => ctx.onProgress?.({ done: ++done, of: steps, message });
    const gapDecides = this.o.gapDecides ?? true;
    const notDeciding = gapDecides ? '' : '; not deciding: the task\'s own accuracy does';
    if (heldOut.length === 0) {
      if (gapDecides) passed = false;
      reasons.push(`no held-out logs of task ${this.task.id} yet (${this.task.heldOutPercent}% of its conversations are held out): the distillation gap cannot be measured${notDeciding}`);
    } else {
      // The pool's texts in turn, the same for both versions: the gap differs only by the student.
      const pairs = heldOut.map((prompt, i) => ({ prompt, knowledge: ctx.knowledgeTexts[i % ctx.knowledgeTexts.length] ?? '' }));
      const before = await measure(ctx.baseVersion, pairs);
      progress(`distillation gap of ${ctx.baseVersion}`);
      const after = await measure(ctx.candidateVersion, pairs);
      progress(`distillation gap of ${ctx.candidateVersion}`);
      gapBefore = before.meanKl;
      gapAfter = after.meanKl;
      const ok = after.meanKl <= before.meanKl;
      for (const [version, m] of [[ctx.baseVersion, before], [ctx.candidateVersion, after]] as const) {
        evaluations.push({ kind: 'distillation-gap', ...common(version, heldOut.length, m), teacherVersion: ctx.baseVersion, knowledgeTexts: Math.max(1, ctx.knowledgeTexts.length) });
      }
      if (!ok && gapDecides) passed = false;
      reasons.push(`distillation gap on ${heldOut.length} held-out prompts ${f(before.meanKl)} -> ${f(after.meanKl)} (${ok ? 'did not grow' : 'grew'}${notDeciding})`);
    }
    const retention = await measure(ctx.candidateVersion, anchors.map((prompt) => ({ prompt, knowledge: '' })));
    progress('retention on anchor prompts');
    evaluations.push({ kind: 'retention', ...common(ctx.candidateVersion, anchors.length, retention), referenceVersion: ctx.baseVersion });
    const retained = retention.meanKl <= this.task.maxRetentionKl;
    if (!retained) passed = false;
    reasons.push(`retention KL on ${anchors.length} anchor prompts ${f(retention.meanKl)} (at most ${this.task.maxRetentionKl})`);
    let baseRetentionKl: number | null = null;
    if (watchRoot) {
      // The base is loaded only for this measurement (the worker holds the versions in use).
      await this.engine.load(root.version, root.path);
      try {
        const fromBase = await measure(ctx.candidateVersion, anchors.map((prompt) => ({ prompt, knowledge: '' })), root.version);
        progress(`retention from the base ${root.version}`);
        evaluations.push({ kind: 'retention', ...common(ctx.candidateVersion, anchors.length, fromBase), referenceVersion: root.version });
        baseRetentionKl = fromBase.meanKl;
      } finally {
        await this.engine.unload(root.version).catch(() => {});
      }
      const ok = baseRetentionKl <= this.task.maxBaseRetentionKl;
      if (!ok) passed = false;
      reasons.push(`retention KL from the base ${root.version} ${f(baseRetentionKl)} (at most ${this.task.maxBaseRetentionKl})`);
    }
    if (evaluator && heldOut.length > 0) {
      const judged = async (version: string) => {
        const replies = await this.engine.complete(version, heldOut, EVALUATION_SAMPLING, this.task.responseTokens, this.o.seed,
          Object.keys(this.task.templateVariables).length ? this.task.templateVariables : undefined);
        const verdicts = await runEvaluator(evaluator, heldOut.map((prompt, i) => ({ prompt, reply: replies[i]!.text })));
        progress(`${describeEvaluator(evaluator)} on ${version}`);
        const passed = verdicts.filter((v) => v.pass).length;
        evaluations.push({
          kind: 'external', evaluationId: randomUUID(), modelVersion: version, taskId: this.task.id, roundId: ctx.roundId,
          evaluator: describeEvaluator(evaluator).slice(0, 2000), prompts: heldOut.length, passed, passRate: passed / heldOut.length,
          failures: verdicts.flatMap((v, i) => (v.pass ? [] : [{ prompt: i, reason: v.reason }])).slice(0, 20),
        });
        return passed / heldOut.length;
      };
      const before = await judged(ctx.baseVersion);
      const after = await judged(ctx.candidateVersion);
      const ok = after >= before - this.o.tolerance;
      if (!ok) passed = false;
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      reasons.push(`${describeEvaluator(evaluator)} passed ${pct(before)} -> ${pct(after)} of ${heldOut.length} held-out replies (at least ${pct(Math.max(0, before - this.o.tolerance))} needed)`);
    }
    if (!this.o.gate) reasons.push('the gate is off');
    return {
      passed: !this.o.gate || passed, reasons, evaluations, before: null, after: null,
      chat: { gapBefore, gapAfter, retentionKl: retention.meanKl, baseRetentionKl, heldOutPrompts: heldOut.length, anchorPrompts: anchors.length },
    };
  }
}

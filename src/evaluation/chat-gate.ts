/**
 * The gate of a chat task, which needs no game (docs/chat-learning.md):
 *
 *   - distillation gap on held-out logs: the conversations of the task's held-out split (never
 *     trained or extracted on) give prompts; a version answers each without knowledge, and the
 *     round-start teacher scores the reply with the round's knowledge in its system prompt; the
 *     token-mean reverse KL is the gap. Measured for the round-start version and the candidate with
 *     the same seed and knowledge: a round that consolidated the knowledge lowers it.
 *   - retention on anchor prompts: the candidate's KL from the round-start version on prompts
 *     unrelated to the task; it must stay at or under the task's bound.
 *
 * Each measurement is an EvaluationRecorded event; the candidate passes when the gap did not grow
 * and retention is within its bound.
 */
import { randomUUID } from 'node:crypto';
import type { EventDataMap } from '../events/schemas.ts';
import type { Prompt } from '../model/chat-prompt.ts';
import type { ModelEngine } from '../model/model-engine.ts';
import type { ChatTask } from '../tasks/task.ts';
import type { KlMeasurement } from '../trainer/measure-kl.ts';
import type { GateContext, GateResult } from './gate.ts';

export interface ChatGateOptions {
  /** Prompts of the held-out logs (newest first), already cut to the task's gatePrompts. */
  heldOutPrompts: () => Promise<Prompt[]>;
  anchorPrompts: () => Prompt[];
  gate: boolean;
  temperature: number;
  topK: number;
  seed: number;
}

const f = (x: number) => x.toFixed(4);

export class ChatGate {
  constructor(private readonly engine: ModelEngine, private readonly task: ChatTask, private readonly o: ChatGateOptions) {}

  async evaluate(ctx: GateContext): Promise<GateResult> {
    const heldOut = await this.o.heldOutPrompts();
    const anchors = this.o.anchorPrompts();
    const measure = (student: string, pairs: { prompt: Prompt; knowledge: string }[]): Promise<KlMeasurement> => this.engine.measureKl(student, ctx.baseVersion, pairs, {
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
    const steps = (heldOut.length > 0 ? 2 : 0) + 1;
    let done = 0;
    const progress = (message: string) => ctx.onProgress?.({ done: ++done, of: steps, message });
    if (heldOut.length === 0) {
      passed = false;
      reasons.push(`no held-out logs of task ${this.task.id} yet (${this.task.heldOutPercent}% of its conversations are held out): the distillation gap cannot be measured`);
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
      if (!ok) passed = false;
      reasons.push(`distillation gap on ${heldOut.length} held-out prompts ${f(before.meanKl)} -> ${f(after.meanKl)} (${ok ? 'did not grow' : 'grew'})`);
    }
    const retention = await measure(ctx.candidateVersion, anchors.map((prompt) => ({ prompt, knowledge: '' })));
    progress('retention on anchor prompts');
    evaluations.push({ kind: 'retention', ...common(ctx.candidateVersion, anchors.length, retention), referenceVersion: ctx.baseVersion });
    const retained = retention.meanKl <= this.task.maxRetentionKl;
    if (!retained) passed = false;
    reasons.push(`retention KL on ${anchors.length} anchor prompts ${f(retention.meanKl)} (at most ${this.task.maxRetentionKl})`);
    if (!this.o.gate) reasons.push('the gate is off');
    return {
      passed: !this.o.gate || passed, reasons, evaluations, before: null, after: null,
      chat: { gapBefore, gapAfter, retentionKl: retention.meanKl, heldOutPrompts: heldOut.length, anchorPrompts: anchors.length },
    };
  }
}

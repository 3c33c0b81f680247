/**
 * One consolidation round (docs/oel-method.md, step 4), on a model in this thread:
 *
 *   - the teacher is a FROZEN copy of the round-start weights, made once; only the student trains;
 *   - each step draws a batch of logged deployment prompts (situations); the student samples a
 *     response to each WITHOUT knowledge (deployment sampling: temperature 0.7, top_p 1);
 *   - the teacher scores exactly those response tokens with a knowledge text (drawn per example
 *     from the pool) inserted before the situation, plus the guess note; its logits are computed
 *     off the gradient tape and are constants;
 *   - loss: per-token reverse KL at temperature 0.7 over the student's top-k (opcd-loss.ts),
 *     token mean; one AdamW step with grad-norm clipping per batch; a checkpoint every few steps.
 *
 * The baseline of the paper, off-policy context distillation, is the `off-policy` method: the
 * teacher samples with knowledge and the student learns forward KL on the teacher's tokens. The
 * `opcd-forward` method keeps the student's samples and adds the forward KL to the reverse KL
 * (distillation-loss.ts): it follows a changed fact, which OPCD alone does not.
 * The knowledge texts may be extracted items or raw trajectories (the caller decides).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KnowledgePlacement } from '../extraction/teacher-prompt.ts';
import { AdamW } from '../model/network/adamw.ts';
import type { Prompt, TemplateVariables } from '../model/inference/chat-prompt.ts';
import { generate } from '../model/inference/generate.ts';
import { DEPLOYMENT_SAMPLING } from '../model/inference/sampling.ts';
import { packBatch, responseLogits } from '../model/inference/score.ts';
import type { Tokenizer } from '../model/formats/tokenizer.ts';
import { trainStep } from '../model/network/train-step.ts';
import type { Transformer } from '../model/network/transformer.ts';
import { distillationLoss } from './distillation-loss.ts';
import { planRound, type PlannedStep } from './round-plan.ts';

export type DistillationMethod = 'opcd' | 'off-policy' | 'opcd-forward';
export const DISTILLATION_METHODS: readonly DistillationMethod[] = ['opcd', 'off-policy', 'opcd-forward'];
/** Whether the student samples the responses (else the teacher does). */
export const studentSamples = (m: DistillationMethod): boolean => m !== 'off-policy';

export interface RoundTrainingOptions {
  method: DistillationMethod;
  steps: number;
  /** Prompts per optimiser step. */
  batchSize: number;
  learningRate: number;
  weightDecay: number;
  clipNorm: number;
  /** Temperature of the KL and of sampling (0.7). */
  temperature: number;
  /** Size of the student's top-k set (256; the full vocabulary when it is smaller). */
  topK: number;
  maxNewTokens: number;
  /** A checkpoint every this many steps (and after the last). */
  checkpointEvery: number;
  seed: number;
  /** Where the teacher reads the knowledge: before the situation in the user message (games) or in the system message (chats). */
  knowledgePlacement: KnowledgePlacement;
  /** Chat-template variables (e.g. enable_thinking), the task's. */
  templateVariables?: TemplateVariables;
  /**
   * Share of each step's examples taken from the job's reading prompts (round-plan.ts), whose
   * teacher is the round-start version reading them as they are: what the round must not change.
   * Absent or 0: none (the plan is the same as without reading prompts).
   */
  readingShare?: number;
  /** The support desk: the reading prompts include extraction prompts over corrected conversations (reading-prompts.ts). */
  readingExtraction?: boolean;
  /**
   * How many times the prompts of a trajectory whose outcome failed appear in the round's prompts
   * (training-prompts.ts): the turns the customers corrected, where the knowledge has the most to
   * teach. Absent or 1: every trajectory once.
   */
  failedRepeat?: number;
}

/** The most times a failed trajectory's prompts may repeat in a round. */
export const MAX_FAILED_REPEAT = 8;

export const DEFAULT_ROUND_TRAINING: RoundTrainingOptions = {
  method: 'opcd', steps: 20, batchSize: 32, learningRate: 3e-4, weightDecay: 0.01, clipNorm: 1.0,
  temperature: 0.7, topK: 256, maxNewTokens: 24, checkpointEvery: 2, seed: 1, knowledgePlacement: 'user',
};

export interface StepReport {
  step: number;
  of: number;
  loss: number;
  gradNorm: number;
  /** Mean response tokens sampled this step. */
  responseTokens: number;
  /** Tokens the student trained on this step (prompts and responses, padding excluded). */
  trainedTokens: number;
  /** Milliseconds spent sampling, scoring with the teacher, and on the student's forward+backward+update. */
  timings: { samplingMs: number; teacherMs: number; backwardMs: number };
}

export interface RoundTrainingReport {
  steps: StepReport[];
  loss: { first: number; last: number; mean: number };
  timings: { samplingMs: number; teacherMs: number; backwardMs: number };
}

export interface RoundTrainingHooks {
  onStep?: (s: StepReport) => void;
  /** Called every checkpointEvery steps and after the last step, with the student's weights. */
  onCheckpoint?: (step: number, student: Transformer) => void;
}

export function checkRoundTrainingOptions(o: RoundTrainingOptions): void {
  const positiveInt = ['steps', 'batchSize', 'topK', 'maxNewTokens', 'checkpointEvery'] as const;
  for (const k of positiveInt) if (!Number.isInteger(o[k]) || o[k] < 1) throw new RangeError(`round training: ${k} must be a positive integer, got ${o[k]}`);
  for (const k of ['learningRate', 'temperature', 'clipNorm'] as const) if (!(o[k] > 0) || !Number.isFinite(o[k])) throw new RangeError(`round training: ${k} must be a positive number, got ${o[k]}`);
  if (!(o.weightDecay >= 0)) throw new RangeError(`round training: weightDecay must be >= 0, got ${o.weightDecay}`);
  if (!DISTILLATION_METHODS.includes(o.method)) throw new RangeError(`round training: method must be one of ${DISTILLATION_METHODS.join(', ')}, got ${JSON.stringify(o.method)}`);
  if (o.knowledgePlacement !== 'user' && o.knowledgePlacement !== 'system') throw new RangeError(`round training: knowledgePlacement must be user or system, got ${JSON.stringify(o.knowledgePlacement)}`);
  if (o.readingShare !== undefined && !(o.readingShare >= 0 && o.readingShare <= 0.9)) throw new RangeError(`round training: readingShare must be from 0 to 0.9, got ${o.readingShare}`);
  if (o.failedRepeat !== undefined && !(Number.isInteger(o.failedRepeat) && o.failedRepeat >= 1 && o.failedRepeat <= MAX_FAILED_REPEAT)) throw new RangeError(`round training: failedRepeat must be an integer from 1 to ${MAX_FAILED_REPEAT}, got ${o.failedRepeat}`);
}


/**
 * Trains `student` in place for one round. `prompts` are logged deployment prompts (a game
 * turn's situation, or a chat's messages before an assistant turn); `knowledgeTexts` is the pool (one drawn per example; an empty pool means the
 * teacher sees no knowledge, which makes the loss zero at the first step). The round's data is
 * planned first (round-plan.ts), then executed (trainPlannedRound).
 */
export function trainRound(
  student: Transformer,
  tokenizer: Tokenizer,
  prompts: readonly Prompt[],
  knowledgeTexts: readonly string[],
  o: RoundTrainingOptions,
  hooks: RoundTrainingHooks = {},
): RoundTrainingReport {
  checkRoundTrainingOptions(o);
  const plan = planRound(tokenizer, student.config.maxPositions, prompts, knowledgeTexts, o);
  return trainPlannedRound(student, { padTokenId: tokenizer.padTokenId ?? 0, eosTokenIds: [...tokenizer.eosTokenIds] }, plan, o, hooks);
}

/** Token ids a round's sampling needs from the tokenizer. */
export interface SpecialTokens { padTokenId: number; eosTokenIds: number[] }

/**
 * Executes a planned round on `student` (in place). With `replay` (per step, per example, the
 * reply tokens), the replies are taken from it instead of sampled: two trainers given the same
 * plan and replay compute the same losses (test/trainer-parity.test.ts).
 */
export function trainPlannedRound(
  student: Transformer,
  special: SpecialTokens,
  plan: readonly PlannedStep[],
  o: RoundTrainingOptions,
  hooks: RoundTrainingHooks = {},
  replay?: readonly (readonly number[][])[],
): RoundTrainingReport {
  checkRoundTrainingOptions(o);
  if (replay && replay.length < plan.length) throw new Error(`replay: ${replay.length} steps of replies for a plan of ${plan.length} steps`);
  const teacher = student.clone({ trainable: false, id: `${student.id}-teacher` });
  const optimizer = new AdamW({ learningRate: o.learningRate, weightDecay: o.weightDecay });
  const pad = special.padTokenId;
  const topK = Math.min(o.topK, student.config.vocabSize);
  const steps: StepReport[] = [];
  try {
    for (const [i, planned] of plan.entries()) {
      const { step } = planned;
      const studentIds = planned.examples.map((e) => e.studentIds);
      const teacherIds = planned.examples.map((e) => e.teacherIds);

      const t0 = performance.now();
      const onPolicy = studentSamples(o.method);
      const responses = replay ? replay[i]!.map((r) => [...r]) : generate(onPolicy ? student : teacher, onPolicy ? studentIds : teacherIds, {
        ...DEPLOYMENT_SAMPLING, temperature: o.temperature, maxNewTokens: o.maxNewTokens, eosTokenIds: special.eosTokenIds, padTokenId: pad, seed: planned.sampleSeed,
      }).tokens;
      const t1 = performance.now();
      // Teacher values: computed off the tape (a plain forward pass), constants for the loss.
      const teacherLogits = tf.tidy(() => responseLogits(teacher, packBatch(teacherIds, responses, pad)));
      const t2 = performance.now();
      const studentBatch = packBatch(studentIds, responses, pad);
      let r;
      try {
        r = trainStep(student, optimizer, () => tf.tidy(() => {
          const logits = responseLogits(student, studentBatch);
          const lossOptions = { temperature: o.temperature, topK };
          return distillationLoss(o.method, logits, teacherLogits as tf.Tensor2D, lossOptions);
        }), o.clipNorm);
      } finally {
        teacherLogits.dispose();
      }
      const t3 = performance.now();
      const report: StepReport = {
        step, of: plan.length, loss: r.loss, gradNorm: r.gradNorm,
        responseTokens: responses.reduce((n, x) => n + x.length, 0) / responses.length,
        trainedTokens: studentBatch.mask.reduce((n, row) => n + row.reduce((a, b) => a + b, 0), 0),
        timings: { samplingMs: t1 - t0, teacherMs: t2 - t1, backwardMs: t3 - t2 },
      };
      steps.push(report);
      hooks.onStep?.(report);
      if (step % o.checkpointEvery === 0 || i === plan.length - 1) hooks.onCheckpoint?.(step, student);
    }
  } finally {
    optimizer.dispose();
    teacher.dispose();
  }
  return summariseSteps(steps);
}

/** A round's report from its steps' reports (first, last and mean loss; summed timings). */
export function summariseSteps(steps: StepReport[]): RoundTrainingReport {
  if (steps.length === 0) throw new Error('round training: no step was trained');
  const losses = steps.map((s) => s.loss);
  const sum = (k: keyof StepReport['timings']) => steps.reduce((n, s) => n + s.timings[k], 0);
  return {
    steps,
    loss: { first: losses[0]!, last: losses[losses.length - 1]!, mean: losses.reduce((a, b) => a + b, 0) / losses.length },
    timings: { samplingMs: sum('samplingMs'), teacherMs: sum('teacherMs'), backwardMs: sum('backwardMs') },
  };
}

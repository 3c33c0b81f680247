/**
 * Pretraining of the base model on the lake-world corpus: cross-entropy on the answer tokens
 * (the prompt is context only), batches of one example kind (similar lengths, little padding),
 * AdamW with warm-up and cosine decay, fresh examples every step (the corpus is generated, so the
 * model never sees an example twice). Periodic held-out checks report answer accuracy per kind.
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseAction } from '../envs/environment.ts';
import { AdamW } from '../model/network/adamw.ts';
import { chatComplete } from '../model/inference/chat-policy.ts';
import { promptIds, userPrompt } from '../model/inference/chat-prompt.ts';
import { factById, statedValues } from '../envs/support-desk/facts.ts';
import { judgeAnswer } from '../envs/support-desk/customer.ts';
import { seededRandom } from '../model/network/rng.ts';
import { packBatch, responseLogits } from '../model/inference/score.ts';
import type { Tokenizer } from '../model/formats/tokenizer.ts';
import { trainStep } from '../model/network/train-step.ts';
import type { Transformer } from '../model/network/transformer.ts';
import { DEFAULT_CORPUS_OPTIONS, DEFAULT_MIX, drawExampleOfKind, drawKind, heldOutExamples, type CorpusMix, type CorpusOptions, type Example } from './corpus.ts';

export interface PretrainOptions {
  seed: number;
  steps: number;
  /** Examples per step at most, ... */
  batchSize: number;
  /** ... and padded tokens per step at most (long extraction prompts make smaller batches). */
  tokensPerBatch: number;
  learningRate: number;
  minLearningRate: number;
  warmupSteps: number;
  mix?: CorpusMix;
  corpus?: CorpusOptions;
  /** Held-out check every this many steps (0: never). */
  evalEvery: number;
  evalExamples: number;
  /** Stop early (after a whole step) once this many seconds have passed. */
  maxSeconds?: number;
  /** Stop after this many steps, the schedule still spanning `steps` (reproduces a run --minutes cut short). */
  stopAfter?: number;
  /** Called after a step once this many seconds have passed since the last call (a long run keeps its weights). */
  checkpointSeconds?: number;
  onCheckpoint?: (step: number) => void;
  log: (record: Record<string, unknown>) => void;
}

export function learningRateAt(step: number, o: Pick<PretrainOptions, 'steps' | 'learningRate' | 'minLearningRate' | 'warmupSteps'>): number {
  if (step < o.warmupSteps) return (o.learningRate * (step + 1)) / o.warmupSteps;
  const p = Math.min(1, (step - o.warmupSteps) / Math.max(1, o.steps - o.warmupSteps));
  return o.minLearningRate + 0.5 * (o.learningRate - o.minLearningRate) * (1 + Math.cos(Math.PI * p));
}

export function encodeExample(tokenizer: Tokenizer, e: Example): { prompt: number[]; response: number[] } {
  return { prompt: promptIds(tokenizer, typeof e.prompt === 'string' ? userPrompt(e.prompt) : e.prompt), response: [...tokenizer.encode(e.response), tokenizer.eosTokenIds[0]!] };
}

/**
 * Whether a greedy answer is right: the same action for play examples, the same text for
 * extraction; a support-desk answer states the value its context gives, or (without one) exactly
 * one of the fact's values.
 */
/** The kinds whose greedy answer must equal the corpus's answer exactly (the longer answers too). */
const EXACT_KINDS: ReadonlySet<Example['kind']> = new Set(['extract', 'desk-extract', 'desk-recall', 'desk-copy', 'copy-repeat', 'desk-extract-copy']);

export function answerCorrect(e: Example, answer: string): boolean {
  if (EXACT_KINDS.has(e.kind)) return answer.trim() === e.response.trim();
  if (e.kind === 'desk-guess' || e.kind === 'desk-informed') {
    const fact = factById(e.check!.factId);
    const stated = statedValues(fact, answer);
    return e.check!.truth === undefined ? stated.length === 1 : judgeAnswer(fact, e.check!.truth, answer).right;
  }
  return parseAction(answer) !== null && parseAction(answer) === parseAction(e.response);
}

export function heldOutAccuracy(model: Transformer, tokenizer: Tokenizer, examples: readonly Example[]): Record<string, number> {
  const byKind = new Map<string, Example[]>();
  for (const e of examples) byKind.set(e.kind, [...(byKind.get(e.kind) ?? []), e]);
  const out: Record<string, number> = {};
  for (const [kind, es] of byKind) {
    const answers = chatComplete(model, tokenizer, es.map((e) => e.prompt), { temperature: 0, topP: 1, topK: 0, maxNewTokens: kind === 'extract' ? 48 : EXACT_KINDS.has(kind as Example['kind']) ? 64 : 24, seed: 1 });
    out[kind] = es.filter((e, i) => answerCorrect(e, answers[i]!.text)).length / es.length;
  }
  return out;
}

export interface PretrainResult { steps: number; seconds: number; finalLoss: number; tokensPerSecond: number }

export function pretrain(model: Transformer, tokenizer: Tokenizer, o: PretrainOptions): PretrainResult {
  const random = seededRandom(o.seed);
  const mix = o.mix ?? DEFAULT_MIX;
  const kinds = (Object.keys(mix) as Example['kind'][]).filter((k) => mix[k] > 0);
  const corpus = o.corpus ?? DEFAULT_CORPUS_OPTIONS;
  const heldOut = heldOutExamples(o.seed, Math.max(1, Math.floor(o.evalExamples / kinds.length)), kinds, corpus);
  const optimizer = new AdamW({ learningRate: o.learningRate, weightDecay: 0.01 });
  const t0 = performance.now();
  let tokens = 0;
  let lossSum = 0;
  let lossCount = 0;
  // The loss of each kind since the last log line: a skill that is not forming shows as a kind whose loss stays flat.
  let byKind = new Map<string, { sum: number; count: number }>();
  let finalLoss = NaN;
  let step = 0;
  let lastCheckpoint = t0;
  try {
    for (; step < Math.min(o.steps, o.stopAfter ?? Infinity); step++) {
      if (o.maxSeconds !== undefined && (performance.now() - t0) / 1000 > o.maxSeconds) break;
      const kind = drawKind(random, mix);
      const encoded: { prompt: number[]; response: number[] }[] = [];
      let longest = 0;
      while (encoded.length < o.batchSize) {
        const e = encodeExample(tokenizer, drawExampleOfKind(random, kind, corpus));
        const length = e.prompt.length + e.response.length;
        if (encoded.length > 0 && Math.max(longest, length) * (encoded.length + 1) > o.tokensPerBatch) break;
        encoded.push(e);
        longest = Math.max(longest, length);
      }
      const batch = packBatch(encoded.map((e) => e.prompt), encoded.map((e) => e.response), tokenizer.padTokenId ?? 0);
      const targets = encoded.flatMap((e) => e.response);
      optimizer.o.learningRate = learningRateAt(step, o);
      const r = trainStep(model, optimizer, () => tf.tidy(() => {
        const logits = responseLogits(model, batch);
        const oneHot = tf.oneHot(tf.tensor1d(targets, 'int32'), model.config.vocabSize);
        return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), oneHot), 1))) as tf.Scalar;
      }), 1.0);
      tokens += batch.T * encoded.length;
      lossSum += r.loss;
      lossCount++;
      const k = byKind.get(kind) ?? { sum: 0, count: 0 };
      byKind.set(kind, { sum: k.sum + r.loss, count: k.count + 1 });
      finalLoss = r.loss;
      if ((step + 1) % 25 === 0 || step + 1 === o.steps) {
        const seconds = (performance.now() - t0) / 1000;
        o.log({ step: step + 1, of: o.steps, loss: +(lossSum / lossCount).toFixed(4), lr: +optimizer.o.learningRate.toExponential(3), gradNorm: +r.gradNorm.toFixed(3), seconds: +seconds.toFixed(1), tokensPerSecond: Math.round(tokens / seconds), lossByKind: Object.fromEntries([...byKind].map(([k, v]) => [k, +(v.sum / v.count).toFixed(3)])) });
        lossSum = 0;
        lossCount = 0;
        byKind = new Map();
      }
      if (o.evalEvery > 0 && (step + 1) % o.evalEvery === 0) o.log({ step: step + 1, heldOutAccuracy: heldOutAccuracy(model, tokenizer, heldOut) });
      if (o.onCheckpoint && o.checkpointSeconds !== undefined && (performance.now() - lastCheckpoint) / 1000 >= o.checkpointSeconds) {
        o.onCheckpoint(step + 1);
        lastCheckpoint = performance.now();
      }
    }
  } finally {
    optimizer.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { steps: step, seconds, finalLoss, tokensPerSecond: tokens / seconds };
}

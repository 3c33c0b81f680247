/**
 * The distillation gap as a measurement (no training): a `student` model samples a reply to each
 * student prompt (temperature as in a round, a fixed seed), a `teacher` model scores exactly those
 * reply tokens behind its own prompt, and the per-token reverse KL over the student's top-k
 * (opcd-loss.ts, the round's loss) is averaged over all reply tokens.
 *
 * The chat gate uses it twice: the gap between a version without knowledge and the round-start
 * teacher with the task's knowledge on held-out logs (a good round lowers it), and retention, the
 * KL between the candidate and the round-start version on anchor prompts (the same prompt for both).
 */
import * as tf from '@tensorflow/tfjs-core';
import { generate } from '../model/inference/generate.ts';
import type { KnowledgePlacement } from '../extraction/teacher-prompt.ts';
import type { Prompt, TemplateVariables } from '../model/inference/chat-prompt.ts';
import { DEPLOYMENT_SAMPLING } from '../model/inference/sampling.ts';
import { packBatch, responseLogits } from '../model/inference/score.ts';
import type { Tokenizer } from '../model/formats/tokenizer.ts';
import type { Transformer } from '../model/network/transformer.ts';
import { fitWithKnowledge } from './fit-situations.ts';
import { opcdLoss } from './opcd-loss.ts';

/** A prompt the student answers without knowledge and the teacher scores with `knowledge` placed in it ('' for none). */
export interface KlPair { prompt: Prompt; knowledge: string }

export interface MeasureKlOptions {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  seed: number;
  batchSize: number;
  knowledgePlacement: KnowledgePlacement;
  templateVariables?: TemplateVariables;
}

export interface KlMeasurement {
  /** Token mean of the per-token KL over every sampled reply token. */
  meanKl: number;
  /** The token-mean KL of each pair's reply (0 for an empty reply). */
  perPair: number[];
  /** Reply tokens the mean is over. */
  tokens: number;
}

export function measureKl(student: Transformer, teacher: Transformer, tokenizer: Tokenizer, pairs: readonly KlPair[], o: MeasureKlOptions): KlMeasurement {
  if (pairs.length === 0) throw new Error('measureKl: no prompts to measure on');
  if (student.config.vocabSize !== teacher.config.vocabSize) throw new Error(`measureKl: the student's vocabulary (${student.config.vocabSize}) differs from the teacher's (${teacher.config.vocabSize})`);
  const pad = tokenizer.padTokenId ?? 0;
  const eos = [...tokenizer.eosTokenIds];
  const topK = Math.min(o.topK, student.config.vocabSize);
  // Long conversations are cut from the left as in a round, the same cut for student and teacher.
  const context = Math.min(student.config.maxPositions, teacher.config.maxPositions);
  const fitted = pairs.map((p) => fitWithKnowledge(tokenizer, context, p.prompt, p.knowledge, o));
  const perPair: number[] = [];
  let weighted = 0;
  let tokens = 0;
  for (let start = 0; start < pairs.length; start += o.batchSize) {
    const batch = pairs.slice(start, start + o.batchSize);
    const studentIds = fitted.slice(start, start + o.batchSize).map((f) => f.studentIds);
    const teacherIds = fitted.slice(start, start + o.batchSize).map((f) => f.teacherIds);
    const replies = generate(student, studentIds, { ...DEPLOYMENT_SAMPLING, temperature: o.temperature, maxNewTokens: o.maxNewTokens, eosTokenIds: eos, padTokenId: pad, seed: o.seed + start }).tokens;
    // One pair at a time through the KL: the loss is a token mean, and each pair's own mean is reported.
    for (let i = 0; i < batch.length; i++) {
      const n = replies[i]!.length;
      if (n === 0) { perPair.push(0); continue; }
      const kl = tf.tidy(() => {
        const s = responseLogits(student, packBatch([studentIds[i]!], [replies[i]!], pad));
        const t = responseLogits(teacher, packBatch([teacherIds[i]!], [replies[i]!], pad));
        return opcdLoss(s, t, { temperature: o.temperature, topK });
      });
      const value = (kl.dataSync() as Float32Array)[0]!;
      kl.dispose();
      perPair.push(value);
      weighted += value * n;
      tokens += n;
    }
  }
  return { meanKl: tokens === 0 ? 0 : weighted / tokens, perPair, tokens };
}

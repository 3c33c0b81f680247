/**
 * Evaluates a base-model folder (src/basemodel/base-model-evaluation.ts) and appends the result to
 * its training-log.jsonl. A folder made by scripts/pretrain-gpu.py carries reference-logits.json:
 * the logits PyTorch computed for a few prompts; they are checked first, so a model this runtime
 * would compute differently is refused before anything else.
 *
 *   node --import tsx scripts/evaluate-base-model.ts --model models/oeld-base [--seed 20261127] [--tolerance 1e-3]
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { evaluateBaseModel } from '../src/basemodel/base-model-evaluation.ts';
import { DEFAULT_CORPUS_OPTIONS, heldOutExamples, type CorpusOptions } from '../src/basemodel/corpus.ts';
import { CORPUS_KINDS } from '../src/basemodel/corpus-file.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { loadModel } from '../src/model/formats/checkpoint.ts';
import { loadTokenizer } from '../src/model/formats/tokenizer.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/oeld-base' },
    seed: { type: 'string', default: '20261127' },
    tolerance: { type: 'string', default: '1e-3' },
    'held-out-per-kind': { type: 'string', default: '64' },
  },
});
const dir = resolve(values.model!);
const log = (record: Record<string, unknown>) => {
  const line = JSON.stringify({ time: new Date().toISOString(), ...record });
  appendFileSync(join(dir, 'training-log.jsonl'), `${line}\n`);
  process.stderr.write(`${line}\n`);
};

const backend = await initBackend({ log: (m) => process.stderr.write(`${m}\n`) });
const { model } = loadModel(dir);
const tokenizer = await loadTokenizer(dir);

const refsFile = join(dir, 'reference-logits.json');
if (existsSync(refsFile)) {
  const { references } = JSON.parse(readFileSync(refsFile, 'utf8')) as { references: { kind: string; ids: number[]; logits: number[] }[] };
  let worst = 0;
  for (const r of references) {
    const logits = tf.tidy(() => tf.slice(model.forward([r.ids]).logits, [0, r.ids.length - 1, 0], [1, 1, -1]).dataSync());
    if (logits.length < r.logits.length) throw new Error(`reference logits: ${r.kind} has ${r.logits.length} logits, the model ${logits.length}`);
    r.logits.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - logits[i]!)); });
  }
  const tolerance = Number(values.tolerance);
  log({ stage: 'referenceLogits', references: references.length, maxAbsDifference: worst, tolerance, backend: backend.name });
  if (!(worst <= tolerance)) throw new Error(`reference logits: this runtime differs from PyTorch by ${worst} (tolerance ${tolerance}); the model is not the one trained`);
}

// The held-out examples are drawn with the options of the model's own corpus (its answer format).
const corpusFile = join(dir, 'pretraining-corpus.json');
const corpusOptions: CorpusOptions = {
  ...DEFAULT_CORPUS_OPTIONS,
  ...(existsSync(corpusFile) ? (JSON.parse(readFileSync(corpusFile, 'utf8')) as { options?: Partial<CorpusOptions> }).options : {}),
};
// Every kind, the support desk's included (a model pretrained without it scores 0 there).
const heldOut = heldOutExamples(Number(values.seed), Number(values['held-out-per-kind']), CORPUS_KINDS, corpusOptions);
const result = await evaluateBaseModel(model, tokenizer, { heldOut });
log({ stage: 'evaluation', seeds: 'test', corpusOptions, ...result });

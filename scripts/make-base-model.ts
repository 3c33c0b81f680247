/**
 * Makes the base model oeld ships (models/oeld-base): trains a byte-level BPE tokenizer on the
 * lake-world corpus, initialises a small Llama-family transformer from a fixed seed, pretrains it
 * (src/basemodel/pretrain.ts), evaluates it on FrozenLake's held-out test seeds, and writes a
 * Hugging Face folder with its training log.
 *
 *   node --import tsx scripts/make-base-model.ts [--out models/oeld-base] [--steps N] [--minutes M] [--seed S]
 *     [--from DIR | --tokenizer-from DIR] [--mix KIND=W,...] [--stop-after N]
 *
 * Deterministic for a given seed and step count on one backend; --minutes stops early (the log
 * says where), and --stop-after with that step count repeats such a run. --from continues a model
 * folder; --tokenizer-from starts fresh weights over a folder's tokenizer (scripts/make-desk-model.sh
 * chains the support-desk model's stages this way).
 */
import { appendFileSync, copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BASE_MODEL_SIZE, trainCorpusTokenizer } from '../src/basemodel/base-model-recipe.ts';
import { evaluateBaseModel } from '../src/basemodel/base-model-evaluation.ts';
import { heldOutExamples } from '../src/basemodel/corpus.ts';
import { CORPUS_ARG_OPTIONS, corpusFromArgs } from '../src/basemodel/corpus-args.ts';
import { smallLlamaConfig } from '../src/basemodel/tokenizer-folder.ts';
import { pretrain } from '../src/basemodel/pretrain.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { loadModel, saveModel } from '../src/model/formats/checkpoint.ts';
import { initialWeights } from '../src/model/network/init-weights.ts';
import { resolveConfig } from '../src/model/network/model-config.ts';
import { loadTokenizer } from '../src/model/formats/tokenizer.ts';
import { Transformer } from '../src/model/network/transformer.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'models/oeld-base' },
    steps: { type: 'string', default: '3000' },
    minutes: { type: 'string', default: '0' },
    /** Stop after this many steps, the learning-rate schedule still spanning --steps (0: run them all). */
    'stop-after': { type: 'string', default: '0' },
    seed: { type: 'string', default: '20261127' },
    'batch-size': { type: 'string', default: '32' },
    /** Padded tokens per step at most (longer examples make smaller batches). */
    'tokens-per-batch': { type: 'string', default: '2560' },
    /** Continue from this model folder (its tokenizer and weights) instead of a fresh start. */
    from: { type: 'string' },
    /** Start from fresh weights (from --seed) over this folder's tokenizer (e.g. a vocabulary grown by extend-vocabulary.ts). */
    'tokenizer-from': { type: 'string' },
    'learning-rate': { type: 'string', default: '0.002' },
    warmup: { type: 'string', default: '100' },
    ...CORPUS_ARG_OPTIONS,
  },
});
const corpus = corpusFromArgs(values);
const out = resolve(values.out!);
const seed = Number(values.seed);
const steps = Number(values.steps);
const minutes = Number(values.minutes);
const stopAfter = Number(values['stop-after']);
const batchSize = Number(values['batch-size']);
const tokensPerBatch = Number(values['tokens-per-batch']);
for (const [name, v] of Object.entries({ seed, steps, minutes, 'stop-after': stopAfter, batchSize, tokensPerBatch })) {
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a non-negative number, got ${v}`);
}

const logFile = `${out}.training-log.jsonl`;
// A continuation (--from) appends to the log of the run it continues (the folder's own log when
// that run was made elsewhere, e.g. by scripts/pretrain-gpu.py).
// A log left by an earlier run to the same --out (one stopped before it saved) is not this run's.
rmSync(logFile, { force: true });
if (values.from && existsSync(join(resolve(values.from), 'training-log.jsonl'))) copyFileSync(join(resolve(values.from), 'training-log.jsonl'), logFile);
const log = (record: Record<string, unknown>) => {
  const line = JSON.stringify({ time: new Date().toISOString(), ...record });
  appendFileSync(logFile, `${line}\n`);
  process.stderr.write(`${line}\n`);
};

const backend = await initBackend({ log: (m) => process.stderr.write(`${m}\n`) });
log({ stage: 'backend', backend: backend.name, detail: backend.detail });

// 1. Tokenizer: BPE over a sample of the corpus, or a given folder's.
const from = values.from ? resolve(values.from) : undefined;
const tokenizerFrom = values['tokenizer-from'] ? resolve(values['tokenizer-from']) : undefined;
if (from && tokenizerFrom) throw new Error('--from and --tokenizer-from exclude each other (--from continues that folder with its own tokenizer)');
const tokDir = from ?? tokenizerFrom ?? `${out}.tokenizer-tmp`;
if (!from && !tokenizerFrom) {
  rmSync(tokDir, { recursive: true, force: true });
  log({ stage: 'tokenizer', ...trainCorpusTokenizer(tokDir, seed) });
}
const tokenizer = await loadTokenizer(tokDir);
log({ stage: 'tokenizer', vocab: tokenizer.vocabSize, from: from ?? tokenizerFrom ?? null });

// 2. Model: a small Llama-family transformer, tied embeddings, vocabulary rounded up to 64.
let rawConfig = smallLlamaConfig(tokenizer.vocabSize, BASE_MODEL_SIZE);
let model: Transformer;
if (from) {
  const loaded = loadModel(from, { trainable: true });
  model = loaded.model;
  rawConfig = loaded.rawConfig;
} else {
  const config = resolveConfig(rawConfig);
  model = Transformer.fromTensors(config, initialWeights(config, seed), { trainable: true });
}
log({ stage: 'model', parameters: model.parameterCount(), config: rawConfig });

// 3. Pretraining.
log({ stage: 'corpus', mix: corpus.mix, options: corpus.options });
const result = pretrain(model, tokenizer, {
  mix: corpus.mix, corpus: corpus.options,
  seed: from ? seed + 1 : seed, steps, batchSize, tokensPerBatch, learningRate: Number(values['learning-rate']), minLearningRate: 1e-4, warmupSteps: Number(values.warmup),
  evalEvery: 250, evalExamples: 128, ...(minutes > 0 ? { maxSeconds: minutes * 60 } : {}), ...(stopAfter > 0 ? { stopAfter } : {}),
  log: (r) => log({ stage: 'pretrain', ...r }),
  // Every 10 minutes the weights so far go to <out>.partial (a loadable folder): a run cut short keeps them.
  checkpointSeconds: 600,
  onCheckpoint: (at) => {
    const partial = `${out}.partial`;
    rmSync(partial, { recursive: true, force: true });
    saveModel(model, rawConfig, partial, tokDir);
    log({ stage: 'checkpoint', step: at, dir: partial });
  },
});
rmSync(`${out}.partial`, { recursive: true, force: true });
log({ stage: 'pretrained', ...result });

// 4. Evaluation: held-out answers, FrozenLake's test seeds (no knowledge; the right knowledge in
// context) and a familiar world (the out-of-distribution check of the loop).
const kinds = (Object.keys(corpus.mix) as (keyof typeof corpus.mix)[]).filter((k) => corpus.mix[k] > 0);
log({ stage: 'evaluation', seeds: 'test', ...(await evaluateBaseModel(model, tokenizer, { heldOut: heldOutExamples(seed, 32, kinds, corpus.options) })) });

// 5. The Hugging Face folder.
const staging = `${out}.new`;
rmSync(staging, { recursive: true, force: true });
const saved = saveModel(model, rawConfig, staging, tokDir);
if (!from && !tokenizerFrom) rmSync(tokDir, { recursive: true, force: true });
rmSync(out, { recursive: true, force: true });
renameSync(staging, out);
copyFileSync(logFile, join(out, 'training-log.jsonl'));
// A folder pretrained elsewhere keeps the description of the corpus it was pretrained on.
if (from && existsSync(join(from, 'pretraining-corpus.json'))) copyFileSync(join(from, 'pretraining-corpus.json'), join(out, 'pretraining-corpus.json'));
log({ stage: 'saved', dir: out, sha256: saved.sha256, files: saved.files });

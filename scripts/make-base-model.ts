/**
 * Makes the base model oeld ships (models/oeld-base): trains a byte-level BPE tokenizer on the
 * lake-world corpus, initialises a small Llama-family transformer from a fixed seed, pretrains it
 * (src/basemodel/pretrain.ts), evaluates it on FrozenLake's held-out test seeds, and writes a
 * Hugging Face folder with its training log.
 *
 *   node --import tsx scripts/make-base-model.ts [--out models/oeld-base] [--steps N] [--minutes M] [--seed S]
 *
 * Deterministic for a given seed and step count on one backend; --minutes stops early (the log
 * says where).
 */
import { appendFileSync, copyFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SPECIAL_TOKENS, trainBpe } from '../src/basemodel/bpe-trainer.ts';
import { smallLlamaConfig, writeTokenizerFolder } from '../src/basemodel/tokenizer-folder.ts';
import { drawExample, FAMILIAR_WORLDS } from '../src/basemodel/corpus.ts';
import { goalItem, holeItem, renderItems } from '../src/basemodel/experience-items.ts';
import { pretrain } from '../src/basemodel/pretrain.ts';
import { frozenLakeSpec } from '../src/envs/frozenlake.ts';
import { lakeVariantSpec } from '../src/envs/lake-world.ts';
import { seedsOf, TEST_SEEDS } from '../src/envs/seed-ranges.ts';
import { initBackend } from '../src/model/backend.ts';
import { loadModel, saveModel } from '../src/model/checkpoint.ts';
import { chatComplete } from '../src/model/chat-policy.ts';
import { initialWeights } from '../src/model/init-weights.ts';
import { resolveConfig } from '../src/model/model-config.ts';
import { seededRandom } from '../src/model/rng.ts';
import { EVALUATION_SAMPLING } from '../src/model/sampling.ts';
import { loadTokenizer } from '../src/model/tokenizer.ts';
import { Transformer } from '../src/model/transformer.ts';
import { episodeStats, playEpisodes, type PolicyFn } from '../src/simulator/play-episodes.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'models/oeld-base' },
    steps: { type: 'string', default: '3000' },
    minutes: { type: 'string', default: '0' },
    seed: { type: 'string', default: '20261127' },
    'batch-size': { type: 'string', default: '32' },
    /** Continue from this model folder (its tokenizer and weights) instead of a fresh start. */
    from: { type: 'string' },
    'learning-rate': { type: 'string', default: '0.002' },
    warmup: { type: 'string', default: '100' },
  },
});
const out = resolve(values.out!);
const seed = Number(values.seed);
const steps = Number(values.steps);
const minutes = Number(values.minutes);
const batchSize = Number(values['batch-size']);
for (const [name, v] of Object.entries({ seed, steps, minutes, batchSize })) {
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a non-negative number, got ${v}`);
}

const logFile = `${out}.training-log.jsonl`;
// A continuation (--from) appends to the log of the run it continues.
if (!values.from) rmSync(logFile, { force: true });
const log = (record: Record<string, unknown>) => {
  const line = JSON.stringify({ time: new Date().toISOString(), ...record });
  appendFileSync(logFile, `${line}\n`);
  process.stderr.write(`${line}\n`);
};

const backend = await initBackend({ log: (m) => process.stderr.write(`${m}\n`) });
log({ stage: 'backend', backend: backend.name, detail: backend.detail });

// 1. Tokenizer: BPE over a sample of the corpus.
const from = values.from ? resolve(values.from) : undefined;
const tokDir = from ?? `${out}.tokenizer-tmp`;
if (!from) {
  rmSync(tokDir, { recursive: true, force: true });
  const sampleRandom = seededRandom(seed ^ 0xb9e);
  const sample = Array.from({ length: 20_000 }, () => drawExample(sampleRandom));
  const bpe = trainBpe(sample.flatMap((e) => [e.prompt, e.response]), 2048, [SPECIAL_TOKENS.pad, SPECIAL_TOKENS.eos, SPECIAL_TOKENS.user, SPECIAL_TOKENS.assistant]);
  writeTokenizerFolder(tokDir, bpe);
  log({ stage: 'tokenizer', merges: bpe.merges.length });
}
const tokenizer = await loadTokenizer(tokDir);
log({ stage: 'tokenizer', vocab: tokenizer.vocabSize, from: from ?? null });

// 2. Model: a small Llama-family transformer, tied embeddings, vocabulary rounded up to 64.
let rawConfig = smallLlamaConfig(tokenizer.vocabSize, { hidden: 128, intermediate: 384, layers: 4, heads: 4 });
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
const result = pretrain(model, tokenizer, {
  seed: from ? seed + 1 : seed, steps, batchSize, tokensPerBatch: 2560, learningRate: Number(values['learning-rate']), minLearningRate: 1e-4, warmupSteps: Number(values.warmup),
  evalEvery: 250, evalExamples: 128, ...(minutes > 0 ? { maxSeconds: minutes * 60 } : {}),
  log: (r) => log({ stage: 'pretrain', ...r }),
});
log({ stage: 'pretrained', ...result });

// 4. Evaluation on FrozenLake's held-out test seeds (no knowledge; the right knowledge in
// context) and on a familiar world (the out-of-distribution check of the loop).
const policy: PolicyFn = async (prompts, s) => chatComplete(model, tokenizer, prompts, { ...EVALUATION_SAMPLING, maxNewTokens: 24, seed: s });
const seeds = seedsOf(TEST_SEEDS);
const knowledge = renderItems([holeItem('H'), goalItem('G')]);
const evals = {
  frozenlake: episodeStats(await playEpisodes(frozenLakeSpec(), seeds, policy)),
  frozenlakeWithKnowledge: episodeStats(await playEpisodes(frozenLakeSpec(), seeds, policy, { knowledgeText: knowledge })),
  familiarWorld: episodeStats(await playEpisodes(lakeVariantSpec('lake-XO', FAMILIAR_WORLDS[0]!), seeds, policy)),
};
log({ stage: 'evaluation', seeds: 'test', ...evals });

// 5. The Hugging Face folder.
const staging = `${out}.new`;
rmSync(staging, { recursive: true, force: true });
const saved = saveModel(model, rawConfig, staging, tokDir);
if (!from) rmSync(tokDir, { recursive: true, force: true });
rmSync(out, { recursive: true, force: true });
renameSync(staging, out);
copyFileSync(logFile, join(out, 'training-log.jsonl'));
log({ stage: 'saved', dir: out, sha256: saved.sha256, files: saved.files });

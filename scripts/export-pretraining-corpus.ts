/**
 * Exports the base model's pretraining corpus, tokenised, for scripts/pretrain-gpu.py (a machine
 * with a GPU and PyTorch but no Node.js): trains the tokenizer from the seed, writes it with the
 * model's config.json, then draws and encodes the examples (src/basemodel/corpus-file.ts has the
 * format).
 *
 *   node --import tsx scripts/export-pretraining-corpus.ts --out .scratch/corpus [--examples 1600000] [--seed 20261127]
 *     [--mix familiar=0.05,guess=0.15,informed=0.6,extract=0.2] [--extraction-random-moves 1]
 *     [--state-positions true|false] [--balanced-counts true|false]   (defaults: the shipped recipe)
 *     [--tokenizer lake|grown|words]   (lake: the shipped model's; grown: the lake tokenizer grown for
 *                                       English, as models/oeld-desk has it (vocabulary-extension.ts); words:
 *                                       merges that never span words (word-tokenizer.ts))
 *
 * About 4,000 examples/s on one core; 1.6 M examples (the shipped model's corpus) are 43 MB.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import { once } from 'node:events';
import { BASE_MODEL_SIZE, trainCorpusTokenizer } from '../src/basemodel/base-model-recipe.ts';
import { drawExample } from '../src/basemodel/corpus.ts';
import { CORPUS_ARG_OPTIONS, corpusFromArgs } from '../src/basemodel/corpus-args.ts';
import { CORPUS_KINDS, packCorpus, type EncodedExample } from '../src/basemodel/corpus-file.ts';
import { smallLlamaConfig } from '../src/basemodel/tokenizer-folder.ts';
import { encodeExample } from '../src/basemodel/pretrain.ts';
import { DESK_EXTENSION, extendTokenizer } from '../src/basemodel/vocabulary-extension.ts';
import { writeWordTokenizer } from '../src/basemodel/word-tokenizer.ts';
import { seededRandom } from '../src/model/network/rng.ts';
import { loadTokenizer } from '../src/model/formats/tokenizer.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: '.scratch/corpus' },
    examples: { type: 'string', default: '1600000' },
    seed: { type: 'string', default: '20261127' },
    /** Which tokenizer encodes the corpus (see above). */
    tokenizer: { type: 'string', default: 'lake' },
    ...CORPUS_ARG_OPTIONS,
  },
});
const { mix, options } = corpusFromArgs(values);
const out = resolve(values.out!);
const count = Number(values.examples);
const seed = Number(values.seed);
if (!Number.isInteger(count) || count <= 0) throw new Error(`--examples must be a positive integer, got ${values.examples}`);
if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const t0 = performance.now();
const kind = values.tokenizer;
if (kind !== 'lake' && kind !== 'words' && kind !== 'grown') throw new Error(`--tokenizer must be lake, words or grown, got "${kind}"`);
let merges: number;
if (kind === 'words') {
  ({ merges } = writeWordTokenizer(out));
} else {
  ({ merges } = trainCorpusTokenizer(out, seed));
  if (kind === 'grown') {
    const lake = `${out}.lake-tokenizer`;
    rmSync(lake, { recursive: true, force: true });
    renameSync(out, lake);
    mkdirSync(out, { recursive: true });
    merges = (await extendTokenizer(lake, out, DESK_EXTENSION)).wide.merges.length;
    rmSync(lake, { recursive: true, force: true });
  }
}
const tokenizer = await loadTokenizer(out);
const config = smallLlamaConfig(tokenizer.vocabSize, BASE_MODEL_SIZE);
writeFileSync(join(out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
process.stderr.write(`tokenizer: ${merges} merges, vocabulary ${tokenizer.vocabSize} (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);

async function gzipTo(path: string) {
  const gz = createGzip({ level: 6 });
  const file = createWriteStream(path);
  gz.pipe(file);
  return {
    async write(bytes: Uint8Array) { if (!gz.write(bytes)) await once(gz, 'drain'); },
    async close() { gz.end(); await once(file, 'close'); },
  };
}
const tokensOut = await gzipTo(join(out, 'tokens.u16.gz'));
const indexOut = await gzipTo(join(out, 'index.u32.gz'));

// The corpus proper uses its own stream of the seed (the tokenizer's sample is another).
const random = seededRandom(seed);
const perKind = Object.fromEntries(CORPUS_KINDS.map((k) => [k, 0]));
let offset = 0;
let totalTokens = 0;
const chunk = 20_000;
for (let done = 0; done < count; done += chunk) {
  const encoded: EncodedExample[] = [];
  for (let i = done; i < Math.min(count, done + chunk); i++) {
    const e = drawExample(random, mix, options);
    encoded.push({ kind: e.kind, ...encodeExample(tokenizer, e) });
    perKind[e.kind]!++;
  }
  const { tokens, index } = packCorpus(encoded);
  for (let i = 0; i < index.length; i += 4) index[i]! += offset;
  offset += tokens.length;
  totalTokens += tokens.length;
  await tokensOut.write(new Uint8Array(tokens.buffer));
  await indexOut.write(new Uint8Array(index.buffer));
  process.stderr.write(`\rexamples ${Math.min(count, done + chunk)}/${count}, ${totalTokens} tokens, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
await tokensOut.close();
await indexOut.close();
process.stderr.write('\n');
if (offset > 0xffffffff) throw new Error(`corpus: ${offset} tokens overflow the uint32 offsets; export fewer examples`);

const sha = (f: string) => createHash('sha256').update(readFileSync(join(out, f))).digest('hex');
const meta = { seed, mix, options, tokenizer: kind, examples: count, tokens: totalTokens, kinds: CORPUS_KINDS, perKind, vocabSize: tokenizer.vocabSize, sha256: { 'tokens.u16.gz': sha('tokens.u16.gz'), 'index.u32.gz': sha('index.u32.gz') } };
writeFileSync(join(out, 'corpus.json'), `${JSON.stringify(meta, null, 2)}\n`);
process.stderr.write(`${JSON.stringify(meta)}\n`);

/**
 * Trains a word-split tokenizer for a model of both built-in tasks (src/basemodel/word-tokenizer.ts)
 * and writes its folder; scripts/make-base-model.ts --tokenizer-from starts fresh weights over it.
 *
 *   node --import tsx scripts/make-word-tokenizer.ts --out .scratch/words [--vocab 2048 --examples 12000 --seed 20261207]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DESK_WORD_TOKENIZER, writeWordTokenizer } from '../src/basemodel/word-tokenizer.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    vocab: { type: 'string', default: String(DESK_WORD_TOKENIZER.vocab) },
    examples: { type: 'string', default: String(DESK_WORD_TOKENIZER.examples) },
    seed: { type: 'string', default: String(DESK_WORD_TOKENIZER.seed) },
  },
});
if (!values.out) throw new Error('--out is required');
const o = { vocab: Number(values.vocab), examples: Number(values.examples), seed: Number(values.seed) };
for (const [k, v] of Object.entries(o)) if (!Number.isInteger(v) || v <= 0) throw new Error(`--${k} must be a positive whole number, got ${values[k as keyof typeof values]}`);
const t0 = Date.now();
const result = writeWordTokenizer(resolve(values.out), o);
console.log(JSON.stringify({ time: new Date().toISOString(), stage: 'word-tokenizer', options: o, ...result, seconds: Math.round((Date.now() - t0) / 1000) }));

/**
 * Grows a base model's vocabulary (src/basemodel/vocabulary-extension.ts) and writes a loadable
 * model folder; scripts/make-base-model.ts --from continues training it.
 *
 *   node --import tsx scripts/extend-vocabulary.ts --from models/oeld-base --out .scratch/wide [--vocab 2048 --examples 8000 --seed 20261206 --merges words|any]
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DESK_EXTENSION, extendEmbedding, extendTokenizer, type ExtensionMerges } from '../src/basemodel/vocabulary-extension.ts';
import { loadCheckpoint, saveSafetensorsFile } from '../src/model/formats/safetensors.ts';

const { values } = parseArgs({
  options: {
    from: { type: 'string', default: 'models/oeld-base' },
    out: { type: 'string' },
    vocab: { type: 'string', default: String(DESK_EXTENSION.vocab) },
    examples: { type: 'string', default: String(DESK_EXTENSION.examples) },
    seed: { type: 'string', default: String(DESK_EXTENSION.seed) },
    merges: { type: 'string', default: DESK_EXTENSION.merges },
  },
});
if (!values.out) throw new Error('--out is required');
const from = resolve(values.from!);
const out = resolve(values.out);
const sizes = { vocab: Number(values.vocab), examples: Number(values.examples), seed: Number(values.seed) };
for (const [k, v] of Object.entries(sizes)) if (!Number.isInteger(v) || v <= 0) throw new Error(`--${k} must be a positive whole number, got ${v}`);
if (values.merges !== 'words' && values.merges !== 'any') throw new Error(`--merges must be words or any, got "${values.merges}"`);
const o = { ...sizes, merges: values.merges as ExtensionMerges };

rmSync(out, { recursive: true, force: true });
const { base, wide, old, grown } = await extendTokenizer(from, out, o);
const config = JSON.parse(readFileSync(join(from, 'config.json'), 'utf8')) as Record<string, unknown>;
const { tensors } = loadCheckpoint(from);
const name = 'model.embed_tokens.weight';
const embed = tensors.get(name);
if (!embed) throw new Error(`${from}: no ${name}`);
if (tensors.has('lm_head.weight')) throw new Error(`${from}: an untied output layer; only tied embeddings are extended`);
tensors.set(name, extendEmbedding(embed, o.vocab, base.vocab.size, wide.vocab.size - 1, old, grown));
saveSafetensorsFile(join(out, 'model.safetensors'), tensors, { format: 'pt' });
writeFileSync(join(out, 'config.json'), `${JSON.stringify({ ...config, vocab_size: o.vocab }, null, 2)}\n`);
for (const f of ['pretraining-corpus.json', 'training-log.jsonl']) {
  try { writeFileSync(join(out, f), readFileSync(join(from, f))); } catch { /* a folder without them */ }
}
const line = JSON.stringify({ time: new Date().toISOString(), stage: 'extend-vocabulary', from, options: o, vocab: { before: base.vocab.size, after: wide.vocab.size } });
writeFileSync(join(out, 'training-log.jsonl'), `${line}\n`, { flag: 'a' });
console.log(line);

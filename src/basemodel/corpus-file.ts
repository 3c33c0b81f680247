/**
 * The exported pretraining corpus (scripts/export-pretraining-corpus.ts writes it,
 * scripts/pretrain-gpu.py reads it): tokenised examples in two gzip files, so that a machine
 * without Node.js can train on exactly the examples this repository generates.
 *
 *   tokens.u16.gz  every example's prompt ids then answer ids (eos included), little-endian uint16
 *   index.u32.gz   four little-endian uint32 per example: offset (in tokens), prompt length,
 *                  answer length, kind (index into CORPUS_KINDS)
 *   corpus.json    what made it: seed, example count, kinds, per-kind counts, sha256 of the files
 */
import type { Example } from './corpus.ts';

export const CORPUS_KINDS: readonly Example['kind'][] = ['familiar', 'guess', 'informed', 'extract', 'desk-guess', 'desk-informed', 'desk-extract', 'desk-recall', 'desk-copy', 'copy-repeat', 'desk-extract-copy'];

export interface EncodedExample { kind: Example['kind']; prompt: readonly number[]; response: readonly number[] }

/** Packs encoded examples into the two arrays of the format (before compression). */
export function packCorpus(examples: readonly EncodedExample[]): { tokens: Uint16Array; index: Uint32Array } {
  const total = examples.reduce((s, e) => s + e.prompt.length + e.response.length, 0);
  const tokens = new Uint16Array(total);
  const index = new Uint32Array(examples.length * 4);
  let offset = 0;
  examples.forEach((e, i) => {
    for (const id of [...e.prompt, ...e.response]) {
      if (!Number.isInteger(id) || id < 0 || id > 0xffff) throw new RangeError(`corpus: token id ${id} does not fit in uint16 (example ${i})`);
    }
    tokens.set(e.prompt, offset);
    tokens.set(e.response, offset + e.prompt.length);
    index.set([offset, e.prompt.length, e.response.length, CORPUS_KINDS.indexOf(e.kind)], i * 4);
    offset += e.prompt.length + e.response.length;
  });
  return { tokens, index };
}

/** The inverse of packCorpus (tests; the Python trainer has its own reader). */
export function unpackCorpus(tokens: Uint16Array, index: Uint32Array): EncodedExample[] {
  if (index.length % 4 !== 0) throw new RangeError(`corpus: index length ${index.length} is not a multiple of 4`);
  const out: EncodedExample[] = [];
  for (let i = 0; i < index.length; i += 4) {
    const [offset, p, r, k] = [index[i]!, index[i + 1]!, index[i + 2]!, index[i + 3]!];
    if (offset + p + r > tokens.length) throw new RangeError(`corpus: example ${i / 4} runs past the tokens (${offset + p + r} > ${tokens.length})`);
    const kind = CORPUS_KINDS[k];
    if (kind === undefined) throw new RangeError(`corpus: example ${i / 4} has kind index ${k}`);
    out.push({ kind, prompt: [...tokens.subarray(offset, offset + p)], response: [...tokens.subarray(offset + p, offset + p + r)] });
  }
  return out;
}

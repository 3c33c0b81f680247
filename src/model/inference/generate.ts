import { seededRandom } from '../network/rng.ts';
import { sampleToken, type SamplingOptions } from './sampling.ts';
import { disposeCache, type KVCache, type Transformer } from '../network/transformer.ts';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  eosTokenIds: number[];
  seed: number;
  /** Reuse keys/values of earlier positions (default). Without it every step recomputes the whole sequence. */
  useCache?: boolean;
  padTokenId?: number;
}

export interface Generation {
  /** New tokens per prompt, up to and including the first EOS. */
  tokens: number[][];
  /** Log-probability of each new token under softmax(logits / temperature). */
  logprobs: number[][];
  finished: boolean[];
}

/**
 * Batched sampling. Prompts are left-padded to one length (padding masked out, positions counted
 * from each prompt's first real token), so every row decodes one token per step.
 */
export function generate(model: Transformer, prompts: number[][], o: GenerateOptions): Generation {
  if (prompts.length === 0 || prompts.some((p) => p.length === 0)) throw new Error('generate: every prompt needs at least one token');
  const random = seededRandom(o.seed);
  const pad = o.padTokenId ?? 0;
  const L = Math.max(...prompts.map((p) => p.length));
  const rows = prompts.map((p) => [...Array(L - p.length).fill(pad), ...p]);
  const mask = prompts.map((p) => [...Array(L - p.length).fill(0), ...Array(p.length).fill(1)]);
  const nextPos = prompts.map((p) => p.length);
  const out: Generation = { tokens: prompts.map(() => []), logprobs: prompts.map(() => []), finished: prompts.map(() => false) };
  const eos = new Set(o.eosTokenIds);
  let cache: KVCache | undefined;
  let input = rows;
  let positions = mask.map((m) => { let c = -1; return m.map((x) => (x ? ++c : 0)); });
  try {
    for (let step = 0; step < o.maxNewTokens && out.finished.some((f) => !f); step++) {
      const useCache = o.useCache ?? true;
      // Only each row's last position is sampled from: the other rows' logits are not computed.
      const T = input[0]!.length;
      const lastRows = input.map((_, b) => b * T + T - 1);
      const { logits, cache: next } = model.forward(input, { positions, attentionMask: mask, cache: useCache ? cache : undefined, returnCache: useCache, outputRows: lastRows });
      if (useCache) { disposeCache(cache, next); cache = next; }
      const V = logits.shape[2];
      const data = logits.dataSync(); // [1, batch, V]
      logits.dispose();
      const chosen: number[] = [];
      prompts.forEach((_, b) => {
        if (out.finished[b]) { chosen.push(pad); return; }
        const { token, logprob } = sampleToken(data.subarray(b * V, (b + 1) * V), o, random);
        out.tokens[b]!.push(token);
        out.logprobs[b]!.push(logprob);
        if (eos.has(token)) out.finished[b] = true;
        chosen.push(token);
      });
      for (let b = 0; b < rows.length; b++) { rows[b]!.push(chosen[b]!); mask[b]!.push(out.finished[b] && !eos.has(chosen[b]!) ? 0 : 1); }
      if (useCache) {
        input = chosen.map((t) => [t]);
        positions = nextPos.map((p) => [p]);
      } else {
        input = rows;
        positions = mask.map((m) => { let c = -1; return m.map((x) => (x ? ++c : 0)); });
      }
      for (let b = 0; b < nextPos.length; b++) nextPos[b]!++;
    }
  } finally {
    disposeCache(cache);
  }
  return out;
}

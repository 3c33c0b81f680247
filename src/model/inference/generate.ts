import { seededRandom } from '../network/rng.ts';
import { sampleToken, type SamplingOptions } from './sampling.ts';
import { disposeCache, type KVCache, type Transformer } from '../network/transformer.ts';
import { NativeDecoder } from './native-decoder.ts';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  eosTokenIds: number[];
  seed: number;
  /** Reuse keys/values of earlier positions (default). Without it every step recomputes the whole sequence. */
  useCache?: boolean;
  padTokenId?: number;
  /** Per prompt: its own sampling settings and length (a served batch mixes requests); absent: the batch's. */
  rows?: { sampling?: SamplingOptions; maxNewTokens?: number }[];
  /** Called with each new token of a row; returning true ends that row there (a stop sequence). */
  onToken?: (row: number, token: number) => boolean | void;
  /** Called after each step's tokens (a served batch streams them out here). */
  onStepEnd?: () => void;
}

export interface Generation {
  /** New tokens per prompt, up to and including the first EOS. */
  tokens: number[][];
  /** Log-probability of each new token under softmax(logits / temperature). */
  logprobs: number[][];
  /** Whether each row ended (by EOS, its length or onToken) within the steps taken. */
  finished: boolean[];
  /** Why each row ended: its EOS token, its length, or onToken (a stop sequence). */
  endedBy: ('eos' | 'length' | 'stop')[];
}

/**
 * Batched sampling. Prompts are left-padded to one length (padding masked out, positions counted
 * from each prompt's first real token), so every row decodes one token per step.
 */
export function generate(model: Transformer, prompts: number[][], o: GenerateOptions): Generation {
  if (prompts.length === 0 || prompts.some((p) => p.length === 0)) throw new Error('generate: every prompt needs at least one token');
  const native = (o.useCache ?? true) ? NativeDecoder.for(model) : null;
  if (native) return generateNative(native, prompts, o);
  const pad = o.padTokenId ?? 0;
  const L = Math.max(...prompts.map((p) => p.length));
  const rows = prompts.map((p) => [...Array(L - p.length).fill(pad), ...p]);
  const mask = prompts.map((p) => [...Array(L - p.length).fill(0), ...Array(p.length).fill(1)]);
  const nextPos = prompts.map((p) => p.length);
  const { out, maxSteps, take } = rowSampler(prompts, o);
  /** Rows that ended at this step: their last token is real (attended to); rows that ended before get padding. */
  const endedNow = prompts.map(() => false);
  let cache: KVCache | undefined;
  let input = rows;
  let positions = mask.map((m) => { let c = -1; return m.map((x) => (x ? ++c : 0)); });
  try {
    for (let step = 0; step < maxSteps && out.finished.some((f) => !f); step++) {
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
        const { token, ended } = take(b, data.subarray(b * V, (b + 1) * V));
        endedNow[b] = ended !== null;
        chosen.push(token);
      });
      o.onStepEnd?.();
      for (let b = 0; b < rows.length; b++) { rows[b]!.push(chosen[b]!); mask[b]!.push(out.finished[b] && !endedNow[b] ? 0 : 1); endedNow[b] = false; }
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

/**
 * generate() on the native decoder: each prompt is its own sequence (no padding), prefilled in
 * one call; then every step sends one token per unfinished row. Sampling, stopping and the
 * random stream are generate()'s, so both paths pick the same tokens from the same logits.
 */
/**
 * What both decoding paths share: each row's output, its own sampling and length, and the step
 * that samples a row's next token from its logits and says whether (and how) that ended the row:
 * its EOS, onToken (a stop sequence), or its length. Rows that may write nothing are done at once.
 */
function rowSampler(prompts: number[][], o: GenerateOptions) {
  const random = seededRandom(o.seed);
  const out: Generation = { tokens: prompts.map(() => []), logprobs: prompts.map(() => []), finished: prompts.map(() => false), endedBy: prompts.map(() => 'length' as const) };
  const rowMax = prompts.map((_, b) => o.rows?.[b]?.maxNewTokens ?? o.maxNewTokens);
  const rowSampling = prompts.map((_, b) => o.rows?.[b]?.sampling ?? o);
  rowMax.forEach((m, b) => { if (m <= 0) out.finished[b] = true; });
  const eos = new Set(o.eosTokenIds);
  const take = (b: number, logits: ArrayLike<number>): { token: number; ended: Generation['endedBy'][number] | null } => {
    const { token, logprob } = sampleToken(logits, rowSampling[b]!, random);
    out.tokens[b]!.push(token);
    out.logprobs[b]!.push(logprob);
    const ended = eos.has(token) ? 'eos' : o.onToken?.(b, token) === true ? 'stop' : out.tokens[b]!.length >= rowMax[b]! ? 'length' : null;
    if (ended) { out.finished[b] = true; out.endedBy[b] = ended; }
    return { token, ended };
  };
  return { out, rowMax, maxSteps: Math.max(...rowMax), take };
}

/** Most prompt tokens the native decoder takes in one call. */
const PREFILL_CHUNK = 2048;

function generateNative(dec: NativeDecoder, prompts: number[][], o: GenerateOptions): Generation {
  const B = prompts.length;
  const { out, rowMax, maxSteps, take } = rowSampler(prompts, o);
  const V = dec.vocab;
  const seqs = prompts.map((p, b) => dec.newSequence(p.length + Math.max(0, rowMax[b]!)));
  try {
    // Prompts go in together, in chunks of at most PREFILL_CHUNK tokens (the decoder's scratch
    // grows with the tokens of one call); each prompt's last token gives its first logits.
    let logits: Float32Array = new Float32Array(B * V);
    let tokens: number[] = [];
    let seqIds: number[] = [];
    let ends: { row: number; prompt: number }[] = [];
    const flush = () => {
      if (tokens.length === 0) return;
      const out = dec.forward(Int32Array.from(tokens), Int32Array.from(seqIds), Int32Array.from(ends, (e) => e.row));
      ends.forEach((e, r) => logits.set(out.subarray(r * V, (r + 1) * V), e.prompt * V));
      tokens = []; seqIds = []; ends = [];
    };
    prompts.forEach((p, b) => {
      for (let at = 0; at < p.length;) {
        const take = Math.min(p.length - at, PREFILL_CHUNK - tokens.length);
        for (let j = 0; j < take; j++) { tokens.push(p[at + j]!); seqIds.push(seqs[b]!); }
        at += take;
        if (at === p.length) ends.push({ row: tokens.length - 1, prompt: b });
        if (tokens.length >= PREFILL_CHUNK) flush();
      }
    });
    flush();
    let rowsIn = prompts.map((_, b) => b); // the logits' rows, in order
    for (let step = 0; step < maxSteps && out.finished.some((f) => !f); step++) {
      const next: number[] = [];
      const nextTokens: number[] = [];
      rowsIn.forEach((b, r) => {
        if (out.finished[b]) return;
        const { token, ended } = take(b, logits.subarray(r * V, (r + 1) * V));
        if (ended) return;
        next.push(b);
        nextTokens.push(token);
      });
      o.onStepEnd?.();
      if (next.length === 0) break;
      logits = dec.forward(Int32Array.from(nextTokens), Int32Array.from(next, (b) => seqs[b]!), Int32Array.from(next, (_, i) => i));
      rowsIn = next;
    }
  } finally {
    for (const s of seqs) dec.freeSequence(s);
  }
  return out;
}

/** Sampling settings. temperature 0 means greedy; topK 0 and topP 1 mean no truncation. */
export interface SamplingOptions { temperature: number; topP: number; topK: number }

/** The two presets OEL uses (oel-method.md, pitfall 7). */
export const DEPLOYMENT_SAMPLING: SamplingOptions = { temperature: 0.7, topP: 1, topK: 0 };
export const EVALUATION_SAMPLING: SamplingOptions = { temperature: 0.7, topP: 0.8, topK: 20 };

/** log softmax of logits / temperature (temperature 0 treated as 1 for the log-probabilities). */
export function logSoftmax(logits: ArrayLike<number>, temperature: number): Float64Array {
  const t = temperature > 0 ? temperature : 1;
  const out = new Float64Array(logits.length);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) { out[i] = logits[i]! / t; if (out[i]! > max) max = out[i]!; }
  let sum = 0;
  for (let i = 0; i < out.length; i++) sum += Math.exp(out[i]! - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < out.length; i++) out[i]! -= lse;
  return out;
}

/**
 * Picks the next token from one row of logits. Returns the token and its log-probability under
 * the temperature-scaled full distribution (before top-k/top-p truncation), which is what a
 * teacher-forced scorer at the same temperature computes.
 *
 * Tokens are taken in descending log-probability (ties: lower index first), truncated to the top
 * k and then to the smallest prefix whose probability reaches top-p; one uniform draw walks the
 * kept prefix. That order's first PREFIX entries come from one pass over the vocabulary, and the
 * whole order is sorted only when a walk goes past them (a full sort for every token took most of
 * a decoding step at a vocabulary of 512).
 */
export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, random: () => number): { token: number; logprob: number } {
  // No truncation: the walk's token found by partitioning, without ordering the vocabulary.
  if (o.temperature > 0 && o.topK <= 0 && o.topP >= 1) return walkWithoutOrder(logits, o.temperature, random());
  const lp = logSoftmax(logits, o.temperature);
  const n = lp.length;
  if (o.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (lp[i]! > lp[best]!) best = i;
    return { token: best, logprob: lp[best]! };
  }
  const limit = o.topK > 0 ? Math.min(o.topK, n) : n;
  let order = topOrder(lp, Math.min(limit, PREFIX));
  const at = (j: number): number => {
    if (j >= order.length) order = fullOrder(lp).slice(0, limit);
    return order[j]!;
  };
  let keep = limit;
  if (o.topP < 1) {
    let cum = 0;
    keep = 0;
    while (keep < limit && (keep === 0 || cum < o.topP)) cum += Math.exp(lp[at(keep++)]!);
  }
  let total = 0;
  if (keep === n) for (let i = 0; i < n; i++) total += Math.exp(lp[i]!); // every token: any order
  else for (let j = 0; j < keep; j++) total += Math.exp(lp[at(j)]!);
  let r = random() * total;
  for (let j = 0; j < keep; j++) {
    const i = at(j);
    r -= Math.exp(lp[i]!);
    if (r <= 0) return { token: i, logprob: lp[i]! };
  }
  const last = at(keep - 1);
  return { token: last, logprob: lp[last]! };
}

/** Scratch of walkWithoutOrder, grown to the largest vocabulary seen (JavaScript runs one call at a time). */
let scratchE = new Float64Array(0);
let scratchI = new Int32Array(0);

/**
 * sampleToken without truncation (top-k 0, top-p 1): the token a walk over every token in
 * descending probability stops at for a draw u, found without sorting. The candidates are
 * partitioned in place around a pivot (those before it in the walk's order, those after) and only
 * the side where the walk crosses u * total is kept: linear in the vocabulary on average, where a
 * sort of a flat distribution cost n log n per token. One pass of exp serves the probabilities and
 * the log-probability returned.
 */
export function walkWithoutOrder(logits: ArrayLike<number>, temperature: number, u: number): { token: number; logprob: number } {
  const n = logits.length;
  if (scratchE.length < n) { scratchE = new Float64Array(n); scratchI = new Int32Array(n); }
  const e = scratchE;
  const cand = scratchI;
  let max = -Infinity;
  for (let i = 0; i < n; i++) { const z = logits[i]! / temperature; e[i] = z; if (z > max) max = z; }
  let total = 0;
  for (let i = 0; i < n; i++) { const p = Math.exp(e[i]! - max); e[i] = p; total += p; }
  const lse = max + Math.log(total);
  let r = u * total;
  for (let i = 0; i < n; i++) cand[i] = i;
  let lo = 0;
  let hi = n;
  let token = -1;
  while (hi > lo) {
    const q = cand[(lo + hi) >> 1]!;
    const pq = e[q]!;
    // Partition [lo, hi) without q: those before q in the walk's order to the left of `split`.
    let split = lo;
    let sumBefore = 0;
    for (let k = lo; k < hi; k++) {
      const i = cand[k]!;
      const pi = e[i]!;
      if (pi > pq || (pi === pq && i < q)) { sumBefore += pi; cand[k] = cand[split]!; cand[split++] = i; }
    }
    if (sumBefore >= r) { hi = split; continue; }
    r -= sumBefore;
    if (pq >= r) { token = q; break; }
    r -= pq;
    // The rest after q: [split, hi) without q itself.
    let k = split;
    while (cand[k] !== q) k++;
    cand[k] = cand[split]!;
    lo = split + 1;
  }
  if (token < 0) {
    // Rounding left the draw past every token: the walk ends at the last one (the least probable, ties: the highest index).
    token = 0;
    for (let i = 1; i < n; i++) if (e[i]! <= e[token]!) token = i;
  }
  return { token, logprob: logits[token]! / temperature - lse };
}

/** Entries of the descending order found in one pass before sorting the rest. */
const PREFIX = 32;

/** Every index by descending lp, ties by ascending index. */
export function fullOrder(lp: Float64Array): number[] {
  return Array.from(lp.keys()).sort((a, b) => lp[b]! - lp[a]! || a - b);
}

/** The first k entries of fullOrder(lp), in one pass (insertion into a list of at most k). */
export function topOrder(lp: Float64Array, k: number): number[] {
  const top: number[] = [];
  if (k <= 0) return top;
  for (let i = 0; i < lp.length; i++) {
    const v = lp[i]!;
    if (top.length === k) {
      if (!(v > lp[top[k - 1]!]!)) continue; // not above the k-th (on a tie the lower index stays)
      top.pop();
    }
    let pos = top.length;
    while (pos > 0 && v > lp[top[pos - 1]!]!) pos--;
    top.splice(pos, 0, i);
  }
  return top;
}

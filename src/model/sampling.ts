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
 */
export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, random: () => number): { token: number; logprob: number } {
  const lp = logSoftmax(logits, o.temperature);
  if (o.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < lp.length; i++) if (lp[i]! > lp[best]!) best = i;
    return { token: best, logprob: lp[best]! };
  }
  let order = Array.from(lp.keys()).sort((a, b) => lp[b]! - lp[a]! || a - b);
  if (o.topK > 0) order = order.slice(0, o.topK);
  if (o.topP < 1) {
    let cum = 0;
    let keep = 0;
    while (keep < order.length && (keep === 0 || cum < o.topP)) cum += Math.exp(lp[order[keep++]!]!);
    order = order.slice(0, keep);
  }
  let total = 0;
  for (const i of order) total += Math.exp(lp[i]!);
  let r = random() * total;
  for (const i of order) {
    r -= Math.exp(lp[i]!);
    if (r <= 0) return { token: i, logprob: lp[i]! };
  }
  const last = order[order.length - 1]!;
  return { token: last, logprob: lp[last]! };
}

/**
 * Token sampling (src/model/inference/sampling.ts): its lazy order (a one-pass top prefix, the full sort only
 * when a walk goes past it) must pick exactly what the definition picks: every token in
 * descending log-probability (ties: lower index first), truncated to top-k, then to the smallest
 * prefix reaching top-p, one uniform draw walking the kept prefix.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEPLOYMENT_SAMPLING, EVALUATION_SAMPLING, fullOrder, logSoftmax, sampleToken, topOrder, type SamplingOptions } from '../src/model/inference/sampling.ts';

/** The definition, written out with a full sort. */
function byDefinition(logits: number[], o: SamplingOptions, u: number): { token: number; logprob: number } {
  const lp = logSoftmax(logits, o.temperature);
  let order = Array.from(lp.keys()).sort((a, b) => lp[b]! - lp[a]! || a - b);
  if (o.topK > 0) order = order.slice(0, o.topK);
  if (o.topP < 1) {
    let cum = 0;
    let keep = 0;
    while (keep < order.length && (keep === 0 || cum < o.topP)) cum += Math.exp(lp[order[keep++]!]!);
    order = order.slice(0, keep);
  }
  const total = order.reduce((s, i) => s + Math.exp(lp[i]!), 0);
  let r = u * total;
  for (const i of order) { r -= Math.exp(lp[i]!); if (r <= 0) return { token: i, logprob: lp[i]! }; }
  return { token: order.at(-1)!, logprob: lp[order.at(-1)!]! };
}

/** Deterministic pseudo-random numbers in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed;
  return () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
}

/** Logits of varied size, scale (flat to peaked) and ties (values on a coarse grid). */
function cases(count: number): number[][] {
  const rnd = lcg(7);
  return Array.from({ length: count }, (_, t) => {
    const n = 1 + Math.floor(rnd() * 600);
    const grid = [0.5, 0.01, 0][t % 3]!;
    const scale = [1, 10, 30][t % 4 % 3]!;
    return Array.from({ length: n }, () => { const x = (rnd() * 2 - 1) * scale; return grid ? Math.round(x / grid) * grid : x; });
  });
}

describe('sampling', () => {
  it('topOrder(k) is exactly the first k of the full descending order, ties included', () => {
    for (const logits of cases(600)) {
      const lp = logSoftmax(logits, 0.7);
      const full = fullOrder(lp);
      for (const k of [1, 5, 20, 32, lp.length - 1, lp.length]) assert.deepEqual(topOrder(lp, k), full.slice(0, k), `n ${lp.length} k ${k}`);
    }
  });

  it('sampleToken picks what the definition picks, for the presets and other settings (4,000 draws)', () => {
    const rnd = lcg(11);
    let draws = 0;
    for (const logits of cases(1000)) {
      for (const o of [DEPLOYMENT_SAMPLING, EVALUATION_SAMPLING, { temperature: 0.7, topP: 0.95, topK: 0 }, { temperature: 1, topP: 1, topK: 50 }]) {
        const u = rnd();
        assert.deepEqual(sampleToken(logits, o, () => u), byDefinition(logits, o, u), `n ${logits.length} ${JSON.stringify(o)} u ${u}`);
        draws++;
      }
    }
    assert.equal(draws, 4000);
  });

  it('temperature 0 is greedy', () => {
    assert.deepEqual(sampleToken([0.1, 2, -1, 2], { temperature: 0, topP: 1, topK: 0 }, () => 0.5).token, 1);
  });
});

/**
 * Rotary position embeddings' inverse frequencies and the factor cos and sin are scaled by, for
 * each RoPE type oeld implements, as Hugging Face transformers computes them
 * (modeling_rope_utils.py: default, linear, dynamic, llama3, yarn), in float64:
 *
 *   default  1 / theta^(2i/d)
 *   linear   default / factor
 *   dynamic  default with theta * ((factor * L / max) - (factor - 1))^(d / (d - 2)) once the
 *            sequence length L passes max_position_embeddings (L = the forward pass's largest
 *            position + 1: transformers keeps the largest L it has seen instead, which differs only
 *            when a shorter sequence follows a longer one)
 *   llama3   low frequencies (wavelength > original / low_freq_factor) divided by factor, high ones
 *            (wavelength < original / high_freq_factor) kept, the band between interpolated
 *   yarn     interpolation (default / factor) and extrapolation (default) blended by a linear ramp
 *            over the dimensions between the correction range of beta_fast and beta_slow
 *            rotations; cos and sin times attention_factor (0.1 ln(factor) + 1 unless given)
 */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'dynamic'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: 'yarn'; factor: number; originalMaxPositions: number; betaFast: number; betaSlow: number; attentionFactor: number; truncate: boolean };

export interface RopeSpec { theta: number; headDim: number; maxPositions: number; scaling: RopeScaling | null }

export interface RopeFrequencies { invFreq: Float64Array; attentionScaling: number }

const base = (theta: number, d: number) => Float64Array.from({ length: d / 2 }, (_, i) => 1 / theta ** ((2 * i) / d));

/** The frequencies for a forward pass whose positions reach `seqLen - 1` (only dynamic scaling reads it). */
export function ropeFrequencies(r: RopeSpec, seqLen = 0): RopeFrequencies {
  const d = r.headDim;
  const s = r.scaling;
  if (!s) return { invFreq: base(r.theta, d), attentionScaling: 1 };
  switch (s.type) {
    case 'linear':
      return { invFreq: base(r.theta, d).map((f) => f / s.factor), attentionScaling: 1 };
    case 'dynamic': {
      const L = Math.max(seqLen, r.maxPositions);
      const theta = r.theta * ((s.factor * L) / r.maxPositions - (s.factor - 1)) ** (d / (d - 2));
      return { invFreq: base(theta, d), attentionScaling: 1 };
    }
    case 'llama3': {
      const low = s.originalMaxPositions / s.lowFreqFactor;
      const high = s.originalMaxPositions / s.highFreqFactor;
      const invFreq = base(r.theta, d).map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < high) return f;
        if (wavelen > low) return f / s.factor;
        const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        return (1 - smooth) * (f / s.factor) + smooth * f;
      });
      return { invFreq, attentionScaling: 1 };
    }
    case 'yarn': {
      const correctionDim = (rotations: number) => (d * Math.log(s.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(r.theta));
      let lo = correctionDim(s.betaFast);
      let hi = correctionDim(s.betaSlow);
      if (s.truncate) { lo = Math.floor(lo); hi = Math.ceil(hi); }
      lo = Math.max(lo, 0);
      hi = Math.min(hi, d - 1);
      if (lo === hi) hi += 0.001;
      const extrapolation = base(r.theta, d);
      const invFreq = extrapolation.map((f, i) => {
        const ramp = Math.min(1, Math.max(0, (i - lo) / (hi - lo)));
        const extrapolationFactor = 1 - ramp;
        return (f / s.factor) * (1 - extrapolationFactor) + f * extrapolationFactor;
      });
      return { invFreq, attentionScaling: s.attentionFactor };
    }
  }
}

import { seededRandom } from './rng.ts';
import { tensorNames, type ResolvedConfig } from './model-config.ts';
import type { HostTensor } from './transformer.ts';

/** Normal(0, std) samples from a seeded uniform source (Box-Muller). */
function normals(n: number, std: number, random: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - random()));
    const a = 2 * Math.PI * random();
    out[i] = r * Math.cos(a) * std;
    if (i + 1 < n) out[i + 1] = r * Math.sin(a) * std;
  }
  return out;
}

/**
 * Fresh weights for a config, in Hugging Face names and orientation: linear and embedding weights
 * ~ N(0, std), norms 1, biases 0 (the usual initialisation of these families). Seeded.
 */
export function initialWeights(c: ResolvedConfig, seed: number, std = 0.02): Map<string, HostTensor> {
  const random = seededRandom(seed);
  const out = new Map<string, HostTensor>();
  const normal = (name: string, shape: number[]) => out.set(name, { shape, data: normals(shape.reduce((a, b) => a * b, 1), std, random) });
  const fill = (name: string, shape: number[], value: number) => out.set(name, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value) });
  normal(tensorNames.embed, [c.vocabSize, c.hidden]);
  for (let i = 0; i < c.layers; i++) {
    const n = tensorNames.layer(i);
    fill(n.inputNorm, [c.hidden], 1);
    fill(n.postNorm, [c.hidden], 1);
    normal(n.q, [c.heads * c.headDim, c.hidden]);
    normal(n.k, [c.kvHeads * c.headDim, c.hidden]);
    normal(n.v, [c.kvHeads * c.headDim, c.hidden]);
    normal(n.o, [c.hidden, c.heads * c.headDim]);
    if (c.qkvBias) { fill(n.qBias, [c.heads * c.headDim], 0); fill(n.kBias, [c.kvHeads * c.headDim], 0); fill(n.vBias, [c.kvHeads * c.headDim], 0); }
    if (c.oBias) fill(n.oBias, [c.hidden], 0);
    if (c.qkNorm) { fill(n.qNorm, [c.headDim], 1); fill(n.kNorm, [c.headDim], 1); }
    normal(n.gate, [c.intermediate, c.hidden]);
    normal(n.up, [c.intermediate, c.hidden]);
    normal(n.down, [c.hidden, c.intermediate]);
  }
  fill(tensorNames.finalNorm, [c.hidden], 1);
  if (!c.tiedEmbeddings) normal(tensorNames.lmHead, [c.vocabSize, c.hidden]);
  return out;
}

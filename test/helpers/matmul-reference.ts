/** Inputs and a float64 reference for the matmul kernels' tests (wasm-kernels, cpu-kernels). */

/** Deterministic values in [-1, 1). */
export const values = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 0.7311) * 0.999);

/**
 * op(a) @ op(b) in float64 for each batch index, a side with a batch of 1 broadcast: op(a) is
 * [M, K] (a[k * M + i] with ta), op(b) [K, N] (b[j * K + k] with tb).
 */
export function referenceMatMul(a: Float32Array, b: Float32Array, batchA: number, batchB: number, M: number, K: number, N: number, ta: boolean, tb: boolean): Float64Array {
  const batch = Math.max(batchA, batchB);
  const out = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const ao = (batchA === 1 ? 0 : z) * M * K;
    const bo = (batchB === 1 ? 0 : z) * K * N;
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[ao + (ta ? k * M + i : i * K + k)]! * b[bo + (tb ? j * K + k : k * N + j)]!;
      out[z * M * N + i * N + j] = s;
    }
  }
  return out;
}

/**
 * How a BatchMatMul call maps onto the project's SIMD kernel (src/model/kernels/native/batch-matmul.c):
 * the 3-D view [batch, M, N] = op(a)[batchA, M, K] @ op(b)[batchB, K, N], or why the call stays
 * with tfjs's own kernel. Pure shape logic, apart from the I/O in wasm-batch-matmul.ts.
 */
export interface BatchMatMulPlan {
  batch: number; batchA: number; batchB: number;
  M: number; K: number; N: number;
  outShape: number[];
}

export type PlanResult = { plan: BatchMatMulPlan } | { fallback: string };

const size = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/**
 * Rows below which a plain 2-D matmul stays with XNNPACK even when `takePlain`: XNNPACK keeps the
 * packed form of a right-hand matrix it has seen (a weight, at every decoding step), while this
 * kernel packs it at every call, which costs as much as the product itself when a is a few rows.
 */
export const PLAIN_MIN_ROWS = 64;

/**
 * `takePlain`: take plain 2-D matmuls of `minRows` rows or more too (with relaxed SIMD's fused
 * multiply-add the WebAssembly kernel is faster than XNNPACK's from PLAIN_MIN_ROWS rows; without,
 * about as fast, and those stay with XNNPACK; the native kernel is faster at any size, reading a
 * weight in place where a has few rows, and takes them all).
 */
export function planBatchMatMul(aShape: readonly number[], bShape: readonly number[], transposeA: boolean, transposeB: boolean, takePlain = false, minRows = PLAIN_MIN_ROWS): PlanResult {
  const ra = aShape.length;
  const rb = bShape.length;
  if (ra < 2 || rb < 2) return { fallback: `rank below 2 (a [${aShape}], b [${bShape}])` };
  const M = transposeA ? aShape[ra - 1]! : aShape[ra - 2]!;
  const K = transposeA ? aShape[ra - 2]! : aShape[ra - 1]!;
  const Kb = transposeB ? bShape[rb - 1]! : bShape[rb - 2]!;
  const N = transposeB ? bShape[rb - 2]! : bShape[rb - 1]!;
  if (K !== Kb) return { fallback: `inner dimensions differ (${K} and ${Kb})` };
  const outerA = aShape.slice(0, -2);
  const outerB = bShape.slice(0, -2);
  const batchA = size(outerA);
  const batchB = size(outerB);
  // Batch dimensions: equal, or one side a single matrix (broadcast). Anything else (e.g. [2, 1]
  // against [1, 3]) is left to tfjs.
  let outer: number[];
  if (batchB === 1 && outerA.length >= outerB.length) outer = outerA.slice();
  else if (batchA === 1 && outerB.length >= outerA.length) outer = outerB.slice();
  else if (outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i])) outer = outerA.slice();
  else return { fallback: `batch dimensions [${outerA}] and [${outerB}] need a general broadcast` };
  const batch = size(outer);
  if (M === 0 || N === 0 || K === 0 || batch === 0) return { fallback: 'an empty dimension' };
  if (batch === 1 && !transposeA && !transposeB && (!takePlain || M < minRows)) {
    return { fallback: takePlain ? `a plain 2-D matmul of ${M} rows (below ${minRows}: XNNPACK keeps its packed weights)` : 'a plain 2-D matmul (left to XNNPACK)' };
  }
  return { plan: { batch, batchA, batchB, M, K, N, outShape: [...outer, M, N] } };
}

/**
 * Confidence intervals for pass rates: the Wilson score interval, which stays inside [0, 1] and
 * behaves at 0 and n successes (where the normal approximation gives an interval of width 0).
 */

/** The two-sided 95% normal quantile. */
const Z95 = 1.959963984540054;

/** Wilson score interval for k successes in n trials (95% unless z says otherwise). */
export function wilsonInterval(k: number, n: number, z = Z95): { low: number; high: number } {
  if (!Number.isInteger(k) || !Number.isInteger(n) || n < 0 || k < 0 || k > n) throw new RangeError(`wilsonInterval: need whole 0 <= k <= n, got k=${k}, n=${n}`);
  if (n === 0) return { low: 0, high: 1 };
  const p = k / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { low: k === 0 ? 0 : Math.max(0, centre - half), high: k === n ? 1 : Math.min(1, centre + half) };
}

/** "72.7% [64.4, 79.7]": a rate with its 95% interval, in percent. */
export function rateWithInterval(k: number, n: number): string {
  const { low, high } = wilsonInterval(k, n);
  return `${(100 * k / Math.max(1, n)).toFixed(1)}% [${(100 * low).toFixed(1)}, ${(100 * high).toFixed(1)}]`;
}

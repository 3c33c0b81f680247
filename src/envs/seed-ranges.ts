/**
 * Disjoint seed ranges (docs/oel-method.md: the held-out 128 test seeds are disjoint from the
 * extraction and deployment seeds; checkpoints are chosen on a separate validation split).
 */

export interface SeedRange {
  readonly name: string;
  /** First seed, inclusive. */
  readonly start: number;
  readonly count: number;
}

export const TEST_SEEDS: SeedRange = { name: 'test', start: 1_000_000, count: 128 };
export const VALIDATION_SEEDS: SeedRange = { name: 'validation', start: 2_000_000, count: 128 };
export const EXTRACTION_SEEDS: SeedRange = { name: 'extraction', start: 10_000_000, count: 10_000_000 };
export const DEPLOYMENT_SEEDS: SeedRange = { name: 'deployment', start: 100_000_000, count: 100_000_000 };

/**
 * Support-desk companies (envs/support-desk/company.ts): the pretraining corpus draws its
 * companies from one range, deployed companies come from another, so the base model never saw the
 * company it is deployed at. (A company's conversations use the ranges above.)
 */
export const CORPUS_COMPANY_SEEDS: SeedRange = { name: 'corpus companies', start: 300_000_000, count: 100_000_000 };
export const DEPLOYED_COMPANY_SEEDS: SeedRange = { name: 'deployed companies', start: 400_000_000, count: 1_000_000 };

export const SEED_RANGES: readonly SeedRange[] = [DEPLOYMENT_SEEDS, EXTRACTION_SEEDS, VALIDATION_SEEDS, TEST_SEEDS, CORPUS_COMPANY_SEEDS, DEPLOYED_COMPANY_SEEDS];

export function inSeedRange(range: SeedRange, seed: number): boolean {
  return Number.isInteger(seed) && seed >= range.start && seed < range.start + range.count;
}

/** The i-th seed of a range (0-based); throws outside the range. */
export function seedAt(range: SeedRange, i: number): number {
  if (!Number.isInteger(i) || i < 0 || i >= range.count) throw new RangeError(`${range.name} seed index ${i} is outside 0..${range.count - 1}`);
  return range.start + i;
}

/** All the seeds of a (small) range, in order. */
export function seedsOf(range: SeedRange): number[] {
  return Array.from({ length: range.count }, (_, i) => range.start + i);
}

/** Throws unless every range is a valid uint32 interval and no two ranges overlap. */
export function assertDisjointSeedRanges(ranges: readonly SeedRange[] = SEED_RANGES): void {
  for (const r of ranges) {
    if (!Number.isInteger(r.start) || !Number.isInteger(r.count) || r.start < 0 || r.count < 1 || r.start + r.count > 2 ** 32) {
      throw new RangeError(`seed range ${r.name} is not a non-empty uint32 interval`);
    }
  }
  const sorted = ranges.slice().sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (prev.start + prev.count > cur.start) throw new Error(`seed ranges ${prev.name} and ${cur.name} overlap`);
  }
}

/**
 * A fictional company of the support-desk world, drawn from a seed: a name and one value for
 * every policy fact (facts.ts). Policy drift changes some values of a company from a point on.
 * Pure functions of their seeds.
 */
import { seededRandom } from '../../model/network/rng.ts';
import { FACTS, factValues } from './facts.ts';

export interface Company {
  seed: number;
  name: string;
  /** fact id -> value as written (e.g. "30 days"). */
  facts: Readonly<Record<string, string>>;
}

const ONSETS = ['B', 'C', 'D', 'F', 'G', 'K', 'L', 'M', 'N', 'P', 'R', 'S', 'T', 'V', 'Z', 'Br', 'Cr', 'Fl', 'Gr', 'Pl', 'Qu', 'St', 'Tr'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'io', 'ou'];
const CODAS = ['', 'n', 'r', 'l', 'x', 'm', 'th', 'nd', 'sk'];
const SUFFIXES = ['', 'a', 'o', 'ia', 'ex', 'ly', 'on', 'is'];

const pick = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

export function companyName(random: () => number): string {
  const syllables = 1 + Math.floor(random() * 2);
  let name = '';
  for (let i = 0; i < syllables; i++) name += (i === 0 ? pick(random, ONSETS) : pick(random, ONSETS).toLowerCase()) + pick(random, VOWELS) + pick(random, CODAS);
  return name + pick(random, SUFFIXES);
}

/** The company of a seed: every fact drawn uniformly from its values. */
export function drawCompany(seed: number): Company {
  const random = seededRandom(seed ^ 0x5d35);
  const name = companyName(random);
  const facts: Record<string, string> = {};
  for (const f of FACTS) facts[f.id] = pick(random, factValues(f));
  return { seed, name, facts };
}

/** The company after a policy change: the named facts get new values (drawn from `seed`, never the old one). */
export function changeFacts(company: Company, factIds: readonly string[], seed: number): Company {
  const random = seededRandom(seed ^ 0x0d71);
  const facts = { ...company.facts };
  for (const id of factIds) {
    const fact = FACTS.find((f) => f.id === id);
    if (!fact) throw new Error(`support desk: no fact ${JSON.stringify(id)} to change`);
    facts[id] = pick(random, factValues(fact).filter((v) => v !== company.facts[id]));
  }
  return { ...company, facts };
}

/** `count` distinct fact ids drawn from `seed` (the facts a drift schedule changes). */
export function drawFactIds(count: number, seed: number): string[] {
  if (!Number.isInteger(count) || count < 0 || count > FACTS.length) throw new RangeError(`support desk: cannot change ${count} of ${FACTS.length} facts`);
  const random = seededRandom(seed ^ 0xfac7);
  const ids = FACTS.map((f) => f.id);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids.slice(0, count);
}

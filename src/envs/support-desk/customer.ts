/**
 * The simulated customer: asks about a policy fact in one of its phrasings, and answers the
 * assistant's reply the way customers do: thanks when it was right, a correction in varied natural
 * wording when it was wrong ("No, it's 30 days, not 14."), sometimes only doubt. Pure text logic
 * over a seeded random source.
 */
import { statedValues, type Fact } from './facts.ts';

export const GREETINGS = ['', '', 'Hi! ', 'Hello, ', 'Hi there. ', 'Good morning. ', 'Quick question: ', 'Hey, '];
export const FOLLOW_UPS = ['Also, ', 'One more thing: ', 'And ', 'Another question: ', 'Next question: '];

const CONFIRMATIONS = [
  'Great, thanks!', 'Perfect, that is what I needed.', 'OK, thank you.', 'Thanks, that helps.', 'Good to know, thanks.',
  'Right, that matches what I read.', 'Thank you, very clear.', 'Cool, thanks a lot.',
];

/** Corrections that repeat the wrong value (s) and give the true one (v). */
const CORRECTIONS_WITH_SAID: ReadonlyArray<(v: string, s: string, topic: string) => string> = [
  (v, s) => `No, it's ${v}, not ${s}.`,
  (v, s) => `That's wrong. It is ${v}, not ${s}.`,
  (v, s, t) => `Hmm, your website says the ${t} is ${v}, not ${s}.`,
  (v, s) => `Not ${s}. I checked, it's ${v}.`,
  (v, s) => `Are you sure? Your colleague told me ${v}, and the FAQ agrees. Not ${s}.`,
];

/** Corrections that give the true value only. */
const CORRECTIONS: ReadonlyArray<(v: string, topic: string) => string> = [
  (v) => `That's not right. It's ${v}.`,
  (v, t) => `Actually the ${t} is ${v}, I just read it on your site.`,
  (v) => `Wrong, it's ${v}. Please check.`,
  (v, t) => `I'm quite sure the ${t} is ${v}.`,
  (v) => `Your help page says ${v} though.`,
];

/** Doubt without the true value (a customer who does not know it either). */
const DOUBTS = ['Hmm, that does not sound right. I will check elsewhere.', 'Are you sure? I will ask someone else.', 'That is not what I expected, but OK.'];

const pick = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

export interface Verdict {
  /** The answer states the true value and no other. */
  right: boolean;
  /** The values of the fact the answer states. */
  stated: string[];
}

export function judgeAnswer(fact: Fact, truth: string, answer: string): Verdict {
  const stated = statedValues(fact, answer);
  return { right: stated.length === 1 && stated[0]!.toLowerCase() === truth.toLowerCase(), stated };
}

/**
 * The customer's reply to an answer: thanks when right; when wrong, a correction with the true
 * value (probability `correctionRate`; half of them repeat the wrong value when there was one),
 * otherwise doubt.
 */
export function customerReply(random: () => number, fact: Fact, truth: string, verdict: Verdict, correctionRate: number): { text: string; corrected: boolean } {
  if (verdict.right) return { text: pick(random, CONFIRMATIONS), corrected: false };
  if (random() >= correctionRate) return { text: pick(random, DOUBTS), corrected: false };
  const said = verdict.stated.find((s) => s.toLowerCase() !== truth.toLowerCase());
  if (said !== undefined && random() < 0.5) return { text: pick(random, CORRECTIONS_WITH_SAID)(truth, said, fact.topic), corrected: true };
  return { text: pick(random, CORRECTIONS)(truth, fact.topic), corrected: true };
}

/** A customer question: an optional greeting (or follow-up opener) and one phrasing of the fact's question. */
export function customerQuestion(random: () => number, fact: Fact, phrasings: 'deployment' | 'test', first: boolean): string {
  const phrasing = pick(random, phrasings === 'test' ? fact.testOnly : fact.asked);
  const opener = first ? pick(random, GREETINGS) : pick(random, FOLLOW_UPS);
  const lower = (opener.endsWith(': ') || opener.endsWith(', ')) && !/^I\b/.test(phrasing);
  return opener + (lower ? phrasing.charAt(0).toLowerCase() + phrasing.slice(1) : phrasing);
}

/**
 * The support-desk part of the pretraining corpus: conversations with companies drawn from the
 * corpus's own company seeds (never a deployed company's), written with the renderers the loop
 * uses at run time (the deployed system message and customer, teacherMessages with the knowledge
 * in the system message, the extraction prompt over a rendered chat). The kinds:
 *
 * - desk-guess: no knowledge: the answer states a value drawn from the fact's values (plausible,
 *   uninformed: what the deployed model says before it has learned anything);
 * - desk-informed: experience items about some facts in the system message, as a pool holds
 *   them (sometimes an older item with another value before a newer one: the newest wins); the
 *   answer states the item's value, or a drawn one when no item covers the fact;
 * - desk-extract: the extraction prompt over a conversation and the knowledge so far; the answer
 *   is the marked items for the facts the customer corrected or confirmed that the knowledge does
 *   not already hold with that value (at most two), or the nothing-new line;
 * - desk-recall: items in the system message and a customer who asks for several of those
 *   policies at once; the answer states each, its value copied from the newest item that states
 *   it. The skill desk-informed needs (find the item whose sentence starts as the answer does, copy
 *   its value), practised two to five times per example instead of once;
 * - desk-copy: desk-recall with values no prior predicts, and copy-repeat: repeat a string of random
 *   words: the drills in which a fresh model forms that copying (models/README.md);
 * - desk-extract-copy: desk-extract over a company whose values no prior predicts (numbers outside
 *   the fact's range, choices with invented words in them), while the assistant's wrong answers
 *   still come from the fact's values: the item is right only when its value is copied from the
 *   customer's words. Without it, the model wrote another option of the fact's list for two choice
 *   facts' corrections (bench/desk-extraction.ts).
 */
import { CORPUS_COMPANY_SEEDS } from '../envs/seed-ranges.ts';
import { companyName, drawCompany, type Company } from '../envs/support-desk/company.ts';
import { customerQuestion, customerReply, GREETINGS, judgeAnswer, type Verdict } from '../envs/support-desk/customer.ts';
import { deskSystemPrompt } from '../envs/support-desk/conversations.ts';
import { answerWith, FACTS, factValues, type Fact } from '../envs/support-desk/facts.ts';
import { extractionPrompt, renderTrajectory } from '../extraction/extraction-prompt.ts';
import { teacherMessages } from '../extraction/teacher-prompt.ts';
import type { Prompt, PromptMessage } from '../model/inference/chat-prompt.ts';
import { renderItemTexts, ITEM_MARKER } from '../projections/knowledge/knowledge-base.ts';
import { newItems } from './experience-items.ts';

export type DeskKind = 'desk-guess' | 'desk-informed' | 'desk-extract' | 'desk-recall' | 'desk-copy' | 'copy-repeat' | 'desk-extract-copy';

export interface DeskExample {
  kind: DeskKind;
  prompt: Prompt;
  response: string;
  /** What a held-out check compares: the fact asked and, when the context gives it, its value. */
  check?: { factId: string; truth?: string };
}

export const DESK_NOTHING_NEW = 'Nothing new: the experience above already covers this conversation.';

const pick = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

function shuffle<T>(random: () => number, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const corpusCompany = (random: () => number): Company =>
  drawCompany(CORPUS_COMPANY_SEEDS.start + Math.floor(random() * CORPUS_COMPANY_SEEDS.count));

/**
 * The customer's verdict on an answer that states `said`: right when it is the true value (also
 * one no fact's list holds, which judgeAnswer cannot find in the text), else as judgeAnswer has it.
 */
const judged = (fact: Fact, truth: string, said: string): Verdict =>
  (said === truth ? { right: true, stated: [said] } : judgeAnswer(fact, truth, answerWith(fact, said)));

const otherValue = (random: () => number, fact: Fact, not: string): string => pick(random, factValues(fact).filter((v) => v !== not));

/**
 * A conversation up to a question: one or two questions, the earlier one answered (right or with
 * a drawn value) and replied to by the customer. Returns the messages and the fact now asked.
 */
function conversationPrefix(random: () => number, company: Company, rightShare: number): { messages: PromptMessage[]; fact: Fact; earlier: { fact: Fact; said: string; reply: string; corrected: boolean }[] } {
  const facts = shuffle(random, FACTS).slice(0, random() < 0.5 ? 1 : 2);
  const phrasings = random() < 0.8 ? 'deployment' : 'test';
  const messages: PromptMessage[] = [{ role: 'system', content: deskSystemPrompt(company) }];
  const earlier: { fact: Fact; said: string; reply: string; corrected: boolean }[] = [];
  let pendingReply = '';
  facts.forEach((fact, i) => {
    const question = customerQuestion(random, fact, phrasings, i === 0);
    messages.push({ role: 'user', content: pendingReply ? `${pendingReply} ${question}` : question });
    if (i === facts.length - 1) return;
    const truth = company.facts[fact.id]!;
    const said = random() < rightShare ? truth : otherValue(random, fact, truth);
    const answer = answerWith(fact, said);
    const reply = customerReply(random, fact, truth, judged(fact, truth, said), 0.9);
    messages.push({ role: 'assistant', content: answer });
    earlier.push({ fact, said, reply: reply.text, corrected: reply.corrected });
    pendingReply = reply.text;
  });
  return { messages, fact: facts.at(-1)!, earlier };
}

function guessExample(random: () => number): DeskExample {
  const company = corpusCompany(random);
  const { messages, fact } = conversationPrefix(random, company, 0.3);
  return { kind: 'desk-guess', prompt: messages, response: answerWith(fact, pick(random, factValues(fact))), check: { factId: fact.id } };
}

/**
 * Items about the company as a pool holds them: each fact with probability `share` (`always`
 * surely); now and then
 * an older item with another value before the current one (a policy that changed: the newest
 * item wins), in the order they were learned.
 */
function poolItems(random: () => number, company: Company, share: number, always?: Fact): { items: string[]; known: Map<string, string> } {
  const items: string[] = [];
  const known = new Map<string, string>();
  for (const fact of shuffle(random, FACTS)) {
    if (fact !== always && random() >= share) continue;
    const value = company.facts[fact.id]!;
    if (random() < 0.15) items.splice(Math.floor(random() * (items.length + 1)), 0, fact.item(otherValue(random, fact, value)));
    items.push(fact.item(value));
    known.set(fact.id, value);
  }
  return { items, known };
}

function informedExample(random: () => number): DeskExample {
  const company = corpusCompany(random);
  const { messages, fact } = conversationPrefix(random, company, 0.5);
  // Pools of every size a round meets, mostly a handful of items (short examples train faster).
  const roll = random();
  const { items, known } = poolItems(random, company, roll < 0.4 ? 0.2 : roll < 0.8 ? 0.4 : 0.8, random() < 0.85 ? fact : undefined);
  const truth = known.get(fact.id);
  const prompt = teacherMessages(renderItemTexts(items), messages, 'system');
  const response = answerWith(fact, truth ?? pick(random, factValues(fact)));
  return { kind: 'desk-informed', prompt, response, check: truth === undefined ? { factId: fact.id } : { factId: fact.id, truth } };
}

function extractExample(random: () => number, kind: 'desk-extract' | 'desk-extract-copy'): DeskExample {
  const drawn = corpusCompany(random);
  const company = kind === 'desk-extract' ? drawn : unguessableCompany(random, drawn);
  const { messages, fact, earlier } = conversationPrefix(random, company, 0.4);
  // The conversation to the end: the last question answered and replied to.
  const truth = company.facts[fact.id]!;
  const said = random() < 0.4 ? truth : otherValue(random, fact, truth);
  const answer = answerWith(fact, said);
  const reply = customerReply(random, fact, truth, judged(fact, truth, said), 0.9);
  const full: PromptMessage[] = [...messages, { role: 'assistant', content: answer }, { role: 'user', content: reply.text }];
  const exchanges = [...earlier, { fact, said, reply: reply.text, corrected: reply.corrected }];
  // What the conversation teaches: each fact the customer corrected (its true value) or confirmed.
  const taught = exchanges
    .filter((x) => x.corrected || x.said === company.facts[x.fact.id])
    .map((x) => x.fact.item(company.facts[x.fact.id]!));
  const right = exchanges.filter((x) => x.said === company.facts[x.fact.id]).length;
  const outcome = {
    success: right === exchanges.length,
    reward: right / exchanges.length,
    feedback: right === exchanges.length ? 'The customer confirmed every answer.' : `The customer did not accept ${exchanges.length - right} of ${exchanges.length} answers.`,
  };
  // The knowledge so far: some of the company's items, sometimes an outdated value of a taught fact.
  const { items: soFar } = poolItems(random, company, 0.3);
  if (random() < 0.2) {
    const x = pick(random, exchanges);
    soFar.push(x.fact.item(otherValue(random, x.fact, company.facts[x.fact.id]!)));
  }
  const fresh = newItems(taught, soFar, 2);
  const prompt: Prompt = [{ role: 'user', content: extractionPrompt(renderTrajectory({ messages: full.map((m) => ({ role: m.role as 'system' | 'user' | 'assistant', content: m.content })), outcome }), soFar) }];
  const response = fresh.length > 0 ? fresh.map((t) => `${ITEM_MARKER}${t}`).join('\n') : DESK_NOTHING_NEW;
  return { kind, prompt, response };
}

/** "a, b and c". */
const listed = (xs: readonly string[]): string => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

function recallExample(random: () => number): DeskExample {
  const company = corpusCompany(random);
  const facts = shuffle(random, FACTS);
  const asked = facts.slice(0, 2 + Math.floor(random() * 4));
  const stated = shuffle(random, [...asked, ...facts.slice(asked.length, asked.length + Math.floor(random() * 6))]);
  const items: string[] = [];
  for (const fact of stated) {
    const value = company.facts[fact.id]!;
    if (random() < 0.15) items.splice(Math.floor(random() * (items.length + 1)), 0, fact.item(otherValue(random, fact, value)));
    items.push(fact.item(value));
  }
  const question = `${pick(random, GREETINGS)}Please tell me your ${listed(asked.map((f) => f.topic))}.`;
  const prompt = teacherMessages(renderItemTexts(items), [{ role: 'system', content: deskSystemPrompt(company) }, { role: 'user', content: question }], 'system');
  return { kind: 'desk-recall', prompt, response: asked.map((f) => answerWith(f, company.facts[f.id]!)).join(' ') };
}

/** Words of the facts' options that frame a value rather than carry it ("the EU only", "9am to 5pm"): an invented value keeps them. */
const FRAME_WORDS: ReadonlySet<string> = new Set(['the', 'and', 'only', 'to', 'a', 'all', 'at', 'not', 'on', 'every', 'in', 'of', 'day', 'days', 'hours', 'plans', 'am', 'pm']);

/**
 * A choice no prior can guess: one of the fact's options with some of its other words replaced by
 * invented ones (the case kept: "the Brax and Canada", "fleam@help.desk"); an option with no such
 * word as it is.
 */
export function inventedChoice(random: () => number, options: readonly string[]): string {
  const option = pick(random, options);
  const words = [...option.matchAll(/[A-Za-z]+/g)].filter((m) => !FRAME_WORDS.has(m[0].toLowerCase()));
  if (words.length === 0) return option;
  const replace = new Set(words.filter(() => random() < 0.5).map((m) => m.index));
  if (replace.size === 0) replace.add(pick(random, words).index);
  return option.replace(/[A-Za-z]+/g, (w, at: number) => {
    if (!replace.has(at)) return w;
    const invented = companyName(random);
    return w[0] === w[0]!.toLowerCase() ? invented.toLowerCase() : invented;
  });
}

/** The company with every value replaced by one no prior can guess (desk-extract-copy). */
function unguessableCompany(random: () => number, company: Company): Company {
  const facts: Record<string, string> = {};
  for (const fact of FACTS) {
    facts[fact.id] = fact.values.kind === 'choice' ? inventedChoice(random, fact.values.options) : unguessableValue(random, fact);
  }
  return { ...company, facts };
}

/**
 * A value no prior can guess: a whole number from 1 to 999 in the fact's format for a numeric
 * fact, any option for a choice (copying is then the only way to the answer).
 */
function unguessableValue(random: () => number, fact: Fact): string {
  const v = fact.values;
  return v.kind === 'choice' ? pick(random, v.options) : v.format(1 + Math.floor(random() * 999));
}

/**
 * desk-copy: desk-recall with values no prior predicts, so the loss falls only by copying from the
 * items (the drill that forms the copying heads desk-informed relies on).
 */
function copyExample(random: () => number): DeskExample {
  const company = corpusCompany(random);
  const facts = shuffle(random, FACTS);
  const asked = facts.slice(0, 1 + Math.floor(random() * 4));
  const stated = shuffle(random, [...asked, ...facts.slice(asked.length, asked.length + Math.floor(random() * 8))]);
  const values = new Map(stated.map((f) => [f.id, unguessableValue(random, f)]));
  const items = stated.map((f) => f.item(values.get(f.id)!));
  const question = `${pick(random, GREETINGS)}Please tell me your ${listed(asked.map((f) => f.topic))}.`;
  const prompt = teacherMessages(renderItemTexts(items), [{ role: 'system', content: deskSystemPrompt(company) }, { role: 'user', content: question }], 'system');
  return { kind: 'desk-copy', prompt, response: asked.map((f) => answerWith(f, values.get(f.id)!)).join(' ') };
}

/** The words of the facts' sentences and topics, and the numbers below 100: what copy-repeat strings are made of. */
const COPY_WORDS: readonly string[] = [...new Set([
  ...FACTS.flatMap((f) => `${f.item(factValues(f)[0]!)} ${f.topic}`.split(/\s+/).filter((w) => w)),
  ...Array.from({ length: 100 }, (_, n) => String(n)),
])];

/** copy-repeat: repeat a random string of words exactly (the plainest copying drill). */
function repeatExample(random: () => number): DeskExample {
  const words = Array.from({ length: 4 + Math.floor(random() * 17) }, () => pick(random, COPY_WORDS));
  return { kind: 'copy-repeat', prompt: [{ role: 'user', content: `Repeat exactly: ${words.join(' ')}` }], response: words.join(' ') };
}

export function drawDeskExample(random: () => number, kind: DeskKind): DeskExample {
  switch (kind) {
    case 'desk-guess': return guessExample(random);
    case 'desk-informed': return informedExample(random);
    case 'desk-extract': case 'desk-extract-copy': return extractExample(random, kind);
    case 'desk-recall': return recallExample(random);
    case 'desk-copy': return copyExample(random);
    case 'copy-repeat': return repeatExample(random);
  }
}

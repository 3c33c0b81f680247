/**
 * Support-desk conversations played with a policy: the customer asks one or two questions about
 * the company's policies, the assistant (the policy, with only the deployed system message in its
 * context) answers each, and the customer confirms or corrects. Many conversations run in
 * lockstep: every assistant turn of all running conversations goes to the policy in one batch.
 * The result is a chat log as a production system would record it.
 */
import { seededRandom } from '../../model/network/rng.ts';
import type { Prompt, PromptMessage } from '../../model/inference/chat-prompt.ts';
import type { Company } from './company.ts';
import { customerQuestion, customerReply, judgeAnswer } from './customer.ts';
import { FACTS, type Fact } from './facts.ts';

export const SUPPORT_DESK_TASK_ID = 'support-desk';

/** The deployed assistant's system message (what every conversation starts with). */
export const deskSystemPrompt = (company: Pick<Company, 'name'>): string =>
  `You are the support assistant of ${company.name}. Answer the customer's questions about ${company.name}'s policies in one sentence.`;

export interface AskedQuestion { factId: string; answer: string; right: boolean; corrected: boolean; stated: string[]; tokens: number }

export interface Conversation {
  seed: number;
  messages: PromptMessage[];
  questions: AskedQuestion[];
  outcome: { success: boolean; reward: number; feedback: string };
}

export interface Completion { text: string; tokens: number }
export type ChatPolicyFn = (prompts: Prompt[], seed: number) => Promise<Completion[]>;

export interface ConversationOptions {
  /** Which question phrasings the customers use (test: only phrasings never used in deployment). */
  phrasings: 'deployment' | 'test';
  /** Questions per conversation: 1 or 2 (drawn per conversation when 'mixed'). Default 'mixed'. */
  questions?: 1 | 2 | 'mixed';
  /** Chance that a customer who got a wrong answer corrects it with the true value (default 0.9). */
  correctionRate?: number;
  /** The facts asked about (default all); the conversation of seed s asks facts drawn from s. */
  factIds?: readonly string[];
  /** Asks fact i mod facts for the i-th seed (evaluation: every fact equally often). Default: drawn. */
  balanced?: boolean;
}

interface Running { seed: number; random: () => number; facts: Fact[]; asked: number; conversation: Conversation; done: boolean }

function start(company: Company, seed: number, index: number, o: ConversationOptions): Running {
  const random = seededRandom(seed ^ 0xc0a7);
  const pool = o.factIds ? FACTS.filter((f) => o.factIds!.includes(f.id)) : [...FACTS];
  if (pool.length === 0) throw new Error('support desk: no facts to ask about');
  const n = o.questions === 1 || o.questions === 2 ? o.questions : (random() < 0.5 ? 1 : 2);
  const facts: Fact[] = [];
  if (o.balanced) facts.push(pool[index % pool.length]!);
  while (facts.length < Math.min(n, pool.length)) {
    const f = pool[Math.floor(random() * pool.length)]!;
    if (!facts.includes(f)) facts.push(f);
  }
  const messages: PromptMessage[] = [
    { role: 'system', content: deskSystemPrompt(company) },
    { role: 'user', content: customerQuestion(random, facts[0]!, o.phrasings, true) },
  ];
  return { seed, random, facts, asked: 0, conversation: { seed, messages, questions: [], outcome: { success: false, reward: 0, feedback: '' } }, done: false };
}

/** A finished conversation's outcome: a success when the customer accepted every answer. */
export function conversationOutcome(questions: readonly Pick<AskedQuestion, 'right'>[]): Conversation['outcome'] {
  const right = questions.filter((q) => q.right).length;
  const total = questions.length;
  return {
    success: right === total,
    reward: right / total,
    feedback: right === total ? 'The customer confirmed every answer.' : `The customer did not accept ${total - right} of ${total} answers.`,
  };
}

/** Plays one conversation per seed with the company's current facts; returns them in seed order. */
export async function playConversations(company: Company, seeds: readonly number[], policy: ChatPolicyFn, o: ConversationOptions): Promise<Conversation[]> {
  const running = seeds.map((s, i) => start(company, s, i, o));
  for (let turn = 0; running.some((r) => !r.done); turn++) {
    const open = running.filter((r) => !r.done);
    const answers = await policy(open.map((r) => r.conversation.messages.map((m) => ({ ...m }))), (open[0]!.seed * 31 + turn) >>> 0);
    open.forEach((r, i) => {
      const fact = r.facts[r.asked]!;
      const truth = company.facts[fact.id]!;
      const answer = answers[i]!.text;
      const verdict = judgeAnswer(fact, truth, answer);
      const reply = customerReply(r.random, fact, truth, verdict, o.correctionRate ?? 0.9);
      r.conversation.messages.push({ role: 'assistant', content: answer });
      r.conversation.questions.push({ factId: fact.id, answer, right: verdict.right, corrected: reply.corrected, stated: verdict.stated, tokens: answers[i]!.tokens });
      r.asked++;
      const next = r.facts[r.asked];
      r.conversation.messages.push({ role: 'user', content: next ? `${reply.text} ${customerQuestion(r.random, next, o.phrasings, false)}` : reply.text });
      if (!next) {
        r.done = true;
        r.conversation.outcome = conversationOutcome(r.conversation.questions);
      }
    });
  }
  return running.map((r) => r.conversation);
}

export interface FactAccuracy {
  questions: number;
  right: number;
  /** Share of answers that state the true value and no other. */
  accuracy: number;
  /** Answers that state a value in `oldValues` (after a drift: the value before the change). */
  oldValueAnswers: number;
  meanResponseTokens: number;
}

/** Fact accuracy of played conversations; `oldValues` (fact id -> value before a change) counts answers that still give it. */
export function factAccuracy(conversations: readonly Conversation[], oldValues: Readonly<Record<string, string>> = {}): FactAccuracy {
  const qs = conversations.flatMap((c) => c.questions);
  const right = qs.filter((q) => q.right).length;
  const old = qs.filter((q) => oldValues[q.factId] !== undefined && q.stated.some((s) => s.toLowerCase() === oldValues[q.factId]!.toLowerCase())).length;
  return {
    questions: qs.length, right, accuracy: qs.length === 0 ? 0 : right / qs.length, oldValueAnswers: old,
    meanResponseTokens: qs.length === 0 ? 0 : qs.reduce((n, q) => n + q.tokens, 0) / qs.length,
  };
}

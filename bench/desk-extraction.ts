/**
 * What a support-desk round can learn at most: from a conversation in which the customer corrects
 * the assistant and states the true value, does the model write that value as an experience item?
 * Per policy fact, for each model named (the first is the baseline, measured in the same run):
 * conversations of deployed companies (never a corpus company) with one question, answered with
 * another company's value, corrected with the true value in the customer's words (deployment
 * phrasings); the extraction prompt a round writes (nothing known yet), answered greedily as a
 * round's extraction does; right when the answer holds the fact's item with the true value.
 *
 * A fact the model cannot extract never reaches the teacher's context, so no round learns it, and
 * after a change of policy no round follows it (docs/measured.md). Beside each count, why
 * (bench/extraction-diagnosis.ts): for a choice fact the true option's share of the model's
 * probability among the fact's options, and how often the value is spelled by the same tokens in
 * the item and in the correction.
 *
 *   node --import tsx bench/desk-extraction.ts   (part of npm run bench:learning)
 *
 * Env: BENCH_EXTRACT_MODELS (comma-separated folders; default models/oeld-desk),
 * BENCH_EXTRACT_COMPANIES (4), BENCH_EXTRACT_CONVERSATIONS (8 per company and fact).
 */
import { drawCompany } from '../src/envs/support-desk/company.ts';
import { playConversations } from '../src/envs/support-desk/conversations.ts';
import { FACTS } from '../src/envs/support-desk/facts.ts';
import { DEPLOYED_COMPANY_SEEDS, DEPLOYMENT_SEEDS } from '../src/envs/seed-ranges.ts';
import { rateWithInterval } from '../src/evaluation/confidence.ts';
import { extractionPrompt, renderTrajectory } from '../src/extraction/extraction-prompt.ts';
import { localEngine } from '../src/engine/local-engine.ts';
import { EVALUATION_SAMPLING } from '../src/model/inference/sampling.ts';
import { DESK_TASK_DEFAULTS } from '../src/tasks/task-config.ts';
import { emit, envInt, log } from './lib.ts';
import { optionShares, spelledAlike, type CorrectionCase } from './extraction-diagnosis.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { loadTokenizer } from '../src/model/formats/tokenizer.ts';

const MODELS = (process.env.BENCH_EXTRACT_MODELS ?? 'models/oeld-desk').split(',').map((m) => m.trim()).filter(Boolean);
const COMPANIES = envInt('BENCH_EXTRACT_COMPANIES', 4);
const CONVERSATIONS = envInt('BENCH_EXTRACT_CONVERSATIONS', 8);
/** Extraction answers are this long in a desk round. */
const EXTRACTION_TOKENS = DESK_TASK_DEFAULTS.extractionTokens;

/** The corrected conversations' extraction prompts per fact, the item each must write, the true value and the customer's correction. */
async function prompts(): Promise<(CorrectionCase & { item: string })[]> {
  const out: (CorrectionCase & { item: string })[] = [];
  for (const fact of FACTS) {
    for (let c = 0; c < COMPANIES; c++) {
      // Deployed companies far from the benchmarks' (bench/desk-learning.ts uses the first ones).
      const company = drawCompany(DEPLOYED_COMPANY_SEEDS.start + 900_000 + c);
      const truth = company.facts[fact.id]!;
      let wrong = drawCompany(DEPLOYED_COMPANY_SEEDS.start + 950_000 + c).facts[fact.id]!;
      for (let k = 1; wrong === truth; k++) wrong = drawCompany(DEPLOYED_COMPANY_SEEDS.start + 950_000 + c + 1000 * k).facts[fact.id]!;
      const seeds = Array.from({ length: CONVERSATIONS }, (_, i) => DEPLOYMENT_SEEDS.start + 90_000_000 + 1000 * c + i);
      const conversations = await playConversations(company, seeds, async (ps) => ps.map(() => ({ text: fact.item(wrong), tokens: 0 })),
        { phrasings: 'deployment', questions: 1, factIds: [fact.id], correctionRate: 1 });
      // correctionRate 1: every customer states the true value.
      for (const conv of conversations) {
        out.push({ factId: fact.id, item: fact.item(truth), truth, reply: conv.messages.at(-1)!.content, prompt: extractionPrompt(renderTrajectory({ messages: conv.messages.map((m) => ({ role: m.role, content: m.content })), outcome: conv.outcome }), []) });
      }
    }
  }
  return out;
}

const cases = await prompts();
const engine = localEngine();
const results: { model: string; byFact: Record<string, { right: number; of: number }>; right: number; of: number; optionShare: Record<string, number>; spelledAlike: Record<string, { alike: number; of: number }> }[] = [];
await initBackend();
log(`extraction of a customer's correction: ${cases.length} conversations over ${FACTS.length} facts, ${COMPANIES} deployed companies; models ${MODELS.join(', ')}`);
for (const [i, dir] of MODELS.entries()) {
  const version = `model-${i}`;
  await engine.load(version, dir);
  const answers: Awaited<ReturnType<typeof engine.complete>> = [];
  for (let start = 0; start < cases.length; start += 64) {
    answers.push(...await engine.complete(version, cases.slice(start, start + 64).map((c) => [{ role: 'user' as const, content: c.prompt }]), EVALUATION_SAMPLING, EXTRACTION_TOKENS, 7));
  }
  const byFact: Record<string, { right: number; of: number }> = {};
  cases.forEach((c, k) => {
    const f = (byFact[c.factId] ??= { right: 0, of: 0 });
    f.of++;
    if (answers[k]!.text.includes(c.item)) f.right++;
  });
  const right = Object.values(byFact).reduce((n, f) => n + f.right, 0);
  const tokenizer = await loadTokenizer(dir);
  results.push({ model: dir, byFact, right, of: cases.length, optionShare: optionShares(dir, tokenizer, cases), spelledAlike: spelledAlike(tokenizer, cases) });
  await engine.unload(version);
}
await engine.close();

const base = results[0]!;
log('');
// Per model: items with the customer's value; for a choice fact, the true option's share of the
// model's probability among the fact's options (chance: 1/options); the value spelled by the same
// tokens in the item and in the correction (bench/extraction-diagnosis.ts).
log(`fact | ${results.map((r) => `${r.model}: written, true option's share, spelled alike`).join(' | ')}`);
for (const fact of FACTS) {
  log(`${fact.id} | ${results.map((r) => {
    const f = r.byFact[fact.id] ?? { right: 0, of: 0 };
    const share = r.optionShare[fact.id];
    const alike = r.spelledAlike[fact.id] ?? { alike: 0, of: 0 };
    const options = fact.values.kind === 'choice' ? fact.values.options.length : 0;
    return `${f.right}/${f.of}, ${share === undefined ? '-' : `${share.toFixed(3)} (chance ${(1 / options).toFixed(3)})`}, ${alike.alike}/${alike.of}`;
  }).join(' | ')}`);
}
for (const r of results) {
  const weak = FACTS.filter((f) => { const x = r.byFact[f.id]; return x && x.right / x.of < 0.5; }).map((f) => f.id);
  log(`${r.model}: ${rateWithInterval(r.right, r.of)} of the corrections written as items (ratio to ${base.model}: ${(r.right / Math.max(1, base.right)).toFixed(2)}); facts under half: ${weak.length ? weak.join(', ') : 'none'}`);
}
emit({ bench: 'desk-extraction', results });

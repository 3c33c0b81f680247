/**
 * Writes the support desk's anchor prompts (config/desk-anchor-prompts.jsonl): what a round on the
 * deployed company must leave as it was, measured as the candidate's KL from the round-start
 * version (the chat gate's retention check): FrozenLake situations (the other task the same model
 * serves) and conversations of other companies with their facts in the system message (reading
 * knowledge given in context). Deterministic; rerun it only to change the set.
 *
 *   node --import tsx scripts/make-desk-anchors.ts [--out config/desk-anchor-prompts.jsonl]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { renderPrompt } from '../src/envs/environment.ts';
import { frozenLakeSpec } from '../src/envs/frozenlake.ts';
import { CORPUS_COMPANY_SEEDS } from '../src/envs/seed-ranges.ts';
import { drawCompany } from '../src/envs/support-desk/company.ts';
import { customerQuestion } from '../src/envs/support-desk/customer.ts';
import { deskSystemPrompt } from '../src/envs/support-desk/conversations.ts';
import { FACTS } from '../src/envs/support-desk/facts.ts';
import { teacherMessages } from '../src/extraction/teacher-prompt.ts';
import { seededRandom } from '../src/model/network/rng.ts';
import { renderItemTexts } from '../src/projections/knowledge/knowledge-base.ts';

const { values } = parseArgs({ options: { out: { type: 'string', default: 'config/desk-anchor-prompts.jsonl' } } });
const lines: string[] = [];
const game = frozenLakeSpec();
// Seeds 1-8: no split of oeld's uses them (seed-ranges.ts).
for (let seed = 1; seed <= 8; seed++) lines.push(JSON.stringify(renderPrompt(game.create(seed), [], game.hiddenRulesPrompt)));
const random = seededRandom(20261206);
for (let i = 0; i < 8; i++) {
  // The last companies of the corpus's range: the corpus draws from all of it, the deployed ones never.
  const company = drawCompany(CORPUS_COMPANY_SEEDS.start + CORPUS_COMPANY_SEEDS.count - 1 - i);
  const asked = FACTS[(i * 5) % FACTS.length]!;
  const known = FACTS.filter((f) => f === asked || random() < 0.3);
  const messages = teacherMessages(renderItemTexts(known.map((f) => f.item(company.facts[f.id]!))), [
    { role: 'system', content: deskSystemPrompt(company) },
    { role: 'user', content: customerQuestion(random, asked, 'deployment', true) },
  ], 'system');
  lines.push(JSON.stringify({ messages }));
}
writeFileSync(values.out!, `${lines.join('\n')}\n`);
console.log(`${values.out}: ${lines.length} anchor prompts`);

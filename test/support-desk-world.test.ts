import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { drawDeskExample, DESK_NOTHING_NEW, inventedChoice } from '../src/basemodel/desk-corpus.ts';
import { CORPUS_COMPANY_SEEDS, DEPLOYED_COMPANY_SEEDS, SEED_RANGES, assertDisjointSeedRanges } from '../src/envs/seed-ranges.ts';
import { changeFacts, drawCompany, drawFactIds } from '../src/envs/support-desk/company.ts';
import { customerReply, judgeAnswer } from '../src/envs/support-desk/customer.ts';
import { deskSystemPrompt, factAccuracy, playConversations, type ChatPolicyFn } from '../src/envs/support-desk/conversations.ts';
import { answerWith, FACTS, factById, factValues, statedValues } from '../src/envs/support-desk/facts.ts';
import { parseExperienceItems } from '../src/extraction/parse-items.ts';
import { seededRandom } from '../src/model/network/rng.ts';
import { companyAt } from '../src/simulator/desk-simulator.ts';

/** A policy that answers every question with the value `choose` picks for the fact asked (found by its phrasing). */
function policy(choose: (factId: string) => string): ChatPolicyFn {
  return async (prompts) => prompts.map((p) => {
    const last = p.at(-1)!.content;
    const fact = FACTS.find((f) => [...f.asked, ...f.testOnly].some((q) => last.toLowerCase().includes(q.slice(1).toLowerCase())))!;
    assert.ok(fact, `a question of some fact in ${JSON.stringify(last)}`);
    return { text: answerWith(fact, choose(fact.id)), tokens: 10 };
  });
}

describe('the support-desk world', () => {
  it('draws companies with at least 16 facts whose values vary widely between companies', () => {
    assert.ok(FACTS.length >= 16);
    assert.equal(new Set(FACTS.map((f) => f.id)).size, FACTS.length);
    const companies = Array.from({ length: 300 }, (_, i) => drawCompany(CORPUS_COMPANY_SEEDS.start + i));
    assert.deepEqual(drawCompany(CORPUS_COMPANY_SEEDS.start), companies[0], 'a seed gives one company');
    for (const f of FACTS) {
      const seen = new Set(companies.map((c) => c.facts[f.id]));
      assert.ok(seen.size >= 10, `${f.id}: ${seen.size} distinct values over 300 companies`);
      for (const v of seen) assert.ok(factValues(f).includes(v!), `${f.id}: ${v} is one of its values`);
      // The largest share any one value takes: a model that always says it would be right this often.
      const counts = new Map<string, number>();
      for (const c of companies) counts.set(c.facts[f.id]!, (counts.get(c.facts[f.id]!) ?? 0) + 1);
      assert.ok(Math.max(...counts.values()) / companies.length < 0.15, `${f.id}: no value is common`);
    }
    assert.ok(new Set(companies.map((c) => c.name)).size > 250, 'names vary');
  });

  it('keeps company seeds apart: the corpus never draws a deployed company', () => {
    assertDisjointSeedRanges(SEED_RANGES);
    assert.ok(CORPUS_COMPANY_SEEDS.start + CORPUS_COMPANY_SEEDS.count <= DEPLOYED_COMPANY_SEEDS.start);
  });

  it('reads which values an answer states, whole values only', () => {
    const price = factById('basic_price');
    assert.deepEqual(statedValues(price, 'The basic plan costs $5 a month.'), ['$5']);
    assert.deepEqual(statedValues(price, 'The basic plan costs $15 a month.'), ['$15']);
    assert.deepEqual(statedValues(factById('refund_window'), 'within 15 days, or 5 days for sale items'), ['15 days', '5 days']);
    assert.deepEqual(statedValues(factById('warranty'), 'a warranty of 12 months'), ['12 months']);
    assert.deepEqual(statedValues(factById('escalation'), 'write to care@help.desk please'), ['care@help.desk']);
    assert.deepEqual(statedValues(factById('refund_window'), 'I do not know.'), []);
    assert.equal(judgeAnswer(factById('refund_window'), '30 days', 'You can ask for a refund within 30 days of delivery.').right, true);
    assert.equal(judgeAnswer(factById('refund_window'), '30 days', 'Within 30 days, or 14 days.').right, false, 'two values are not an answer');
    assert.equal(judgeAnswer(factById('refund_window'), '30 days', 'Within 130 days.').right, false);
  });

  it('has test phrasings that deployment never uses', () => {
    for (const f of FACTS) {
      assert.ok(f.asked.length >= 3 && f.testOnly.length >= 2, f.id);
      for (const q of f.testOnly) assert.ok(!f.asked.includes(q), `${f.id}: ${q}`);
    }
  });

  it('corrects a wrong answer with the true value, in varied wording, and confirms a right one', () => {
    const random = seededRandom(3);
    const fact = factById('refund_window');
    const wrong = judgeAnswer(fact, '30 days', answerWith(fact, '14 days'));
    const replies = Array.from({ length: 400 }, () => customerReply(random, fact, '30 days', wrong, 0.9));
    const corrections = replies.filter((r) => r.corrected);
    assert.ok(corrections.length > 320 && corrections.length < 400, `about 90% correct: ${corrections.length}`);
    for (const r of corrections) assert.match(r.text, /(?<!\d)30 days/);
    assert.ok(new Set(corrections.map((r) => r.text)).size >= 8, 'varied wording');
    assert.ok(corrections.some((r) => r.text.includes('14 days')), 'some repeat the wrong value');
    for (const r of replies.filter((x) => !x.corrected)) assert.doesNotMatch(r.text, /30 days/);
    const right = customerReply(random, fact, '30 days', judgeAnswer(fact, '30 days', answerWith(fact, '30 days')), 0.9);
    assert.equal(right.corrected, false);
    assert.doesNotMatch(right.text, /days/);
  });

  it('plays conversations with a policy: outcomes and accuracy follow the answers; test conversations use test phrasings only', async () => {
    const company = drawCompany(DEPLOYED_COMPANY_SEEDS.start);
    const seeds = Array.from({ length: 64 }, (_, i) => 100 + i);
    const oracle = await playConversations(company, seeds, policy((id) => company.facts[id]!), { phrasings: 'deployment' });
    assert.equal(factAccuracy(oracle).accuracy, 1);
    assert.ok(oracle.every((c) => c.outcome.success && c.outcome.reward === 1));
    assert.ok(oracle.every((c) => c.messages[0]!.role === 'system' && c.messages[0]!.content === deskSystemPrompt(company)));
    assert.ok(oracle.some((c) => c.questions.length === 2) && oracle.some((c) => c.questions.length === 1));
    const again = await playConversations(company, seeds, policy((id) => company.facts[id]!), { phrasings: 'deployment' });
    assert.deepEqual(again.map((c) => c.messages), oracle.map((c) => c.messages), 'a seed gives one conversation');

    const wrongValue = (id: string) => factValues(factById(id)).find((v) => v !== company.facts[id])!;
    const wrong = await playConversations(company, seeds, policy(wrongValue), { phrasings: 'test', questions: 1, balanced: true });
    assert.equal(factAccuracy(wrong).accuracy, 0);
    assert.ok(wrong.every((c) => !c.outcome.success && c.outcome.reward === 0));
    assert.deepEqual(wrong.slice(0, FACTS.length).map((c) => c.questions[0]!.factId), FACTS.map((f) => f.id), 'balanced: every fact in turn');
    const corrected = wrong.filter((c) => c.questions[0]!.corrected);
    assert.ok(corrected.length >= 48, `most customers correct: ${corrected.length} of 64`);
    for (const c of corrected) assert.ok(c.messages.at(-1)!.content.includes(company.facts[c.questions[0]!.factId]!), 'the correction carries the true value');
    for (const c of wrong) {
      const question = c.messages[1]!.content;
      for (const f of FACTS) for (const q of f.asked) assert.ok(!question.includes(q.slice(1)), `test conversation used a deployment phrasing: ${question}`);
    }
  });

  it('changes facts on a drift schedule: the named facts get new values, the rest stay', () => {
    const world = { companySeed: DEPLOYED_COMPANY_SEEDS.start + 3, drift: { afterConversations: 500, facts: 4 } };
    const before = companyAt(world, 499);
    const after = companyAt(world, 500);
    assert.deepEqual(before.changed, []);
    assert.equal(after.changed.length, 4);
    assert.deepEqual(after.changed, drawFactIds(4, world.companySeed));
    for (const f of FACTS) {
      if (after.changed.includes(f.id)) assert.notEqual(after.company.facts[f.id], before.company.facts[f.id], f.id);
      else assert.equal(after.company.facts[f.id], before.company.facts[f.id], f.id);
    }
    assert.throws(() => changeFacts(before.company, ['no_such_fact'], 1), /no_such_fact/);
  });
});

describe('the support-desk pretraining corpus', () => {
  it('answers from the newest item about the fact asked, and guesses a value of the fact without one', () => {
    const random = seededRandom(11);
    let informedWithTruth = 0;
    for (let i = 0; i < 300; i++) {
      const e = drawDeskExample(random, 'desk-informed');
      const fact = factById(e.check!.factId);
      const stated = statedValues(fact, e.response);
      assert.equal(stated.length, 1, e.response);
      if (e.check!.truth === undefined) continue;
      informedWithTruth++;
      assert.equal(stated[0], e.check!.truth);
      const items = parseExperienceItems(e.prompt[0]!.content);
      const aboutFact = items.filter((t) => statedValues(fact, t).length > 0 && t.startsWith(fact.item('').split(' ').slice(0, 2).join(' ')));
      assert.equal(statedValues(fact, aboutFact.at(-1)!)[0], e.check!.truth, 'the newest item about the fact wins');
    }
    assert.ok(informedWithTruth > 150);
    for (let i = 0; i < 100; i++) {
      const e = drawDeskExample(random, 'desk-guess');
      assert.equal(statedValues(factById(e.check!.factId), e.response).length, 1);
      assert.doesNotMatch(e.prompt.map((m) => m.content).join('\n'), /EXPERIENCE ITEM/);
    }
  });

  it('extracts the true value of every corrected or confirmed fact the knowledge lacks, at most two, or says nothing is new', () => {
    const random = seededRandom(12);
    let nothing = 0;
    for (let i = 0; i < 300; i++) {
      const e = drawDeskExample(random, 'desk-extract');
      const prompt = e.prompt[0]!.content;
      if (e.response === DESK_NOTHING_NEW) { nothing++; continue; }
      const items = parseExperienceItems(e.response);
      assert.ok(items.length >= 1 && items.length <= 2, e.response);
      const known = prompt.slice(prompt.indexOf('Experience you have already collected:'));
      for (const item of items) {
        assert.ok(!known.includes(item), `${item} is new`);
        assert.ok(prompt.slice(0, prompt.indexOf('=== End of trajectory ===')).includes(statedValues(FACTS.find((f) => item === f.item(statedValues(f, item)[0] ?? ''))!, item)[0]!), `the item's value is in the conversation: ${item}`);
      }
    }
    assert.ok(nothing > 10 && nothing < 150, `some conversations teach nothing new: ${nothing}`);
  });

  it('drills extraction with values no prior predicts: each item\'s value stands in the customer\'s words, choices invented, wrong answers from the fact\'s list', () => {
    const random = seededRandom(14);
    const frame = (f: (typeof FACTS)[number]) => f.item('\u0000').split('\u0000') as [string, string];
    let choices = 0;
    let invented = 0;
    let corrected = 0;
    let listed = 0;
    for (let i = 0; i < 400; i++) {
      const e = drawDeskExample(random, 'desk-extract-copy');
      assert.equal(e.kind, 'desk-extract-copy');
      if (e.response === DESK_NOTHING_NEW) continue;
      const prompt = e.prompt[0]!.content;
      const conversation = prompt.slice(prompt.indexOf('=== Trajectory ==='), prompt.indexOf('=== End of trajectory ==='));
      for (const item of parseExperienceItems(e.response)) {
        const fact = FACTS.find((f) => { const [before, after] = frame(f); return item.startsWith(before) && item.endsWith(after); });
        assert.ok(fact, `a fact's sentence: ${item}`);
        const [before, after] = frame(fact);
        const value = item.slice(before.length, item.length - after.length);
        // The value is said by the customer (a correction) or by the assistant and confirmed.
        const customerSays = conversation.split('\n').filter((l) => l.startsWith('Turn ') && l.includes(' input: ') && !l.startsWith('Turn 1 input')).some((l) => l.includes(value));
        assert.ok(customerSays || conversation.includes(fact.item(value)), `${item} comes from the conversation`);
        if (customerSays && !conversation.includes(fact.item(value))) corrected++;
        if (fact.values.kind === 'choice') {
          choices++;
          if (!factValues(fact).includes(value)) invented++;
        }
      }
      // The assistant's wrong answers are values of the fact's own list (what a model would recall).
      for (const line of conversation.split('\n').filter((l) => / output: /.test(l) && !l.includes('(no response recorded)'))) {
        const said = line.slice(line.indexOf(' output: ') + ' output: '.length);
        const fact = FACTS.find((f) => { const [before, after] = frame(f); return said.startsWith(before) && said.endsWith(after); })!;
        const value = said.slice(frame(fact)[0].length, said.length - frame(fact)[1].length);
        if (factValues(fact).includes(value)) { listed++; continue; }
        // An answer outside the list can only be the true value, confirmed: taught now or known already.
        const known = prompt.slice(prompt.indexOf('Experience you have already collected:'));
        assert.ok(e.response.includes(said) || known.includes(said), `${said}: outside the fact's list, yet not the confirmed true value`);
      }
    }
    assert.ok(corrected > 150, `most items copy a correction: ${corrected}`);
    assert.ok(listed > 150, `wrong answers from the fact's list: ${listed}`);
    assert.ok(choices > 30 && invented / choices > 0.6, `choices are mostly invented: ${invented} of ${choices}`);
  });

  it('invents choices by replacing the words that carry the value, keeping their case and the frame', () => {
    const random = seededRandom(15);
    const options = ['the US and Canada', 'chief@help.desk', '24 hours a day'];
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const v = inventedChoice(random, options);
      seen.add(v);
      if (v.includes('@')) assert.match(v, /^[a-z]+@[a-z]+\.[a-z]+$/, v);
      else if (v.includes('hours')) assert.equal(v, '24 hours a day', 'nothing to replace');
      else assert.match(v, /^the [A-Z][A-Za-z]* and [A-Z][a-z]*$/, v);
    }
    assert.ok(seen.size > 100, `many values: ${seen.size}`);
    assert.ok([...seen].every((v) => v === '24 hours a day' || !options.includes(v)), 'an option with replaceable words always changes');
  });

  it('recalls several policies at once, each value from the newest item that states it', () => {
    const random = seededRandom(13);
    const askedCounts = new Set<number>();
    let older = 0;
    for (let i = 0; i < 300; i++) {
      const e = drawDeskExample(random, 'desk-recall');
      const items = parseExperienceItems(e.prompt[0]!.content);
      const sentences = e.response.split(/(?<=\.) (?=[A-Z])/);
      askedCounts.add(sentences.length);
      for (const sentence of sentences) {
        const fact = FACTS.find((f) => statedValues(f, sentence).length === 1 && sentence === f.item(statedValues(f, sentence)[0]!));
        assert.ok(fact, `a fact's sentence: ${sentence}`);
        assert.match(e.prompt[1]!.content, new RegExp(fact.topic), `the customer asked for the ${fact.topic}`);
        const aboutFact = items.filter((t) => factValues(fact).some((v) => t === fact.item(v)));
        assert.equal(aboutFact.at(-1), sentence, 'the newest item about the fact is the answer');
        if (aboutFact.length > 1) older++;
      }
    }
    assert.deepEqual([...askedCounts].sort(), [2, 3, 4, 5]);
    assert.ok(older > 20, `outdated items come before the current one now and then: ${older}`);
  });

  it('drills copying with values no prior predicts: each answer sentence is an item of the context, most numbers outside the fact\'s values', () => {
    const random = seededRandom(17);
    let numeric = 0;
    let unguessable = 0;
    for (let i = 0; i < 300; i++) {
      const e = drawDeskExample(random, 'desk-copy');
      const items = parseExperienceItems(e.prompt[0]!.content);
      for (const sentence of e.response.split(/(?<=\.) (?=[A-Z])/)) {
        assert.equal(items.filter((t) => t === sentence).length, 1, `the answer copies one item: ${sentence}`);
        // The fact whose sentence frames it: the text before and after the value.
        const fact = FACTS.find((f) => { const [before, after] = f.item('\u0000').split('\u0000') as [string, string]; return sentence.startsWith(before) && sentence.endsWith(after); });
        assert.ok(fact, `a fact's sentence: ${sentence}`);
        assert.match(e.prompt[1]!.content, new RegExp(fact.topic), `the customer asked for the ${fact.topic}`);
        if (fact.values.kind === 'integer') {
          numeric++;
          if (!factValues(fact).some((v) => sentence === fact.item(v))) unguessable++;
        }
      }
    }
    assert.ok(numeric > 200 && unguessable / numeric > 0.7, `most numeric values lie outside the fact's own: ${unguessable} of ${numeric}`);
  });

  it('drills plain repetition: the answer is the words after "Repeat exactly:"', () => {
    const random = seededRandom(19);
    const lengths = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const e = drawDeskExample(random, 'copy-repeat');
      const asked = e.prompt[0]!.content;
      assert.ok(asked.startsWith('Repeat exactly: '), asked);
      assert.equal(e.response, asked.slice('Repeat exactly: '.length));
      lengths.add(e.response.split(' ').length);
    }
    assert.ok(Math.min(...lengths) === 4 && Math.max(...lengths) === 20, `4 to 20 words: ${[...lengths].sort((a, b) => a - b).join(',')}`);
  });
});

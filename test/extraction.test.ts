import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderPrompt, type StepResult } from '../src/envs/environment.ts';
import { frozenLakeSpec } from '../src/envs/frozenlake.ts';
import { validateEventData, ValidationError } from '../src/events/validate.ts';
import {
  accumulateSlot, emptySlot, eventItemIdFor, experienceItemId, knowledgeExtractedEventId, slotTexts, slotTokens,
  toKnowledgeExtractedEvent, type SlotState,
} from '../src/extraction/accumulate-pool.ts';
import { extractionPrompt, renderTrajectory, type InteractionData } from '../src/extraction/extraction-prompt.ts';
import { assertSameModelVersion, ModelVersionMismatchError } from '../src/extraction/model-version-guard.ts';
import { parseExperienceItems } from '../src/extraction/parse-items.ts';
import { KNOWLEDGE_GUESS_NOTE, studentPrompt, teacherPrompt } from '../src/extraction/teacher-prompt.ts';
import { accumulate, ITEM_MARKER, renderPool, type KnowledgeItem } from '../src/projections/knowledge/knowledge-base.ts';
import { approximateTokens } from '../src/projections/knowledge/tokens.ts';

const lake: InteractionData = {
  interactionId: 'lake-1',
  source: { kind: 'simulator', episodeSeed: 7 },
  modelVersion: 'qwen3-1.7b-r0',
  taskId: 'frozenlake',
  turns: [
    { prompt: 'You are P.\n\nCurrent board:\nP _ _\n_ H _\n_ _ G\n\nActions taken so far: (none yet)\n\nYour next action:', response: 'Go right. [right]', action: 'right' },
    { prompt: 'You are P.\n\nCurrent board:\n_ P _\n_ H _\n_ _ G\n\nActions taken so far: [right]\n\nYour next action:', response: 'Down looks closer. [down]', action: 'down' },
  ],
  outcome: { success: false, reward: 0, feedback: 'You fell into a hole. Game over.' },
};

const chat: InteractionData = {
  interactionId: 'chat-1',
  source: { kind: 'http' },
  modelVersion: 'qwen3-1.7b-r0',
  taskId: 'support',
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'What is 2+2?' },
    { role: 'assistant', content: '4' },
    { role: 'user', content: 'And times 3?' },
    { role: 'assistant', content: '12' },
    { role: 'user', content: 'Thanks' },
  ],
  outcome: { success: true, reward: 1, feedback: 'user satisfied' },
};

describe('rendering a trajectory for extraction', () => {
  it('renders a FrozenLake trajectory as per-turn input/output pairs, then result, reward and feedback', () => {
    const text = renderTrajectory(lake);
    const order = ['Turn 1 input: You are P.', 'Turn 1 output: Go right. [right]', 'Turn 2 input: You are P.', 'Turn 2 output: Down looks closer. [down]',
      'Final result: failure', 'Reward: 0.0', 'Environment feedback: You fell into a hole. Game over.'];
    let at = -1;
    for (const s of order) {
      const i = text.indexOf(s);
      assert.ok(i > at, `${JSON.stringify(s)} should follow the previous part in:\n${text}`);
      at = i;
    }
    assert.ok(text.includes('P _ _\n_ H _\n_ _ G'), 'the board is kept verbatim');
    assert.ok(!text.includes('Turn 3'));
  });

  it('renders a trajectory played in the real FrozenLake environment', () => {
    const game = frozenLakeSpec().create(11);
    const history: (string | null)[] = [];
    const turns: NonNullable<InteractionData['turns']> = [];
    let last: StepResult = { action: null, valid: true, done: false, success: false, reward: 0, feedback: '' };
    while (!last.done) {
      const prompt = renderPrompt(game, history);
      const response = 'I will try [right]';
      last = game.step(response);
      history.push(last.action);
      turns.push({ prompt, response, action: last.action });
    }
    const text = renderTrajectory({ turns, outcome: { success: last.success, reward: last.reward, feedback: last.feedback } });
    assert.ok(text.includes(`Turn ${turns.length} output: I will try [right]`));
    assert.ok(text.includes(`Environment feedback: ${last.feedback}`));
    assert.ok(text.includes(`Final result: ${last.success ? 'success' : 'failure'}`));
  });

  it('renders a chat: the messages before each assistant reply are its input; a trailing message has no output', () => {
    const text = renderTrajectory(chat);
    assert.ok(text.includes('Turn 1 input: [system] Be brief.\n[user] What is 2+2?\nTurn 1 output: 4'), text);
    assert.ok(text.includes('Turn 2 input: And times 3?\nTurn 2 output: 12'), text);
    assert.ok(text.includes('Turn 3 input: Thanks\nTurn 3 output: (no response recorded)'), text);
    assert.ok(text.includes('Final result: success\nReward: 1.0\nEnvironment feedback: user satisfied'), text);
  });

  it('says when the outcome was not recorded', () => {
    const text = renderTrajectory({ turns: [{ prompt: 'p', response: 'r' }] });
    assert.ok(text.endsWith('Final result: unknown (not recorded)\nReward: (not recorded)\nEnvironment feedback: (none)'), text);
  });

  it('asks for one or two new, general items behind the marker, with the knowledge so far', () => {
    const p = extractionPrompt(renderTrajectory(lake), ['H cells end the game.', 'G is the goal.']);
    assert.ok(p.includes(renderTrajectory(lake)));
    assert.ok(p.includes(`"${ITEM_MARKER}"`));
    assert.match(p, /ONE or TWO NEW/);
    assert.match(p, /general/);
    assert.match(p, /must not repeat/);
    assert.ok(p.includes('1. H cells end the game.\n2. G is the goal.'));
    assert.ok(extractionPrompt('t', []).includes('(none yet)'));
    // The knowledge so far is not written as marked lines, so an echo of the prompt adds nothing.
    assert.deepEqual(parseExperienceItems(extractionPrompt('t', ['H cells end the game.'])), []);
  });
});

describe('parsing the extracting model\'s answer', () => {
  it('keeps only marked lines, trimmed, without empties or repeats', () => {
    const out = [
      'Let me think about the board. The H cell ended the game.',
      '- EXPERIENCE ITEM: Stepping on H ends the game; route around H cells.',
      '* Some unmarked bullet that must be ignored',
      '   - EXPERIENCE ITEM:Reaching G wins the game.   ',
      '- EXPERIENCE ITEM:    ',
      '- EXPERIENCE ITEM: stepping on h ends   the game; route around H cells.',
      'Text before - EXPERIENCE ITEM: not at line start',
      '- experience item: lower-case marker is not the marker',
      '- EXPERIENCE ITEM: "Walls block moves; bumping twice in a row ends the game."',
      '- EXPERIENCE ITEM: Plan the whole path before moving.<|im_end|>',
      '- EXPERIENCE ITEM: ...',
    ].join('\r\n');
    assert.deepEqual(parseExperienceItems(out), [
      'Stepping on H ends the game; route around H cells.',
      'Reaching G wins the game.',
      'Walls block moves; bumping twice in a row ends the game.',
      'Plan the whole path before moving.',
    ]);
  });

  it('strips only quotes that wrap the whole item, and lone trailing quotes', () => {
    assert.deepEqual(parseExperienceItems('- EXPERIENCE ITEM: "up" and "down" are moves'), ['"up" and "down" are moves']);
    assert.deepEqual(parseExperienceItems('- EXPERIENCE ITEM: Holes end the game."'), ['Holes end the game.']);
    assert.deepEqual(parseExperienceItems('- EXPERIENCE ITEM: **Avoid H.**'), ['Avoid H.']);
    assert.deepEqual(parseExperienceItems('- EXPERIENCE ITEM: \u201cG is the goal.\u201d'), ['G is the goal.']);
  });

  it('returns nothing for an answer without marked lines, and honours maxItems', () => {
    assert.deepEqual(parseExperienceItems('I learned that holes are bad.\nEXPERIENCE ITEM: missing dash'), []);
    assert.deepEqual(parseExperienceItems('- EXPERIENCE ITEM: a1\n- EXPERIENCE ITEM: b2\n- EXPERIENCE ITEM: c3', { maxItems: 2 }), ['a1', 'b2']);
  });

  it('every item is one storable line', () => {
    const items = parseExperienceItems('- EXPERIENCE ITEM: tab\there\u0000nul \ud800 lone\u2028- EXPERIENCE ITEM: second');
    assert.equal(items.length, 2);
    for (const i of items) { assert.ok(!/[\n\r\u0000]/.test(i)); assert.ok(i.isWellFormed()); }
  });
});

describe('accumulating one pool slot', () => {
  const words = (t: string): number => t.split(' ').length;

  it('appends, then drops the oldest items until within the budget (the cap keeps the newest)', () => {
    let state: SlotState = emptySlot();
    const all: string[][] = [['a1 a2 a3', 'b1 b2 b3'], ['c1 c2 c3 c4'], ['d1 d2']];
    const r1 = accumulateSlot(state, all[0]!, { tokenBudget: 10, countTokens: words });
    assert.deepEqual(r1.added.map((i) => i.tokens), [3, 3]);
    assert.deepEqual(r1.dropped, []);
    state = r1.state;
    const r2 = accumulateSlot(state, all[1]!, { tokenBudget: 10, countTokens: words });
    assert.deepEqual(slotTexts(r2.state), ['a1 a2 a3', 'b1 b2 b3', 'c1 c2 c3 c4']);
    const r3 = accumulateSlot(r2.state, all[2]!, { tokenBudget: 10, countTokens: words });
    assert.deepEqual(slotTexts(r3.state), ['b1 b2 b3', 'c1 c2 c3 c4', 'd1 d2']);
    assert.deepEqual(r3.dropped.map((i) => i.text), ['a1 a2 a3']);
    assert.equal(slotTokens(r3.state), 9);
    // Pure: the earlier states are untouched.
    assert.deepEqual(slotTexts(r2.state), ['a1 a2 a3', 'b1 b2 b3', 'c1 c2 c3 c4']);
    assert.deepEqual(slotTexts(state), ['a1 a2 a3', 'b1 b2 b3']);
  });

  it('an item larger than the budget is appended and dropped at once; repeats of held items are skipped', () => {
    const s = accumulateSlot(emptySlot(), ['x y'], { tokenBudget: 3, countTokens: words }).state;
    const big = accumulateSlot(s, ['one two three four'], { tokenBudget: 3, countTokens: words });
    assert.equal(big.added.length, 1);
    assert.deepEqual(big.state.items, []);
    assert.deepEqual(big.dropped.map((i) => i.text), ['x y', 'one two three four']);
    const rep = accumulateSlot(s, ['X  Y', 'z', 'z'], { tokenBudget: 3, countTokens: words });
    assert.deepEqual(rep.added.map((i) => i.text), ['z']);
    assert.throws(() => accumulateSlot(s, ['q'], { tokenBudget: 0, countTokens: words }), RangeError);
  });

  it('agrees with the projection\'s accumulate rule over a sequence of trajectories', () => {
    const outputs = ['a b c', 'd e', 'f g h i', 'j', 'k l m n o p', 'q r'].map((t) => [t]);
    let state = emptySlot();
    const pool = { taskId: '', modelVersion: 'v0', slot: 0, items: [] as KnowledgeItem[] };
    outputs.forEach((texts, n) => {
      const r = accumulateSlot(state, texts, { tokenBudget: 8, countTokens: approximateTokens });
      state = r.state;
      accumulate(pool, r.added.map((i) => ({ itemId: i.id, taskId: '', modelVersion: 'v0', slot: 0, seq: n, text: i.text, tokens: i.tokens, sourceInteractionIds: [], eventId: 'e' })), 8);
      assert.deepEqual(state.items.map((i) => i.id), pool.items.map((i) => i.itemId));
    });
    assert.deepEqual(slotTexts(state), ['k l m n o p', 'q r']);
    assert.equal(renderPool(pool), `${ITEM_MARKER}k l m n o p\n${ITEM_MARKER}q r`);
  });
});

describe('the KnowledgeExtracted event', () => {
  const ctx = { extractingModelVersion: 'qwen3-1.7b-r0', poolSlot: 3, seed: 1003, sourceInteractionIds: ['lake-1'] };

  it('builds data that validates against the schema, with deterministic ids and token counts', () => {
    const r = accumulateSlot(emptySlot(), parseExperienceItems('- EXPERIENCE ITEM: Avoid H cells.\n- EXPERIENCE ITEM: G is the goal.'),
      { tokenBudget: 2048, countTokens: approximateTokens, idFor: eventItemIdFor(ctx) });
    const data = toKnowledgeExtractedEvent({ ...ctx, tokenBudget: 2048, items: r.added });
    assert.deepEqual(validateEventData('KnowledgeExtracted', 1, data), data);
    assert.deepEqual(data.items.map((i) => i.id), r.added.map((i) => i.id), 'the slot state carries the event\'s ids');
    assert.deepEqual(data.items.map((i) => i.tokens), [approximateTokens('Avoid H cells.'), approximateTokens('G is the goal.')]);
    assert.equal(data.seed, 1003);
    assert.equal(data.tokenBudget, 2048);
    assert.deepEqual(data.sourceInteractionIds, ['lake-1']);
    const again = toKnowledgeExtractedEvent({ ...ctx, tokenBudget: 2048, items: ['Avoid H cells.', 'G is the goal.'] });
    assert.deepEqual(again, data, 'the same extraction gives the same data and ids');
    assert.equal(knowledgeExtractedEventId(again), knowledgeExtractedEventId(data));
    assert.match(data.items[0]!.id, /^[0-9a-f]{64}$/);
    assert.notEqual(data.items[0]!.id, data.items[1]!.id);
  });

  it('ids differ by slot, model version and source interaction', () => {
    const base = experienceItemId(ctx, 0);
    assert.equal(experienceItemId({ ...ctx }, 0), base);
    assert.notEqual(experienceItemId({ ...ctx, poolSlot: 4 }, 0), base);
    assert.notEqual(experienceItemId({ ...ctx, extractingModelVersion: 'qwen3-1.7b-r1' }, 0), base);
    assert.notEqual(experienceItemId({ ...ctx, sourceInteractionIds: ['lake-2'] }, 0), base);
    assert.notEqual(experienceItemId(ctx, 1), base);
  });

  it('omits the seed when none is given and rejects data the schema refuses', () => {
    const { seed: _seed, ...noSeed } = ctx;
    const data = toKnowledgeExtractedEvent({ ...noSeed, tokenBudget: 100, items: [{ text: 'x', tokens: 5 }] });
    assert.ok(!('seed' in data));
    assert.equal(data.items[0]!.tokens, 5);
    assert.throws(() => toKnowledgeExtractedEvent({ ...ctx, tokenBudget: 100, items: [] }), ValidationError);
    assert.throws(() => toKnowledgeExtractedEvent({ ...ctx, tokenBudget: 100, items: ['two\nlines'] }), ValidationError);
    assert.throws(() => toKnowledgeExtractedEvent({ ...ctx, extractingModelVersion: 'bad version', tokenBudget: 100, items: ['x'] }), ValidationError);
  });
});

describe('teacher and student prompts', () => {
  const situation = 'Current board:\nP _ _\n_ H _\n_ _ G\n\nYour next action:';
  it('puts the knowledge and the guess note before the situation, which stays verbatim at the end', () => {
    const knowledge = `${ITEM_MARKER}Avoid H cells.\n${ITEM_MARKER}G is the goal.`;
    const t = teacherPrompt(knowledge, situation);
    assert.ok(t.indexOf(knowledge) >= 0);
    assert.ok(t.indexOf(knowledge) < t.indexOf(situation));
    assert.ok(t.indexOf(KNOWLEDGE_GUESS_NOTE) > t.indexOf(knowledge) && t.indexOf(KNOWLEDGE_GUESS_NOTE) < t.indexOf(situation));
    assert.match(KNOWLEDGE_GUESS_NOTE, /guess/);
    assert.match(KNOWLEDGE_GUESS_NOTE, /incomplete or wrong/);
    assert.ok(t.endsWith(situation));
    assert.equal(studentPrompt(situation), situation);
    assert.ok(!studentPrompt(situation).includes('EXPERIENCE'));
  });
  it('with no knowledge the teacher sees the student prompt', () => {
    assert.equal(teacherPrompt('  \n', situation), situation);
  });
});

describe('the model version guard', () => {
  it('passes for the same version and names both versions otherwise', () => {
    assert.doesNotThrow(() => assertSameModelVersion('qwen3-1.7b-r2', 'qwen3-1.7b-r2'));
    assert.throws(() => assertSameModelVersion('qwen3-1.7b-r3', 'qwen3-1.7b-r2'), (e: unknown) => {
      assert.ok(e instanceof ModelVersionMismatchError);
      assert.match(e.message, /qwen3-1\.7b-r3/);
      assert.match(e.message, /qwen3-1\.7b-r2/);
      assert.match(e.message, /same model version/);
      return true;
    });
    assert.throws(() => assertSameModelVersion('', ''), ModelVersionMismatchError);
  });
});

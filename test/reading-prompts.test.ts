/**
 * Reading prompts in a round's plan (round-plan.ts, reading-prompts.ts): the share of each step's
 * examples that holds the student to the round-start version on prompts whose context it must keep
 * reading. Without them (or at share 0) the plan is exactly the one drawn before; the torch
 * trainer's job carries the same plan as the tfjs trainer's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEPLOYED_COMPANY_SEEDS } from '../src/envs/seed-ranges.ts';
import { drawCompany } from '../src/envs/support-desk/company.ts';
import { FACTS, statedValues } from '../src/envs/support-desk/facts.ts';
import { KNOWLEDGE_HEADER } from '../src/extraction/teacher-prompt.ts';
import { loadTokenizer } from '../src/model/formats/tokenizer.ts';
import { promptIds, userPrompt } from '../src/model/inference/chat-prompt.ts';
import { DESK_TASK_NAME, loadTasks } from '../src/tasks/task-config.ts';
import { EXTRACTION_READING_PROMPTS, extractionReadingPrompts, READING_PROMPTS, readingOf, readingPromptsFor } from '../src/tasks/reading-prompts.ts';
import { trainingFor } from '../src/tasks/task-training.ts';
import { retainedLakeWorlds } from '../src/tasks/lake-reading-prompts.ts';
import { gameByName } from '../src/envs/games.ts';
import { DEFAULT_ROUND_TRAINING, checkRoundTrainingOptions } from '../src/trainer/opcd-round.ts';
import { planRound, readingExamples } from '../src/trainer/round-plan.ts';
import { buildTorchJob } from '../src/trainer/torch-job.ts';

const MODEL = 'models/oeld-desk';
const DEFAULTS = { minInteractions: 1, maxRetentionKl: 1, anchorPromptsFile: 'config/anchor-prompts.jsonl' };
const [desk, logs, lake] = loadTasks([DESK_TASK_NAME, 'support', 'frozenlake'], undefined, DEFAULTS);
const options = { ...DEFAULT_ROUND_TRAINING, steps: 3, batchSize: 8, maxNewTokens: 8, knowledgePlacement: 'system' as const };
const situations = ['How long is the refund window?', 'Do you ship to Canada?', 'What does the pro plan cost?'].map(userPrompt);
const pool = ['- EXPERIENCE ITEM: The refund window is 30 days.', '- EXPERIENCE ITEM: The pro plan costs $20 a month.'];

describe('reading prompts', () => {
  it('are other companies\' conversations opening with all their facts in the system message, the same for the same seed', () => {
    const reading = readingPromptsFor(desk!, 7);
    assert.equal(reading.length, READING_PROMPTS);
    assert.deepEqual(readingPromptsFor(desk!, 7), reading, 'pure: a round re-derives');
    assert.notDeepEqual(readingPromptsFor(desk!, 8), reading, 'another round seed, other prompts');
    const deployed = drawCompany(DEPLOYED_COMPANY_SEEDS.start);
    for (const p of reading) {
      assert.deepEqual(p.map((m) => m.role), ['system', 'user']);
      const system = p[0]!.content;
      assert.ok(system.startsWith('You are the support assistant of '), system);
      assert.ok(system.includes(KNOWLEDGE_HEADER));
      assert.equal(system.split('\n').filter((l) => l.startsWith('- EXPERIENCE ITEM: ')).length, FACTS.length, 'every fact of the company');
      assert.ok(!system.includes(deployed.name), 'never the deployed company');
    }
    assert.ok(new Set(reading.map((p) => p[0]!.content)).size > 60, 'many companies');
    assert.deepEqual(readingPromptsFor(logs!, 7), [], 'a chat task of logs has none');
  });

  it('of FrozenLake are boards of the familiar worlds other than the watched lake-XO, partway along a shortest path', () => {
    const reading = readingPromptsFor(lake!, 7);
    assert.equal(reading.length, READING_PROMPTS);
    assert.deepEqual(readingPromptsFor(lake!, 7), reading, 'pure: a round re-derives');
    assert.notDeepEqual(readingPromptsFor(lake!, 8), reading, 'another round seed, other boards');
    assert.deepEqual(retainedLakeWorlds().map((w) => w.hole + w.goal).sort(), ['TS', 'WM'], 'the familiar worlds but XO');
    const pairs = new Set<string>();
    const turns = new Set<number>();
    for (const p of reading) {
      assert.deepEqual(p.map((m) => m.role), ['user']);
      const text = p[0]!.content;
      assert.ok(text.startsWith(gameByName('frozenlake').hiddenRulesPrompt), 'the game\'s own instruction');
      const board = /Current board:\n([\s\S]*?)\n\nActions taken so far: (.*)\n/.exec(text);
      assert.ok(board, text);
      const letters = [...new Set(board[1]!.replace(/[^A-Z]/g, ''))].filter((l) => l !== 'P').sort().join('');
      assert.ok(['ST', 'MW'].includes(letters), `one retained world's letters, got ${letters}`);
      assert.equal(board[1]!.split('P').length, 2, 'one player');
      pairs.add(letters);
      turns.add(board[2] === '(none yet)' ? 0 : board[2]!.split(' ').length);
      // The watched world keeps measuring what a round did not train.
      assert.ok(!/[XO]/.test(board[1]!) && !/[HG]/.test(board[1]!), 'neither lake-XO nor FrozenLake');
    }
    assert.deepEqual([...pairs].sort(), ['MW', 'ST'], 'both worlds');
    assert.deepEqual([...turns].sort(), [0, 1, 2, 3], 'first to fourth turns');
    assert.deepEqual(readingPromptsFor({ ...lake!, game: 'frozenlake' }, 7), reading, 'the task as RoundStarted records it (the game by name), as oeld rederive reads it');
    assert.deepEqual(readingPromptsFor(logs!, 7), [], 'a chat task of logs has none');
    assert.deepEqual(readingPromptsFor(loadTasks(['sokoban'], undefined, DEFAULTS)[0]!, 7), [], 'nor another game');
  });

  it('with readingExtraction, add extraction prompts over other companies\' corrected conversations, the first 64 unchanged', () => {
    const extraction = extractionReadingPrompts(7);
    assert.equal(extraction.length, EXTRACTION_READING_PROMPTS);
    assert.deepEqual(extractionReadingPrompts(7), extraction, 'pure');
    const deployed = drawCompany(DEPLOYED_COMPANY_SEEDS.start);
    for (const p of extraction) {
      assert.deepEqual(p.map((m) => m.role), ['user']);
      const text = p[0]!.content;
      assert.ok(text.includes('EXPERIENCE ITEM'), 'the extraction prompt a round writes');
      assert.ok(text.includes('The customer did not accept 1 of 1 answers.'), text);
      assert.ok(!text.includes(deployed.name));
    }
    // The customer's correction states a value, and the assistant's answer another one.
    const stated = extraction.filter((p) => FACTS.some((f) => { const vs = statedValues(f, p[0]!.content); return new Set(vs).size >= 2; })).length;
    assert.ok(stated >= EXTRACTION_READING_PROMPTS / 2, `${stated} of ${EXTRACTION_READING_PROMPTS} show two values of a fact`);
    const withExtraction = readingOf(desk!, { seed: 7, readingShare: 0.25, readingExtraction: true }).reading!;
    assert.equal(withExtraction.length, READING_PROMPTS + EXTRACTION_READING_PROMPTS);
    assert.deepEqual(withExtraction.slice(0, READING_PROMPTS), readingPromptsFor(desk!, 7), 'the reading prompts of a round without it are the same');
    assert.deepEqual(withExtraction.slice(READING_PROMPTS), extraction);
  });

  it('go into a round\'s job only where its training takes a share of them', () => {
    assert.deepEqual(readingOf(desk!, { seed: 1 }), {});
    assert.deepEqual(readingOf(desk!, { seed: 1, readingShare: 0 }), {});
    assert.equal(readingOf(desk!, { seed: 1, readingShare: 0.25 }).reading?.length, READING_PROMPTS);
    assert.deepEqual(readingOf(lake!, { seed: 1 }), {});
    assert.deepEqual(readingOf(lake!, { seed: 1, readingShare: 0.25, readingExtraction: true }).reading, readingPromptsFor(lake!, 1), 'FrozenLake\'s boards, never the desk\'s extraction prompts');
    assert.deepEqual(readingOf(logs!, { seed: 1, readingShare: 0.25 }), {}, 'a task without reading prompts');
    assert.equal(trainingFor({ training: { readingShare: 0.25 } }, DEFAULT_ROUND_TRAINING).readingShare, 0.25);
    assert.throws(() => checkRoundTrainingOptions({ ...DEFAULT_ROUND_TRAINING, readingShare: 0.95 }), /readingShare must be from 0 to 0\.9, got 0\.95/);
  });

  it('take the share of each step rounded, leave at least one logged prompt, and none without prompts', () => {
    assert.equal(readingExamples(32, 0.25, 64), 8);
    assert.equal(readingExamples(8, 0.25, 64), 2);
    assert.equal(readingExamples(2, 0.9, 64), 1);
    assert.equal(readingExamples(1, 0.5, 64), 0);
    assert.equal(readingExamples(32, 0.25, 0), 0);
    assert.equal(readingExamples(32, 0, 64), 0);
  });

  it('plan the same steps as before at share 0, and with a share put the reading prompts in, read by the teacher as the student reads them', async () => {
    const tokenizer = await loadTokenizer(MODEL);
    const reading = readingPromptsFor(desk!, 3);
    const before = planRound(tokenizer, 1024, situations, pool, options);
    assert.deepEqual(planRound(tokenizer, 1024, situations, pool, options, reading), before, 'no share: reading prompts change nothing');
    assert.deepEqual(planRound(tokenizer, 1024, situations, pool, { ...options, readingShare: 0 }, reading), before);
    const withReading = planRound(tokenizer, 1024, situations, pool, { ...options, readingShare: 0.25 }, reading);
    const readingIds = new Set(reading.map((p) => promptIds(tokenizer, p).join(',')));
    for (const step of withReading) {
      assert.equal(step.examples.length, 8);
      const own = step.examples.filter((e) => readingIds.has(e.studentIds.join(',')));
      assert.equal(own.length, 2, 'a quarter of the batch');
      for (const e of own) assert.deepEqual(e.teacherIds, e.studentIds, 'no pool knowledge for the teacher');
      for (const e of step.examples.filter((x) => !own.includes(x))) assert.ok(e.teacherIds.length > e.studentIds.length, 'logged prompts: the teacher reads the pool');
    }
    assert.equal(new Set(withReading.flatMap((s) => s.examples.slice(6).map((e) => e.studentIds.join(',')))).size, 6, 'different reading prompts across steps');
  });

  it('reach the torch trainer in its job\'s plan, the same plan the tfjs trainer executes', async () => {
    const tokenizer = await loadTokenizer(MODEL);
    const reading = readingPromptsFor(desk!, 3);
    const o = { ...options, readingShare: 0.25 };
    const { torchJob } = await buildTorchJob({ version: 'v', dir: MODEL, situations, knowledgeTexts: pool, reading, options: o, outDir: '/unused', checkpointDir: '/unused' }, '/unused/w.safetensors', { device: 'cpu' });
    const { readFileSync } = await import('node:fs');
    const maxPositions = (JSON.parse(readFileSync(`${MODEL}/config.json`, 'utf8')) as { max_position_embeddings: number }).max_position_embeddings;
    assert.deepEqual(torchJob.plan, planRound(tokenizer, maxPositions, situations, pool, o, reading));
  });
});

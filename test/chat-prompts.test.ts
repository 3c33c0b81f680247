import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { readAnchorPrompts } from '../src/evaluation/anchor-prompts.ts';
import { KNOWLEDGE_HEADER, teacherMessages, teacherPrompt } from '../src/extraction/teacher-prompt.ts';
import { CUT_MARK, fitPrompt, promptIds, userPrompt, type Prompt } from '../src/model/inference/chat-prompt.ts';
import { loadTokenizer, type Tokenizer } from '../src/model/formats/tokenizer.ts';
import { isHeldOut, splitBucket } from '../src/tasks/held-out.ts';
import { DESK_TASK_DEFAULTS, loadTasks, parseTaskIds } from '../src/tasks/task-config.ts';
import { trainingFor } from '../src/tasks/task-training.ts';
import { checkRoundTrainingOptions, DEFAULT_ROUND_TRAINING } from '../src/trainer/opcd-round.ts';
import { DEFAULT_TASK_ID, type ChatTask } from '../src/tasks/task.ts';
import { DEPLOYED_COMPANY_SEEDS } from '../src/envs/seed-ranges.ts';
import { decodeInteraction } from '../src/ingest/decode-interaction.ts';
import { trainedTrajectories, trainingPrompts } from '../src/tasks/training-prompts.ts';
import { EXTRACTION_READING_PROMPTS, READING_PROMPTS, readingOf } from '../src/tasks/reading-prompts.ts';
import { fitWithKnowledge } from '../src/trainer/fit-situations.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const DEFAULTS = { minInteractions: 64, maxRetentionKl: 0.05, anchorPromptsFile: 'config/anchor-prompts.jsonl' };

describe('chat prompts', () => {
  let tokenizer: Tokenizer;
  before(async () => { tokenizer = await loadTokenizer(await makeTinyModel()); });

  it('a game situation gives the teacher exactly the prompt it had before tasks (the game\'s figures cannot move)', () => {
    const situation = 'You are at S. Which way?';
    const knowledge = '- EXPERIENCE ITEM: G is the goal.';
    assert.deepEqual(teacherMessages(knowledge, userPrompt(situation), 'user'), [{ role: 'user', content: teacherPrompt(knowledge, situation) }]);
    assert.deepEqual(promptIds(tokenizer, userPrompt(situation)), tokenizer.encode(tokenizer.applyChatTemplate([{ role: 'user', content: situation }], { addGenerationPrompt: true })));
  });

  it('a chat\'s teacher reads the knowledge in the system message, its own or a new one; the student never does', () => {
    const chat: Prompt = [{ role: 'system', content: 'You are the support desk of Acme.' }, { role: 'user', content: 'How long is the refund window?' }];
    const t = teacherMessages('- EXPERIENCE ITEM: refunds within 30 days', chat, 'system');
    assert.equal(t.length, 2);
    assert.ok(t[0]!.content.startsWith('You are the support desk of Acme.\n\n' + KNOWLEDGE_HEADER));
    assert.ok(t[0]!.content.includes('refunds within 30 days'));
    assert.deepEqual(t[1], chat[1]);
    const bare = teacherMessages('- EXPERIENCE ITEM: x', [chat[1]!], 'system');
    assert.equal(bare[0]!.role, 'system');
    assert.deepEqual(bare[1], chat[1]);
    assert.deepEqual(teacherMessages('  ', chat, 'system'), chat, 'no knowledge: the student\'s prompt');
    assert.throws(() => teacherMessages('k', [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }], 'user'), /ends with a user message, not assistant/);
  });

  it('a logged chat gives one training prompt per assistant turn: the conversation before it', () => {
    const messages = [
      { role: 'system' as const, content: 'sys' },
      { role: 'user' as const, content: 'q1' },
      { role: 'assistant' as const, content: 'a1' },
      { role: 'user' as const, content: 'No, that is wrong.' },
      { role: 'tool' as const, content: '{"ok":true}', name: 'lookup' },
      { role: 'assistant' as const, content: 'a2' },
      { role: 'user' as const, content: 'thanks' },
    ];
    const prompts = trainingPrompts({ messages });
    assert.deepEqual(prompts.map((p) => p.map((m) => m.content)), [['sys', 'q1'], ['sys', 'q1', 'a1', 'No, that is wrong.', '{"ok":true}']]);
    assert.equal(prompts[1]![4]!.name, 'lookup');
    assert.deepEqual(trainingPrompts({ messages: [{ role: 'system', content: 's' }, { role: 'assistant', content: 'hello' }] }), [], 'an assistant turn that answers no one is not a prompt');
    assert.deepEqual(trainingPrompts({ turns: [{ prompt: 'p1', response: 'r' }, { prompt: 'p2', response: 'r' }] }), [userPrompt('p1'), userPrompt('p2')]);
  });

  it('fits a long conversation from the left: the system message stays, the oldest messages go, then the newest message\'s beginning', () => {
    const long: Prompt = [{ role: 'system', content: 'You are the support desk.' }];
    for (let i = 0; i < 40; i++) long.push({ role: 'user', content: `question number ${i} about the refund window` }, { role: 'assistant', content: `answer number ${i}` });
    long.push({ role: 'user', content: 'the last question' });
    const full = promptIds(tokenizer, long).length;
    const max = Math.floor(full / 3);
    const fitted = fitPrompt(tokenizer, long, max);
    assert.ok(fitted.tokens <= max && fitted.tokens === promptIds(tokenizer, fitted.prompt).length, `${fitted.tokens} <= ${max}`);
    assert.equal(fitted.prompt[0]!.content, 'You are the support desk.');
    assert.equal(fitted.prompt.at(-1)!.content, 'the last question');
    assert.equal(fitted.prompt[1]!.role, 'user', 'the kept part opens with the user');
    assert.ok(fitted.droppedMessages > 0);
    // One huge message: its end is kept, marked as cut.
    const huge: Prompt = [{ role: 'system', content: 'sys' }, { role: 'user', content: `${'x '.repeat(5000)}THE END` }];
    const cut = fitPrompt(tokenizer, huge, 200);
    assert.ok(cut.tokens <= 200);
    assert.ok(cut.prompt[1]!.content.startsWith(CUT_MARK) && cut.prompt[1]!.content.endsWith('THE END'));
    assert.equal(cut.prompt[0]!.content, 'sys');
    // A prompt that fits is returned as it is.
    assert.deepEqual(fitPrompt(tokenizer, userPrompt('short'), 1000).prompt, userPrompt('short'));
    assert.throws(() => fitPrompt(tokenizer, userPrompt('x'), 2), /cannot be fitted into 2 tokens/);
  });

  it('fits a prompt beside the reply and its knowledge, exactly, or says which setting to lower', () => {
    const knowledge = '- EXPERIENCE ITEM: ' + 'k '.repeat(50);
    const long: Prompt = [{ role: 'system', content: 's' }, { role: 'user', content: 'y '.repeat(3000) }];
    const fitted = fitWithKnowledge(tokenizer, 1024, long, knowledge, { maxNewTokens: 64, knowledgePlacement: 'system' });
    const teacher = promptIds(tokenizer, teacherMessages(knowledge, fitted.prompt, 'system')).length;
    assert.equal(fitted.teacherIds.length, teacher, 'the ids it returns are the teacher prompt\'s');
    assert.deepEqual(fitted.studentIds, promptIds(tokenizer, fitted.prompt), 'and the student prompt\'s');
    assert.ok(teacher + 64 <= 1024 && teacher + 64 > 1000, `the teacher's prompt fills the room: ${teacher} + 64 of 1024`);
    const short = userPrompt('You are at S. Which way?');
    assert.deepEqual(fitWithKnowledge(tokenizer, 1024, short, knowledge, { maxNewTokens: 24, knowledgePlacement: 'user' }).prompt, short, 'a prompt that fits is unchanged');
    assert.throws(() => fitWithKnowledge(tokenizer, 256, long, 'k '.repeat(2000), { maxNewTokens: 64, knowledgePlacement: 'system' }), /context \(256 tokens\) leaves no room.*lower OELD_KNOWLEDGE_TOKEN_BUDGET/);
  });
});

describe('the held-out split', () => {
  it('is a stable bucket of the interaction id, about the share asked for', () => {
    assert.equal(splitBucket('c-1'), splitBucket('c-1'));
    const ids = Array.from({ length: 5000 }, (_, i) => `chat-${i}`);
    const share = ids.filter((id) => isHeldOut(id, 10)).length / ids.length;
    assert.ok(share > 0.08 && share < 0.12, `10% asked, ${share} held out`);
    assert.equal(ids.filter((id) => isHeldOut(id, 0)).length, 0);
  });
});

describe('task configuration', () => {
  it('makes built-in games game tasks and any other id a chat task, with the defaults', () => {
    const [game, chat] = loadTasks(['frozenlake', 'support'], undefined, DEFAULTS);
    assert.equal(game!.kind, 'game');
    assert.equal(game!.responseTokens, 24);
    assert.equal(game!.knowledgePlacement, 'user');
    assert.equal(chat!.kind, 'chat');
    assert.equal(chat!.knowledgePlacement, 'system');
    assert.equal(chat!.kind === 'chat' && chat!.heldOutPercent, 10);
  });

  it('reads per-task settings from the tasks file and names the task, field and value of a bad one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oeld-tasks-'));
    const file = (o: unknown) => { const f = join(dir, `${Math.random()}.json`); writeFileSync(f, JSON.stringify(o)); return f; };
    const [t] = loadTasks(['support'], file({ support: { responseTokens: 128, templateVariables: { enable_thinking: false }, heldOutPercent: 20 } }), DEFAULTS);
    assert.equal(t!.responseTokens, 128);
    assert.deepEqual(t!.templateVariables, { enable_thinking: false });
    assert.equal(t!.kind === 'chat' && t!.heldOutPercent, 20);
    assert.throws(() => loadTasks(['support'], file({ support: { heldOutPercent: 90 } }), DEFAULTS), /OELD_TASKS_FILE=.*support\.heldOutPercent/);
    assert.throws(() => loadTasks(['support'], file({ support: { responseTokenz: 1 } }), DEFAULTS), /support.*responseTokenz/);
    assert.throws(() => loadTasks(['support'], file({ other: {} }), DEFAULTS), /OELD_TASKS does not name: other/);
    assert.throws(() => loadTasks(['frozenlake'], file({ frozenlake: { heldOutPercent: 10 } }), DEFAULTS), /frozenlake\.heldOutPercent \(10\): task frozenlake is a game; heldOutPercent applies to chat tasks only/);
    assert.throws(() => loadTasks(['frozenlake'], file({ frozenlake: { templateVariables: { enable_thinking: false } } }), DEFAULTS), /frozenlake\.templateVariables .*is a game/);
    assert.equal(loadTasks(['support'], undefined, DEFAULTS)[0]!.knowledgePlacement, 'system', 'a chat task\'s teacher reads the knowledge in the system message, always');
    assert.throws(() => loadTasks(['support'], file({ support: { heldOutPercent: 90 } }), DEFAULTS), /\(got 90\)/, 'the value is named');
    assert.throws(() => loadTasks(['support'], join(dir, 'missing.json'), DEFAULTS), /OELD_TASKS_FILE=.*missing\.json/);
  });

  it('makes the built-in support desk a chat task with its world: the company, and a drift schedule from the tasks file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oeld-tasks-'));
    const file = (o: unknown) => { const f = join(dir, `${Math.random()}.json`); writeFileSync(f, JSON.stringify(o)); return f; };
    const [desk] = loadTasks(['support-desk'], undefined, DEFAULTS) as ChatTask[];
    assert.equal(desk!.kind, 'chat');
    assert.deepEqual(desk!.world, { kind: 'support-desk', companySeed: DEPLOYED_COMPANY_SEEDS.start });
    assert.equal(desk!.responseTokens, 32);
    // Its anchors: FrozenLake situations and other companies' conversations with their facts in context.
    const anchors = readAnchorPrompts(desk!.anchorPromptsFile);
    assert.equal(anchors.length, 16);
    assert.ok(anchors.some((p) => p[0]!.role === 'user' && p[0]!.content.includes('Current board:')));
    assert.ok(anchors.some((p) => p[0]!.role === 'system' && p[0]!.content.includes('EXPERIENCE ITEM: ')));
    const [drifting] = loadTasks(['support-desk'], file({ 'support-desk': { companySeed: 5, driftAfterConversations: 300, driftFacts: 3 } }), DEFAULTS) as ChatTask[];
    assert.deepEqual(drifting!.world, { kind: 'support-desk', companySeed: 5, drift: { afterConversations: 300, facts: 3 } });
    assert.throws(() => loadTasks(['support'], file({ support: { companySeed: 5 } }), DEFAULTS), /support\.companySeed \(5\): applies to the task support-desk only/);
    assert.throws(() => loadTasks(['support-desk'], file({ 'support-desk': { driftFacts: 17 } }), DEFAULTS), /support-desk\.driftFacts.*\(got 17\)/);
  });

  it('gives a task its own round steps and distillation: the desk\'s built-in ones, the tasks file\'s over them, the daemon\'s elsewhere', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oeld-tasks-'));
    const file = (o: unknown) => { const f = join(dir, `${Math.random()}.json`); writeFileSync(f, JSON.stringify(o)); return f; };
    const daemon = { ...DEFAULT_ROUND_TRAINING, steps: 16, method: 'opcd' as const };
    const [lake, desk, support] = loadTasks(['frozenlake', 'support-desk', 'support'], undefined, DEFAULTS);
    assert.deepEqual(lake!.training, { readingShare: 0.25 }, 'FrozenLake keeps the other lake worlds by default');
    assert.equal(support!.training, undefined);
    assert.deepEqual(trainingFor(support!, daemon), daemon, 'a task that sets nothing trains as the daemon says');
    assert.deepEqual(trainingFor(lake!, daemon), { ...daemon, readingShare: 0.25 });
    const deskOwn = { steps: DESK_TASK_DEFAULTS.roundSteps, method: 'opcd-forward', readingShare: 0.25, readingExtraction: true, failedRepeat: 3 };
    assert.deepEqual(desk!.training, deskOwn);
    assert.deepEqual(trainingFor(desk!, daemon), { ...daemon, ...deskOwn });
    const [desk2, lake2] = loadTasks(['support-desk', 'frozenlake'], file({ 'support-desk': { distillation: 'opcd' }, frozenlake: { roundSteps: 24 } }), DEFAULTS);
    assert.deepEqual(trainingFor(desk2!, daemon), { ...daemon, ...deskOwn, method: 'opcd' }, 'the file sets one, the built-in others stay');
    const [off] = loadTasks(['support-desk'], file({ 'support-desk': { readingShare: 0, failedRepeat: 1 } }), DEFAULTS);
    assert.deepEqual(trainingFor(off!, daemon), { ...daemon, ...deskOwn, readingShare: 0, failedRepeat: 1 }, 'the file turns them off');
    assert.deepEqual(readingOf(off!, trainingFor(off!, daemon)), {}, 'readingShare 0: no reading prompts, the extraction ones (on by default) included');
    const [noExtraction] = loadTasks(['support-desk'], file({ 'support-desk': { readingExtraction: false } }), DEFAULTS);
    assert.equal(readingOf(noExtraction!, trainingFor(noExtraction!, daemon)).reading?.length, READING_PROMPTS, 'readingExtraction false: the reading prompts alone');
    assert.equal(readingOf(desk!, trainingFor(desk!, daemon)).reading?.length, READING_PROMPTS + EXTRACTION_READING_PROMPTS, 'by default both');
    assert.deepEqual(trainingFor(lake2!, daemon), { ...daemon, readingShare: 0.25, steps: 24 }, 'a game may set its own steps too');
    assert.deepEqual(trainingFor(loadTasks(['frozenlake'], file({ frozenlake: { readingShare: 0 } }), DEFAULTS)[0]!, daemon), { ...daemon, readingShare: 0 }, 'the file turns FrozenLake\'s off');
    assert.throws(() => loadTasks(['support'], file({ support: { distillation: 'ppo' } }), DEFAULTS), /support\.distillation.*\(got "ppo"\)/);
    assert.throws(() => loadTasks(['support'], file({ support: { roundSteps: 0 } }), DEFAULTS), /support\.roundSteps.*\(got 0\)/);
    assert.equal(loadTasks(['frozenlake'], file({ frozenlake: { readingShare: 0.25 } }), DEFAULTS)[0]!.training?.readingShare, 0.25, 'FrozenLake has reading prompts too (other lake worlds)');
    assert.throws(() => loadTasks(['support'], file({ support: { readingShare: 0.25 } }), DEFAULTS), /support\.readingShare \(0\.25\): applies to the tasks support-desk and frozenlake only/);
    assert.throws(() => loadTasks(['frozenlake'], file({ frozenlake: { readingExtraction: true, readingShare: 0.25 } }), DEFAULTS), /frozenlake\.readingExtraction \(true\): applies to the task support-desk only/);
    assert.throws(() => loadTasks(['support-desk'], file({ 'support-desk': { readingShare: 0.95 } }), DEFAULTS), /support-desk\.readingShare.*\(got 0\.95\)/);
    assert.equal(loadTasks(['support-desk'], file({ 'support-desk': { readingShare: 0.25 } }), DEFAULTS)[0]!.training?.readingShare, 0.25);
    assert.throws(() => loadTasks(['support'], file({ support: { readingExtraction: true } }), DEFAULTS), /support\.readingExtraction \(true\): applies to the task support-desk only/);
    assert.throws(() => loadTasks(['support-desk'], file({ 'support-desk': { readingExtraction: true, readingShare: 0 } }), DEFAULTS), /support-desk\.readingExtraction \(true\): .*readingShare above 0 \(it is 0\)/);
    assert.equal(loadTasks(['support-desk'], file({ 'support-desk': { readingExtraction: true, readingShare: 0.25 } }), DEFAULTS)[0]!.training?.readingExtraction, true);
    assert.equal(trainingFor(loadTasks(['frozenlake'], file({ frozenlake: { failedRepeat: 3 } }), DEFAULTS)[0]!, daemon).failedRepeat, 3, 'any task may weigh its failed trajectories');
    assert.throws(() => loadTasks(['support'], file({ support: { failedRepeat: 9 } }), DEFAULTS), /support\.failedRepeat.*\(got 9\)/);
    assert.throws(() => loadTasks(['support'], file({ support: { failedRepeat: 1.5 } }), DEFAULTS), /support\.failedRepeat.*\(got 1\.5\)/);
    assert.throws(() => checkRoundTrainingOptions({ ...daemon, failedRepeat: 0 }), /failedRepeat must be an integer from 1 to 8, got 0/);
  });

  it('repeats the trajectories whose outcome failed, in place, failedRepeat times; the rest once', () => {
    const t = (id: string, success?: boolean) => ({ id, data: success === undefined ? {} : { outcome: { success, reward: success ? 1 : 0 } } });
    const logs = [t('a', true), t('b', false), t('c'), t('d', false)];
    assert.deepEqual(trainedTrajectories(logs).map((x) => x.id), ['a', 'b', 'c', 'd']);
    assert.deepEqual(trainedTrajectories(logs, 1).map((x) => x.id), ['a', 'b', 'c', 'd']);
    assert.deepEqual(trainedTrajectories(logs, 3).map((x) => x.id), ['a', 'b', 'b', 'b', 'c', 'd', 'd', 'd'], 'no outcome is not a failure');
  });

  it('names the task given twice, and puts an interaction without a taskId in the default task', () => {
    assert.throws(() => parseTaskIds('frozenlake,support,frozenlake'), /task "frozenlake" is named twice/);
    const r = decodeInteraction(Buffer.from(JSON.stringify({ interactionId: 'x', modelVersion: 'base', messages: [{ role: 'user', content: 'hi' }] })), { kind: 'http' }, { maxBytes: 1 << 20, maxDepth: 64 });
    assert.ok(r.ok);
    assert.equal(r.ok && r.event.data.taskId, DEFAULT_TASK_ID);
  });

  it('reads anchor prompts (strings or message lists) and names the line of a bad one', () => {
    const shipped = readAnchorPrompts('config/anchor-prompts.jsonl');
    assert.ok(shipped.length >= 16);
    const dir = mkdtempSync(join(tmpdir(), 'oeld-anchors-'));
    const f = join(dir, 'a.jsonl');
    writeFileSync(f, '"hello"\n\n{"messages":[{"role":"user","content":"hi"}]}\n{"messages":[{"role":"robot","content":"x"}]}\n');
    assert.throws(() => readAnchorPrompts(f), /a\.jsonl, line 4/);
    writeFileSync(f, '');
    assert.throws(() => readAnchorPrompts(f), /has no prompts/);
  });
});

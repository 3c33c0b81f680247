/**
 * One chat round, measured: support conversations of a seeded fictional company, about a third with
 * the customer correcting the assistant, go in through the intake decoder; a round of a chat task
 * extracts (through a stand-in endpoint that writes the value the customer gave: the shipped base
 * model knows only grid worlds and cannot read English chats), trains the shipped base model on
 * the logged conversations, and the chat gate measures the distillation gap on held-out logs
 * before and after, and retention on the anchor prompts. Prints the figures and the gap's ratio
 * to the round-start version's (the baseline, measured in the same run).
 *
 *   npm run bench -- chat-round      (BENCH_CHATS=160, BENCH_CHAT_SEED=1; OELD_ROUND_* as the daemon reads them)
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { migrate } from '../src/db/migrate.ts';
import { createGate } from '../src/evaluation/task-gate.ts';
import { importJsonl } from '../src/ingest/import-jsonl.ts';
import { localEngine } from '../src/engine/local-engine.ts';
import { seededRandom } from '../src/model/network/rng.ts';
import { catchUpProjections } from '../src/operations/catch-up.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { RoundRunner, trained } from '../src/rounds/round-runner.ts';
import { EventStore } from '../src/store/event-store.ts';
import { loadTasks } from '../src/tasks/task-config.ts';
import type { ChatTask, GameTask } from '../src/tasks/task.ts';
import { readAnchorPrompts } from '../src/evaluation/anchor-prompts.ts';
import { Simulator } from '../src/simulator/simulator.ts';
import { DEFAULT_ROUND_TRAINING } from '../src/trainer/opcd-round.ts';
import { benchDatabase, emit, envInt, log } from './lib.ts';

const CHATS = envInt('BENCH_CHATS', 160);
const SEED = envInt('BENCH_CHAT_SEED', 1);
const config = loadConfig(process.env);
const random = seededRandom(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

// The company's facts (drawn from the seed) and what an uninformed assistant says instead.
const FACTS = [
  { q: ['How long do I have to return an item?', 'What is your refund window?', 'Can I still send this back after a few weeks?'], value: `${pick([14, 21, 30, 45, 60, 90])} days`, wrong: '14 days' },
  { q: ['How long is the warranty?', 'What warranty do your products have?'], value: `${pick([6, 12, 18, 24, 36])} months`, wrong: '12 months' },
  { q: ['When is support open?', 'What are your support hours?'], value: pick(['8:00 to 18:00', '9:00 to 17:00', '7:00 to 22:00', 'around the clock']), wrong: '9:00 to 17:00' },
  { q: ['Do you ship abroad?', 'Which countries do you deliver to?'], value: pick(['only inside the EU', 'to 40 countries', 'only within the country', 'worldwide']), wrong: 'worldwide' },
] as const;

function conversation(i: number): string {
  const fact = pick(FACTS);
  const right = random() < 0.4 || fact.value === fact.wrong;
  const answer = right ? fact.value : fact.wrong;
  const messages = [
    { role: 'system', content: 'You are the support assistant of Northwind Supplies.' },
    { role: 'user', content: pick(fact.q) },
    { role: 'assistant', content: `It is ${answer}.` },
    { role: 'user', content: right ? 'Great, thanks.' : `No, it's ${fact.value}, not ${fact.wrong}.` },
    { role: 'assistant', content: right ? 'You are welcome.' : `Sorry, you are right: ${fact.value}.` },
  ];
  return JSON.stringify({ interactionId: `bench-chat-${SEED}-${i}`, modelVersion: 'base', taskId: 'support', messages, outcome: { success: right, ...(right ? {} : { feedback: `the customer corrected: ${fact.value}` }) } });
}

const engine = localEngine();
const training = { ...DEFAULT_ROUND_TRAINING, method: config.distillation, steps: config.roundSteps, batchSize: config.roundBatchSize, learningRate: config.roundLearningRate };
const settings = { trajectoriesPerRound: config.roundTrajectories, poolSlots: config.poolSlots, poolTrajectories: config.poolTrajectories, tokenBudget: config.knowledgeTokenBudget, teacherContext: 'knowledge' as const, training };
const taskDefaults = { minInteractions: config.roundMinInteractions, maxRetentionKl: config.retentionMaxKl, anchorPromptsFile: config.anchorPromptsFile };

/** A database with the shipped base model published and active. */
async function world() {
  const db = await benchDatabase();
  await migrate(db.sql);
  await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
  const store = new EventStore(db.sql);
  await store.append([{ streamId: 'models', events: [
    { id: crypto.randomUUID(), type: 'ModelVersionPublished', data: { version: 'base', path: config.baseModelDir, sha256: '0'.repeat(64) } },
    { id: crypto.randomUUID(), type: 'ModelVersionActivated', data: { version: 'base', reason: 'initial' } },
  ] }]);
  return { db, store };
}

/**
 * The reference for retention: a FrozenLake round of the shipped model (the kind of round that
 * keeps its out-of-distribution world, docs/measured.md), measured on the same anchor prompts.
 */
async function gameRoundRetention(chatTask: ChatTask, dir: string): Promise<{ kl: number; seconds: number }> {
  const { db, store } = await world();
  try {
    const game = loadTasks(['frozenlake'], undefined, taskDefaults)[0] as GameTask;
    await engine.load('base', config.baseModelDir);
    const sim = new Simulator(store, engine, { game: game.game, batchSize: config.simulatorBatch, maxNewTokens: game.responseTokens, maxEventBytes: config.maxEventBytes });
    for (let n = 0; n < config.roundMinInteractions; n += config.simulatorBatch) await sim.playBatch('base');
    await catchUpProjections(db.sql);
    const o = await new RoundRunner({ store, engine, artifactRoot: dir, task: game, settings, gate: null }).run('manual').then(trained);
    await engine.load(o.newVersion, join(dir, 'models', o.newVersion));
    const m = await engine.measureKl(o.newVersion, 'base', readAnchorPrompts(chatTask.anchorPromptsFile).map((prompt) => ({ prompt, knowledge: '' })), {
      maxNewTokens: chatTask.responseTokens, temperature: training.temperature, topK: training.topK, seed: training.seed, batchSize: 8, knowledgePlacement: chatTask.knowledgePlacement,
    });
    return { kl: m.meanKl, seconds: o.totalSeconds };
  } finally {
    await db.drop();
  }
}

const { db, store } = await world();
try {
  const dir = mkdtempSync(join(tmpdir(), 'oeld-bench-chat-'));
  const file = join(dir, 'chats.jsonl');
  writeFileSync(file, `${Array.from({ length: CHATS }, (_, i) => conversation(i)).join('\n')}\n`);
  const imported = await importJsonl(store, file, { maxEventBytes: config.maxEventBytes });
  await catchUpProjections(db.sql);
  const task = loadTasks(['support'], config.tasksFile, taskDefaults)[0] as ChatTask;
  log(`${imported.appended} conversations of a company drawn from seed ${SEED}; facts: ${FACTS.map((f) => f.value).join(', ')}; task ${JSON.stringify(task)}`);
  const runner = new RoundRunner({
    store, engine, artifactRoot: dir, task, settings,
    gate: createGate(engine, store, task, { gameEpisodes: 0, gate: true, gameTolerance: 0, temperature: training.temperature, topK: training.topK, seed: training.seed }),
    // The stand-in endpoint: the customer's correction, as an item.
    extractFnFor: async () => async (prompts) => prompts.map((p) => {
      const m = /No, it's (.+?), not/.exec(p);
      const q = /Turn 1 input: (.+)/.exec(p)?.[1] ?? 'the question';
      return { text: m ? `- EXPERIENCE ITEM: Asked "${q}", answer ${m[1]}.` : '- EXPERIENCE ITEM: Confirm what the customer already knows.', tokens: 16 };
    }),
    onProgress: (p) => { if (p.step && (p.step.step === 1 || p.step.step === p.step.of)) log(`  train step ${p.step.step}/${p.step.of}: loss ${p.step.loss.toFixed(4)}, ${p.step.responseTokens.toFixed(1)} reply tokens`); else if (p.stage === 'evaluate') log(`  evaluate: ${p.message}`); },
  });
  const o = await runner.run('manual').then(trained);
  const c = o.chat!;
  log(`round ${o.baseVersion} -> ${o.newVersion} ${o.activated ? 'activated' : 'refused'} in ${o.totalSeconds.toFixed(1)} s (${Object.entries(o.seconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')})`);
  log(`knowledge items ${o.knowledgeItems}; training prompts ${o.trainingPrompts}; gate: ${o.gateReasons.join('; ')}`);
  log(`distillation gap on held-out logs: ${c.gapBefore?.toFixed(4)} -> ${c.gapAfter?.toFixed(4)} (ratio to the round-start version ${c.gapBefore ? (c.gapAfter! / c.gapBefore).toFixed(3) : '-'}); retention KL ${c.retentionKl.toFixed(4)} (bound ${task.maxRetentionKl})`);
  const reference = await gameRoundRetention(task, dir);
  log(`reference: a FrozenLake round (${reference.seconds.toFixed(1)} s) moves the same anchor prompts by a retention KL of ${reference.kl.toFixed(4)}; the chat round's is ${(c.retentionKl / reference.kl).toFixed(2)}x that`);
  emit({ bench: 'chat-round', chats: imported.appended, items: o.knowledgeItems, trainingPrompts: o.trainingPrompts, gapBefore: c.gapBefore, gapAfter: c.gapAfter, gapRatio: c.gapBefore ? c.gapAfter! / c.gapBefore : null, retentionKl: c.retentionKl, referenceGameRoundRetentionKl: reference.kl, heldOutPrompts: c.heldOutPrompts, activated: o.activated, seconds: o.totalSeconds });
} finally {
  await db.drop();
  await engine.close();
}

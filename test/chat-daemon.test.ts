/**
 * Chat learning in a running daemon with no game involved (OELD_SIMULATOR=off), on the embedded
 * database: support conversations posted to the HTTP intake are counted per task, a threshold
 * round of the chat task extracts from them through an OpenAI-compatible endpoint, consolidates,
 * is gated by the chat gate, and the status says what each task's logs are to the next round.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { startExtractionEndpoint } from './helpers/extraction-endpoint.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const TOKEN = 'chat-daemon-token-0123456789';
const CHATS = 24;

const chat = (i: number, version: string) => JSON.stringify({
  interactionId: `desk-${i}`, modelVersion: version, taskId: 'support',
  messages: [
    { role: 'system', content: 'You are the support desk.' },
    { role: 'user', content: `How long is the warranty? (${i})` },
    { role: 'assistant', content: 'Six months.' },
    { role: 'user', content: i % 2 ? "No, it's 24 months." : 'Thanks.' },
  ],
  outcome: { success: i % 2 === 0 },
});

interface DaemonFixture {
  daemon: DaemonProcess;
  url: string;
  endpoint: Awaited<ReturnType<typeof startExtractionEndpoint>>;
  admin: (path: string, init?: RequestInit) => Promise<Response>;
  modelDir: string;
}

/** A daemon on the embedded database with a tiny base model and a stand-in extraction endpoint, for one describe block. */
function daemonWithChats(o: { served: string | (() => string); answer: (prompt: string) => string; tasks: Record<string, unknown>; env: Record<string, string> }): DaemonFixture {
  const f = {} as DaemonFixture;
  let dataDir = '';
  let modelDir = '';
  before(async () => {
    modelDir = await makeTinyModel();
    f.modelDir = modelDir;
    dataDir = await mkdtemp(join(tmpdir(), 'oeld-chat-daemon-'));
    f.endpoint = await startExtractionEndpoint(o.served, o.answer);
    const tasksFile = join(dataDir, 'tasks.json');
    await writeFile(tasksFile, JSON.stringify(o.tasks));
    f.daemon = spawnDaemon({
      OELD_DATA_DIR: dataDir, OELD_LEARNING: 'true', OELD_BASE_MODEL_DIR: modelDir, OELD_ADMIN_TOKEN: TOKEN, OELD_TASKS_FILE: tasksFile,
      OELD_EXTRACTION_URL: f.endpoint.url, OELD_POOL_SLOTS: '2', OELD_POOL_TRAJECTORIES: '2', OELD_ROUND_STEPS: '2', OELD_ROUND_BATCH_SIZE: '4',
      OELD_PROJECTION_POLL_MS: '100', ...o.env,
    });
    f.url = await f.daemon.url();
    f.admin = (path, init = {}) => fetch(`${f.url}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } });
    await f.daemon.waitForLog(/published and activated the base model/, 60_000);
  });
  after(async () => {
    await f.daemon?.kill('SIGTERM');
    await f.endpoint?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    if (modelDir) await rm(dirname(modelDir), { recursive: true, force: true });
  });
  return f;
}

describe('a daemon learning from chat logs only (OELD_SIMULATOR=off, embedded database)', () => {
  const f = daemonWithChats({
    served: 'base',
    answer: (p) => (p.includes("No, it's 24 months") ? '- EXPERIENCE ITEM: The warranty is 24 months.' : '- EXPERIENCE ITEM: Thank the customer.'),
    tasks: { support: { responseTokens: 6, extractionTokens: 16, heldOutPercent: 20, gatePrompts: 4, maxRetentionKl: 50, minInteractions: 8 } },
    env: { OELD_SIMULATOR: 'off', OELD_TASKS: 'frozenlake,support', OELD_ROUND_TRAJECTORIES: '16', OELD_MAX_ROUNDS: '1' },
  });

  it('publishes the base model as a copy in its artifact store, so upgrading oeld cannot change what base loads', async () => {
    const line = await f.daemon.waitForLog(/published and activated the base model/, 60_000);
    const [, from, to] = /copied from (\S+) to (\S+), sha256/.exec(line)!;
    assert.equal(from, f.modelDir);
    assert.match(to!, /\/artifacts\/models\/base$/);
    assert.deepEqual(await readFile(join(to!, 'model.safetensors')), await readFile(join(from!, 'model.safetensors')));
  });

  it('says at start which model it loaded on which backend, with no simulator to load it', async () => {
    const loaded = await f.daemon.waitForLog(/model base loaded on the \S+ backend/, 60_000);
    const backend = /loaded on the (\S+) backend/.exec(loaded)![1];
    // One log stream: each line once, on stderr (JSON here: not a terminal), nothing on stdout.
    assert.equal(f.daemon.stdout(), '');
    assert.equal(f.daemon.stderr().split('\n').filter((l) => l.includes('published and activated the base model')).length, 1);
    assert.ok(f.daemon.stderr().split('\n').filter(Boolean).every((l) => l.startsWith('{')), 'every stderr line is JSON');
    const metrics = await (await fetch(`${f.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`^oeld_model_backend_info\\{backend="${backend}"\\} 1$`, 'm'));
  });

  it('takes chat logs over HTTP, runs a round of the chat task on them, and accounts for every log per task', async () => {
    const lines = [...Array.from({ length: CHATS }, (_, i) => chat(i, 'base')), chat(900, 'gpt-4o-2024-08-06')];
    const posted = await f.admin('/admin/interactions', { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `${lines.join('\n')}\n` });
    assert.equal(posted.status, 200, await posted.text());
    const line = await f.daemon.waitForLog(/round 1 done in \d+ s \(task support\)|round failed/, 240_000);
    assert.match(line, /round 1 done in \d+ s \(task support\)/, f.daemon.stderr().slice(-3000));
    assert.match(line, /distillation gap on \d+ held-out prompts -?[\d.]+ -> -?[\d.]+/);
    assert.match(line, /retention KL on 16 anchor prompts/);
    assert.ok(f.endpoint.completions() > 0, 'extraction went through OELD_EXTRACTION_URL');

    const status = await (await f.admin('/admin/status')).json() as { tasks: { taskId: string; kind: string | null; usable: number; why: { heldOut: number; usedByRounds: number; olderVersions: number; unknownVersions: Record<string, number> } }[] };
    const support = status.tasks.find((t) => t.taskId === 'support')!;
    assert.equal(support.kind, 'chat');
    assert.equal(support.usable, 0, 'the round used what it could');
    assert.ok(support.why.heldOut > 0, 'some logs are held out for the gate');
    // The round activated its version or not: base's logs are then from an older version, or used by the round.
    assert.equal(support.why.heldOut + support.why.usedByRounds + support.why.olderVersions, CHATS);
    assert.deepEqual(support.why.unknownVersions, { 'gpt-4o-2024-08-06': 1 });
    assert.equal(status.tasks.find((t) => t.taskId === 'frozenlake')!.usable, 0, 'the game task is configured and idle');
    // Gauges read from the database are refreshed at most once a second: a scrape right after an
    // earlier one may show the figures of a second ago (the round here takes under a second).
    let metrics = '';
    const gauge = (name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
    for (let tries = 0; tries < 30; tries++) {
      metrics = await (await fetch(`${f.url}/metrics`)).text();
      if (gauge('oeld_task_interactions', 'task="support",state="held_out"') === support.why.heldOut) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(gauge('oeld_task_interactions', 'task="support",state="held_out"'), support.why.heldOut);
    assert.equal(gauge('oeld_task_interactions', 'task="support",state="unknown_version"'), 1);
    assert.ok(Number.isFinite(gauge('oeld_chat_gate_kl', 'task="support",measurement="retention"')), 'the chat gate\'s retention is exported');
    assert.ok(Number.isFinite(gauge('oeld_chat_gate_kl', 'task="support",measurement="gap_after"')));
    const page = await (await fetch(`${f.url}/status`)).text();
    assert.match(page, /Interactions per task/);
    assert.match(page, /gpt-4o-2024-08-06/);
  });
});

describe('a daemon learning a game and chat logs at once (mixed tasks, the simulator on)', () => {
  // The endpoint serves the version the next round extracts with: base, then whatever round 1 activated.
  let served = 'base';
  const f = daemonWithChats({
    served: () => served,
    answer: (p) => (p.includes('warranty') ? '- EXPERIENCE ITEM: The warranty is 24 months.' : '- EXPERIENCE ITEM: G is the goal.'),
    tasks: { frozenlake: { responseTokens: 6, extractionTokens: 16 }, support: { responseTokens: 6, extractionTokens: 16, heldOutPercent: 20, gatePrompts: 4, maxRetentionKl: 50 } },
    env: {
      OELD_SIMULATOR: 'on', OELD_SIMULATOR_BATCH: '8', OELD_TASKS: 'support,frozenlake', OELD_ROUND_MIN_INTERACTIONS: '8', OELD_ROUND_TRAJECTORIES: '8',
      OELD_EVAL_EPISODES: '4', OELD_ACTIVATION_GATE: 'false', OELD_MAX_ROUNDS: '2', OELD_POOL_SCREEN_EPISODES: '0',
    },
  });

  it('runs one round per task, each from its own interactions into its own knowledge pools', async () => {
    const posted = await f.admin('/admin/interactions', { method: 'POST', body: `${Array.from({ length: CHATS }, (_, i) => chat(i, 'base')).join('\n')}\n` });
    assert.equal(posted.status, 200, await posted.text());
    // Both tasks have their threshold by the first check (the chats at once, the simulator's 8
    // episodes soon after): support, first in OELD_TASKS, gets round 1. Whatever its gate decides,
    // the game's round follows, on the simulator's episodes of the version then active.
    const first = await f.daemon.waitForLog(/round 1 done in \d+ s \(task \w+\)|round failed/, 240_000);
    assert.match(first, /round 1 done in \d+ s \(task support\)/, f.daemon.stderr().slice(-3000));
    const activated = /-> (\S+) \(activated\)/.exec(first);
    if (activated) served = activated[1]!;
    const second = await f.daemon.waitForLog(/round 2 done in \d+ s \(task \w+\)|round failed/, 240_000);
    assert.match(second, /round 2 done in \d+ s \(task frozenlake\)/, f.daemon.stderr().slice(-3000));
    // Two versions were activated after the base: the worker holds one copy of the weights, not three.
    const weights = (await stat(join(f.modelDir, 'model.safetensors'))).size;
    let tensorBytes = 0;
    for (let i = 0; i < 50; i++) {
      tensorBytes = Number(/^oeld_model_tensor_bytes (\S+)$/m.exec(await (await fetch(`${f.url}/metrics`)).text())?.[1] ?? 0);
      if (tensorBytes > 0 && tensorBytes < 1.5 * weights) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(tensorBytes > 0.9 * weights && tensorBytes < 1.5 * weights, `tensor memory ${tensorBytes} B after two activations; one copy of the weights is ${weights} B`);
    assert.match(second, /pass rate [\d.]+% -> [\d.]+%/, 'the game task is gated by its game');
    const report = await (await fetch(`${f.url}/report`)).text();
    assert.match(report, /<td><code>support<\/code><\/td><td class="ok">completed/);
    assert.match(report, /<td><code>frozenlake<\/code><\/td><td class="ok">completed/);
    const status = await (await f.admin('/admin/status')).json() as { knowledge: { pools: number }; tasks: { taskId: string; usable: number; why: { heldOut: number; usedByRounds: number; olderVersions: number } }[] };
    const support = status.tasks.find((x) => x.taskId === 'support')!;
    assert.equal(support.usable + support.why.heldOut + support.why.usedByRounds + support.why.olderVersions, CHATS, 'every chat accounted for');
    assert.equal(status.knowledge.pools, 4, 'two tasks, two pool slots each, never shared');
  });
});

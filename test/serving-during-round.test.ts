/**
 * Answers while a round trains: with OELD_SERVE_WORKER=own (the default) the endpoint answers from
 * a model worker of its own, so a chat completion sent while the learning loop's worker trains is
 * answered before training ends; with `shared` it waits for the worker (the behaviour before, and
 * the setting for a machine without memory for a second copy). Each runs a daemon on the embedded
 * database with a tiny model, a chat task and a stand-in extraction endpoint.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { startExtractionEndpoint } from './helpers/extraction-endpoint.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const ADMIN = 'serving-round-admin-0123456789';
const API = 'serving-round-api-0123456789';
const STEPS = 40;

const chat = (i: number) => JSON.stringify({
  interactionId: `during-${i}`, modelVersion: 'base', taskId: 'support',
  messages: [{ role: 'user', content: `How long is the warranty? (${i})` }, { role: 'assistant', content: 'Six months.' }, { role: 'user', content: "No, it's 24 months." }],
  outcome: { success: false },
});

/** When the daemon logged a line (pino's epoch milliseconds). */
const loggedAt = (line: string): number => (JSON.parse(line) as { time: number }).time;

for (const worker of ['own', 'shared'] as const) {
  describe(`a chat completion sent while a round trains, OELD_SERVE_WORKER=${worker}`, () => {
    let daemon: DaemonProcess;
    let endpoint: Awaited<ReturnType<typeof startExtractionEndpoint>>;
    let url = '';
    let dataDir = '';
    let modelDir = '';
    const ask = async (content: string) => {
      const r = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST', headers: { authorization: `Bearer ${API}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'oeld', messages: [{ role: 'user', content }], max_tokens: 4 }),
      });
      assert.equal(r.status, 200, await r.clone().text());
      return r.json() as Promise<{ model: string }>;
    };

    before(async () => {
      modelDir = await makeTinyModel();
      dataDir = await mkdtemp(join(tmpdir(), 'oeld-serving-round-'));
      endpoint = await startExtractionEndpoint('base', () => '- EXPERIENCE ITEM: The warranty is 24 months.');
      const tasksFile = join(dataDir, 'tasks.json');
      await writeFile(tasksFile, JSON.stringify({ support: { responseTokens: 6, extractionTokens: 16, heldOutPercent: 20, gatePrompts: 4, maxRetentionKl: 50, minInteractions: 8 } }));
      daemon = spawnDaemon({
        OELD_DATA_DIR: dataDir, OELD_LEARNING: 'true', OELD_SIMULATOR: 'off', OELD_BASE_MODEL_DIR: modelDir, OELD_TASKS_FILE: tasksFile, OELD_TASKS: 'frozenlake,support',
        OELD_ADMIN_TOKEN: ADMIN, OELD_API_TOKEN: API, OELD_EXTRACTION_URL: endpoint.url, OELD_POOL_SLOTS: '2', OELD_POOL_TRAJECTORIES: '2',
        OELD_ROUND_STEPS: String(STEPS), OELD_ROUND_BATCH_SIZE: '4', OELD_ROUND_TRAJECTORIES: '16', OELD_MAX_ROUNDS: '1', OELD_PROJECTION_POLL_MS: '100',
        OELD_SERVE_WORKER: worker,
      });
      url = await daemon.url();
      await daemon.waitForLog(/published and activated the base model/, 60_000);
    });
    after(async () => {
      await daemon?.kill('SIGTERM');
      await endpoint?.close();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
      if (modelDir) await rm(dirname(modelDir), { recursive: true, force: true });
    });

    it(worker === 'own' ? 'is answered while training goes on' : 'waits until training is done', async () => {
      assert.equal((await ask('warm up')).model, 'base', 'the endpoint answers before any round');
      const lines = Array.from({ length: 24 }, (_, i) => chat(i));
      const posted = await fetch(`${url}/admin/interactions`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/x-ndjson' }, body: `${lines.join('\n')}\n` });
      assert.equal(posted.status, 200, await posted.text());
      await daemon.waitForLog(/round: train step 2\//, 240_000);
      const answer = await ask('Is it still 6 months?');
      const answeredAt = Date.now();
      assert.equal(answer.model, 'base');
      // Compared by time, not by what the test has read of the daemon's log so far (a pipe may lag).
      const lastStep = loggedAt(await daemon.waitForLog(new RegExp(`round: train step ${STEPS}/`), 240_000));
      if (worker === 'own') {
        assert.ok(answeredAt < lastStep, `answered ${lastStep - answeredAt} ms before training's last step`);
      } else {
        assert.ok(answeredAt >= lastStep, `the shared worker answered only once training was done (${answeredAt - lastStep} ms after its last step)`);
      }
      const done = await daemon.waitForLog(/round 1 done in \d+ s \(task support\)|round failed/, 240_000);
      assert.match(done, /round 1 done/, daemon.stderr().slice(-2000));
    });
  });
}

/**
 * The OpenAI-compatible API of a running daemon (embedded database, a tiny base model, no
 * simulator), called as users call it: with the `openai` npm client for models, chat completions
 * and streaming, with plain HTTP for feedback, interactions and hostile input.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const API_TOKEN = 'api-token-0123456789abcdef';
const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
const RECORDS = new URL('./fixtures/openai-logs/records.jsonl', import.meta.url);

describe('the OpenAI-compatible API of a running daemon', () => {
  let daemon: DaemonProcess;
  let url = '';
  let dataDir = '';
  let modelDir = '';
  let client: OpenAI;
  const post = (path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(`${url}${path}`, { method: 'POST', body, headers: { authorization: `Bearer ${API_TOKEN}`, ...headers } });
  /** The chat task's interactions of the active version: usable for the next round, or held out for its gate (10%, by a hash of the id). */
  const usable = async (): Promise<number> => {
    const r = await fetch(`${url}/admin/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const s = await r.json() as { tasks: { taskId: string; usable: number; why: { heldOut: number } }[] };
    const chat = s.tasks.find((t) => t.taskId === 'chat')!;
    return chat.usable + chat.why.heldOut;
  };

  before(async () => {
    modelDir = await makeTinyModel();
    dataDir = await mkdtemp(join(tmpdir(), 'oeld-openai-api-'));
    daemon = spawnDaemon({
      OELD_DATA_DIR: dataDir, OELD_LEARNING: 'true', OELD_SIMULATOR: 'off', OELD_BASE_MODEL_DIR: modelDir, OELD_ROUND_MIN_INTERACTIONS: '100000',
      OELD_API_TOKEN: API_TOKEN, OELD_ADMIN_TOKEN: ADMIN_TOKEN, OELD_SERVE_MAX_QUEUED: '3', OELD_SERVE_MAX_BATCH: '4', OELD_PROJECTION_POLL_MS: '100',
      OELD_SERVED_MODEL_NAME: 'support-bot',
    });
    url = await daemon.url();
    await daemon.waitForLog(/published and activated the base model/, 60_000);
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: API_TOKEN, maxRetries: 0 });
  });
  after(async () => {
    await daemon?.kill('SIGTERM');
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    if (modelDir) await rm(dirname(modelDir), { recursive: true, force: true });
  });

  it('lists the served name and the active version', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['support-bot', 'base']);
    assert.match(daemon.stderr(), /OpenAI-compatible endpoint: http:\/\/127\.0\.0\.1:\d+\/v1/);
  });

  it('answers a chat completion, records it as an interaction of the version that answered, and takes feedback on it', async () => {
    const before = await usable();
    const r = await client.chat.completions.create({ model: 'support-bot', messages: [{ role: 'system', content: 'You are the desk.' }, { role: 'user', content: 'How long is the warranty?' }], max_tokens: 8, temperature: 0.7, top_p: 0.9 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'base', 'the answer names the version that wrote it');
    assert.equal(typeof r.choices[0]!.message.content, 'string');
    assert.ok(['stop', 'length'].includes(r.choices[0]!.finish_reason));
    assert.ok(r.usage!.prompt_tokens > 0 && r.usage!.completion_tokens <= 8 && r.usage!.total_tokens === r.usage!.prompt_tokens + r.usage!.completion_tokens);
    const feedback = (o: Record<string, unknown>) => post('/v1/feedback', JSON.stringify({ response_id: r.id, ...o }));
    assert.equal((await feedback({ success: false, feedback: 'It is 24 months.' })).status, 201);
    assert.equal((await feedback({ success: false, feedback: 'It is 24 months.' })).status, 200, 'the same feedback again is a no-op');
    const changed = await feedback({ success: true });
    assert.equal(changed.status, 409);
    assert.match(((await changed.json()) as { error: { message: string } }).error.message, /already given/);
    assert.equal((await post('/v1/feedback', JSON.stringify({ response_id: 'chatcmpl-unknown', success: true }))).status, 404);
    assert.equal((await post('/v1/feedback', JSON.stringify({ response_id: r.id }))).status, 400, 'feedback says something');
    await waitFor(async () => (await usable()) === before + 1, 'the exchange is counted for the next round');
  });

  it('streams an answer as server-sent events that add up to it, with usage at the end', async () => {
    // Greedy, so that the streamed text can be compared with the same request answered as JSON.
    const request = { model: 'base', messages: [{ role: 'user' as const, content: 'Where is my order?' }], max_tokens: 10, temperature: 0 };
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const finish: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | undefined;
    let first = true;
    for await (const chunk of stream) {
      assert.equal(chunk.model, 'base');
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        if (first) { assert.equal(c.delta.role, 'assistant'); first = false; }
        text += c.delta.content ?? '';
        finish.push(c.finish_reason ?? null);
      }
    }
    assert.ok(['stop', 'length'].includes(finish.at(-1)!), 'the last choice chunk has the finish reason');
    assert.ok(finish.slice(0, -1).every((f) => f === null));
    const whole = await client.chat.completions.create(request);
    assert.equal(text, whole.choices[0]!.message.content, 'the deltas add up to the answer');
    assert.equal(finish.at(-1), whole.choices[0]!.finish_reason);
    assert.deepEqual(usage, whole.usage);
  });

  it('answers errors as OpenAI clients expect them, with the field and value named', async () => {
    const bad = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'wrong-token-0123456789', maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
    await assert.rejects(client.chat.completions.create({ model: 'base', messages: [{ role: 'user', content: 'x' }], temperature: 7 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /temperature: .*\(got 7\)/.test(e.message));
    await assert.rejects(client.chat.completions.create({ model: 'base', messages: [{ role: 'user', content: 'x' }], n: 2 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /n: oeld answers one choice/.test(e.message));
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && /"gpt-4o" is not served here; served: "support-bot", "base"/.test(e.message));
    await assert.rejects(client.chat.completions.create({ model: 'base', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f' } }] }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /tools: not supported/.test(e.message));
  });

  it('refuses hostile input and keeps serving: wrong content types, huge and malformed bodies, a client that leaves mid-stream', async () => {
    assert.equal((await post('/v1/chat/completions', '{"model":"base"}', { 'content-type': 'text/plain' })).status, 415);
    assert.equal((await post('/v1/chat/completions', '{"model": "base", "messages": [')).status, 400);
    assert.equal((await post('/v1/chat/completions', Buffer.alloc(3 * 1024 * 1024, 0x20))).status, 413);
    assert.equal((await post('/v1/chat/completions', `{"model":"base","messages":${'['.repeat(200)}${']'.repeat(200)}}`)).status, 400);
    // A consumer that reads the first event and hangs up.
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${API_TOKEN}` } }, (res) => {
        res.once('data', () => { req.destroy(); resolve(); });
        res.on('error', () => {});
      });
      req.on('error', () => {});
      req.end(JSON.stringify({ model: 'base', messages: [{ role: 'user', content: 'Tell me everything.' }], max_tokens: 60, stream: true }));
      setTimeout(() => reject(new Error('no first event')), 30_000).unref();
    });
    const r = await client.chat.completions.create({ model: 'base', messages: [{ role: 'user', content: 'Still there?' }], max_tokens: 4 });
    assert.equal(r.model, 'base');
  });

  it('answers 429 with Retry-After once the queue is full, and every admitted request is answered', async () => {
    const body = JSON.stringify({ model: 'base', messages: [{ role: 'user', content: 'Busy?' }], max_tokens: 48, temperature: 1 });
    const responses = await Promise.all(Array.from({ length: 24 }, () => post('/v1/chat/completions', body).catch((e: Error) => { throw new Error(`${e.message}: ${(e.cause as Error)?.message}`); })));
    const statuses = responses.map((r) => r.status);
    assert.ok(statuses.includes(429), `some refused: ${statuses.join(' ')}`);
    assert.ok(statuses.filter((s) => s === 200).length >= 4, `some answered: ${statuses.join(' ')}`);
    assert.ok(statuses.every((s) => s === 200 || s === 429), statuses.join(' '));
    const refused = responses.find((r) => r.status === 429)!;
    assert.match(refused.headers.get('retry-after') ?? '', /^\d+$/);
    assert.equal(((await refused.json()) as { error: { type: string } }).error.type, 'rate_limit_error');
  });

  it('takes logs over POST /v1/interactions: a record, an array or JSON lines, with a result for each, idempotent when retried', async () => {
    const lines = await readFile(RECORDS);
    const first = await post('/v1/interactions', lines, { 'content-type': 'application/x-ndjson' });
    assert.equal(first.status, 200);
    const a = await first.json() as { records: number; appended: number; results: { index: number; status: string; interactionId: string }[] };
    assert.equal(a.records, 6);
    assert.equal(a.appended, 6);
    assert.deepEqual(a.results.map((r) => r.index), [0, 1, 2, 3, 4, 5]);
    assert.equal(a.results[3]!.interactionId, 'chatcmpl-9f2c');
    const again = await (await post('/v1/interactions', lines, { 'content-type': 'application/x-ndjson' })).json() as { appended: number; duplicates: number };
    assert.deepEqual([again.appended, again.duplicates], [0, 6], 'a retried request appends nothing twice');

    const array = [{ interactionId: 'arr-1', modelVersion: 'base', messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] }, { interactionId: 'arr-2', modelVersion: 'base', messages: [{ role: 'wizard', content: 'a' }] }];
    const mixed = await post('/v1/interactions', JSON.stringify(array));
    assert.equal(mixed.status, 207);
    const m = await mixed.json() as { results: { index: number; status: string; reason?: string }[] };
    assert.deepEqual(m.results.map((r) => r.status), ['appended', 'rejected']);
    assert.match(m.results[1]!.reason!, /data\.messages\[0\]\.role: .*\(got "wizard"\)/);
    const one = await post('/v1/interactions', JSON.stringify({ interactionId: 'one-1', modelVersion: 'base', messages: [{ role: 'user', content: 'x' }] }, null, 2));
    assert.equal(one.status, 200, 'one pretty-printed record');
    assert.equal((await post('/v1/interactions', 'x', { 'content-type': 'text/html' })).status, 415);
    assert.equal((await fetch(`${url}/v1/interactions`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status, 401);
  });

  // Last: it changes the active version.
  it('finishes an answer streaming while another version is activated with the version that began it, and answers the next with the new one', async () => {
    const stream = await client.chat.completions.create({ model: 'support-bot', messages: [{ role: 'user', content: 'Tell me a long story' }], max_tokens: 300, temperature: 1, stream: true });
    let chunks = 0;
    let text = '';
    let finish: string | null = null;
    const models = new Set<string>();
    for await (const chunk of stream) {
      models.add(chunk.model);
      for (const c of chunk.choices) { text += c.delta.content ?? ''; finish = c.finish_reason ?? finish; }
      if (++chunks === 2) {
        const r = await fetch(`${url}/admin/models`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ folder: modelDir, version: 'switched', activate: true }) });
        assert.equal(r.status, 201, await r.clone().text());
      }
    }
    assert.ok(chunks > 2, `the answer was still streaming when the version changed (${chunks} chunks)`);
    assert.deepEqual([...models], ['base'], 'every chunk from the version that began the answer');
    assert.ok(finish === 'stop' || finish === 'length', `it ended normally (${finish})`);
    await waitFor(async () => (await client.chat.completions.create({ model: 'support-bot', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 })).model === 'switched', 'the new version answers');
    await waitFor(async () => {
      const r = await fetch(`${url}/admin/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      return JSON.stringify(await r.json()).includes('switched');
    }, 'the status shows the new version');
    assert.ok(text.length > 0);
  });
});

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting until ${what}`);
}

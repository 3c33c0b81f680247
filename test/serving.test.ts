import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel } from '../src/model/formats/checkpoint.ts';
import { loadTokenizer, type Tokenizer } from '../src/model/formats/tokenizer.ts';
import { chatComplete } from '../src/model/inference/chat-policy.ts';
import { heldBackLength, serveBatch, type ServedRow, type ServeRow, type TextDelta } from '../src/model/inference/serve-batch.ts';
import type { Transformer } from '../src/model/network/transformer.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { parseChatRequest } from '../src/serving/chat-request.ts';
import { QueueFullError, ServingQueue } from '../src/serving/serving-queue.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const GREEDY = { temperature: 0, topP: 1, topK: 0 };
const row = (text: string, o: Partial<ServeRow> = {}): ServeRow => ({ messages: [{ role: 'user', content: text }], sampling: GREEDY, maxNewTokens: 12, stop: [], ...o });

describe('holding back text that may still become a stop sequence', () => {
  it('holds the longest tail that begins a stop sequence, and a trailing incomplete character', () => {
    assert.equal(heldBackLength('hello wor', ['world']), 3);
    assert.equal(heldBackLength('hello', ['world']), 0);
    assert.equal(heldBackLength('a\n', ['\n\n', 'END']), 1);
    assert.equal(heldBackLength('abc\uFFFD', []), 1);
    assert.equal(heldBackLength('', ['x']), 0);
  });
});

describe('serving a batch of chat requests with the model', () => {
  let model: Transformer;
  let tokenizer: Tokenizer;
  let dir: string;
  before(async () => {
    await initBackend();
    dir = await makeTinyModel();
    model = loadModel(dir, { trainable: false, id: 'serve-test' }).model;
    tokenizer = await loadTokenizer(dir);
  });
  after(() => { model?.dispose(); rmSync(dirname(dir), { recursive: true, force: true }); });

  it('streams text that adds up to each answer, answers as a lone request would, and keeps each request\'s length', () => {
    const rows = [row('How long is the warranty?'), row('Where is my order?', { maxNewTokens: 3 }), row('Hi', { maxNewTokens: 7 })];
    const streamed = rows.map(() => '');
    const served: ServedRow[] = serveBatch(model, tokenizer, rows, 1, (ds: TextDelta[]) => { for (const d of ds) streamed[d.row] += d.text; });
    served.forEach((s, i) => {
      assert.equal(streamed[i], s.text, `row ${i}: the deltas add up to the answer`);
      assert.ok(s.completionTokens <= rows[i]!.maxNewTokens);
      const alone = chatComplete(model, tokenizer, [rows[i]!.messages], { ...GREEDY, maxNewTokens: rows[i]!.maxNewTokens, seed: 1 })[0]!;
      assert.equal(s.text, alone.text, `row ${i}: greedy in a batch is greedy alone`);
      assert.equal(s.promptTokens, alone.promptIds.length);
      assert.equal(s.finishReason, s.completionTokens === rows[i]!.maxNewTokens && alone.ids.length === rows[i]!.maxNewTokens ? 'length' : 'stop');
    });
  });

  it('ends an answer at a stop sequence, never sending any of it', () => {
    const [free] = serveBatch(model, tokenizer, [row('Where is my order?', { maxNewTokens: 20 })], 1, () => {});
    assert.ok(free!.text.length >= 4, `the untrained model writes something (${JSON.stringify(free!.text)})`);
    const stop = free!.text.slice(2, 4);
    let streamed = '';
    const [cut] = serveBatch(model, tokenizer, [row('Where is my order?', { maxNewTokens: 20, stop: [stop] })], 1, (ds) => { for (const d of ds) streamed += d.text; });
    assert.equal(cut!.text, free!.text.slice(0, free!.text.indexOf(stop)));
    assert.equal(streamed, cut!.text);
    assert.equal(cut!.finishReason, 'stop');
    assert.ok(cut!.completionTokens < free!.completionTokens || free!.completionTokens === 20);
  });
});

/** An engine whose batches take as long as the test says, recording what it was given. */
function fakeEngine() {
  const batches: { version: string; rows: number }[] = [];
  const unloaded: string[] = [];
  let release: (() => void)[] = [];
  return {
    batches, unloaded,
    releaseAll: () => { const r = release; release = []; r.forEach((f) => f()); },
    engine: {
      unload: async (v: string) => { unloaded.push(v); },
      serve: async (version: string, _dir: string, rows: ServeRow[], _seed: number, onDeltas: (d: TextDelta[]) => void) => {
        batches.push({ version, rows: rows.length });
        onDeltas(rows.map((_, i) => ({ row: i, text: `${version}:` })));
        await new Promise<void>((r) => release.push(r));
        return { rows: rows.map((r): ServedRow => ({ text: `${version}:${(r.messages[0]!.content)}`, promptTokens: 1, completionTokens: 1, finishReason: 'stop' })), loadedNow: version === 'v1' };
      },
    },
  };
}
const tick = () => new Promise((r) => setTimeout(r, 5));

describe('the serving queue', () => {
  it('answers the requests that waited together, in batches of at most maxBatch, and refuses past maxQueued', async () => {
    const f = fakeEngine();
    const q = new ServingQueue(f.engine, { maxQueued: 5, maxBatch: 3, active: async () => ({ version: 'v0', path: '/m' }) });
    const first = q.submit(row('a'));
    await tick();
    const waiting = ['b', 'c', 'd', 'e', 'f'].map((t) => q.submit(row(t)));
    assert.throws(() => q.submit(row('g')), (e: unknown) => e instanceof QueueFullError && e.retryAfterSeconds >= 1);
    f.releaseAll(); await tick(); f.releaseAll(); await tick(); f.releaseAll(); await tick();
    const all = await Promise.all([first, ...waiting]);
    assert.deepEqual(all.map((s) => s.result.text), ['a', 'b', 'c', 'd', 'e', 'f'].map((t) => `v0:${t}`));
    assert.deepEqual(f.batches.map((b) => b.rows), [1, 3, 2], 'the first alone (nothing waited), then the waiting ones batched');
  });

  it('answers a request with the version active when its batch starts: a switch while one streams drops nothing', async () => {
    const f = fakeEngine();
    let active = 'v1';
    const q = new ServingQueue(f.engine, { maxQueued: 10, maxBatch: 8, active: async () => ({ version: active, path: `/m/${active}` }) });
    const seen: string[] = [];
    const streaming = q.submit(row('long'), { start: (v) => seen.push(`start ${v}`), text: (t) => seen.push(t) });
    await tick();
    active = 'v2';
    const next = q.submit(row('next'));
    f.releaseAll(); await tick(); f.releaseAll();
    const [a, b] = await Promise.all([streaming, next]);
    assert.equal(a.version, 'v1');
    assert.equal(a.result.text, 'v1:long');
    assert.deepEqual(seen, ['start v1', 'v1:']);
    assert.equal(b.version, 'v2');
    assert.deepEqual(f.unloaded, ['v1'], 'the version the queue loaded is unloaded once it is no longer active');
  });

  it('drops a request whose caller went away while it waited', async () => {
    const f = fakeEngine();
    const q = new ServingQueue(f.engine, { maxQueued: 10, maxBatch: 8, active: async () => ({ version: 'v0', path: '/m' }) });
    const first = q.submit(row('a'));
    await tick();
    let gone = false;
    const abandoned = q.submit(row('b'), { cancelled: () => gone }).then(() => 'answered', (e: Error) => e.message);
    const kept = q.submit(row('c'));
    gone = true;
    f.releaseAll(); await tick(); f.releaseAll();
    await first;
    assert.match(await abandoned, /cancelled before it was answered/);
    assert.equal((await kept).result.text, 'v0:c');
    assert.deepEqual(f.batches.map((b) => b.rows), [1, 1]);
  });
});

describe('a chat-completions request', () => {
  const parse = (body: unknown) => parseChatRequest(body, { defaultMaxTokens: 16, maxTokensLimit: 100 });
  const msgs = [{ role: 'user', content: 'hi' }];
  it('takes OpenAI\'s settings, and refuses what oeld does not do with the field named', () => {
    const r = parse({ model: 'oeld', messages: msgs, temperature: 0.2, top_p: 0.9, max_tokens: 8, stop: 'END', stream: true, stream_options: { include_usage: true }, metadata: { task: 'support' }, user: 'u1' });
    assert.deepEqual(r.row.sampling, { temperature: 0.2, topP: 0.9, topK: 0 });
    assert.equal(r.row.maxNewTokens, 8);
    assert.deepEqual(r.row.stop, ['END']);
    assert.equal(r.taskId, 'support');
    assert.ok(r.stream && r.includeUsage);
    assert.equal(parse({ model: 'oeld', messages: msgs }).row.maxNewTokens, 16);
    assert.throws(() => parse({ model: 'oeld', messages: msgs, n: 2 }), /n: oeld answers one choice per request/);
    assert.throws(() => parse({ model: 'oeld', messages: msgs, temperature: 3 }), /temperature: .*\(got 3\)/);
    assert.throws(() => parse({ model: 'oeld', messages: msgs, max_tokens: 500 }), /max_tokens: at most 100 for this model \(got 500\)/);
    assert.throws(() => parse({ model: 'oeld', messages: msgs, tools: [{ type: 'function' }] }), /tools: not supported/);
    assert.throws(() => parse({ model: 'oeld', messages: [{ role: 'robot', content: 'x' }] }), /messages\[0\]\.role: .*\(got "robot"\)/);
    assert.throws(() => parse({ model: 'oeld', messages: [] }), /messages: /);
    assert.throws(() => parse([1]), /body must be a JSON object/);
  });
});

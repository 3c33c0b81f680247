import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel } from '../src/model/formats/checkpoint.ts';
import { loadTokenizer, type Tokenizer } from '../src/model/formats/tokenizer.ts';
import { chatComplete } from '../src/model/inference/chat-policy.ts';
import { heldBackLength, serveBatch, type ServedRow, type ServeRow, type TextDelta } from '../src/model/inference/serve-batch.ts';
import type { Transformer } from '../src/model/network/transformer.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { parseChatRequest } from '../src/serving/chat-request.ts';
import { QueueFullError, ServingQueue } from '../src/serving/serving-queue.ts';
import { PolicyHost } from '../src/engine/policy-host.ts';
import { WorkerLine } from '../src/engine/worker-line.ts';
import { ContinuousBatch } from '../src/model/inference/continuous-batch.ts';
import { StreamedRows } from '../src/model/inference/streamed-rows.ts';
import { NativeDecoder } from '../src/model/inference/native-decoder.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const GREEDY = { temperature: 0, topP: 1, topK: 0 };
const row = (text: string, o: Partial<ServeRow> = {}): ServeRow => ({ messages: [{ role: 'user', content: text }], sampling: GREEDY, maxNewTokens: 12, stop: [], ...o });

/** The tiny model, loaded to answer (not to train), with its tokenizer and folder. */
async function tinyServingModel(id: string): Promise<{ model: Transformer; tokenizer: Tokenizer; dir: string }> {
  await initBackend();
  const dir = await makeTinyModel();
  return { model: loadModel(dir, { trainable: false, id }).model, tokenizer: await loadTokenizer(dir), dir };
}

describe('holding back text that may still become a stop sequence', () => {
  it('holds the longest tail that begins a stop sequence, and a trailing incomplete character', () => {
    assert.equal(heldBackLength('hello wor', ['world']), 3);
    assert.equal(heldBackLength('hello', ['world']), 0);
    assert.equal(heldBackLength('a\n', ['\n\n', 'END']), 1);
    assert.equal(heldBackLength('abc\uFFFD', []), 1);
    assert.equal(heldBackLength('', ['x']), 0);
  });

  it('holds a trailing space, or what a contraction begins with, where the tokenizer cleans spaces', () => {
    assert.equal(heldBackLength('here ', [], true), 1);
    assert.equal(heldBackLength("isn '", [], true), 2);
    assert.equal(heldBackLength('here', [], true), 0);
    assert.equal(heldBackLength('here ', []), 0, 'nothing to hold where nothing is cleaned');
  });
});

describe('decoding and streaming text with spaces before punctuation', () => {
  const TEXT = "It 's here , and there . Isn 't it ? Yes !";
  /** A copy of the shipped tokenizer, its tokenizer_config.json's clean_up_tokenization_spaces set to `clean` (left out when undefined). */
  const tokenizerWith = async (clean: boolean | undefined): Promise<Tokenizer> => {
    const dir = mkdtempSync(join(tmpdir(), 'oeld-clean-'));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join('models', 'oeld-base', f), join(dir, f));
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    delete config.clean_up_tokenization_spaces;
    if (clean !== undefined) config.clean_up_tokenization_spaces = clean;
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    return loadTokenizer(dir);
  };
  /** The deltas a stream sends for `ids`, one token at a time, and the final text. */
  const stream = (tokenizer: Tokenizer, ids: number[]): { streamed: string; final: string } => {
    const rows = new StreamedRows(tokenizer, [[]]);
    let streamed = '';
    for (const id of ids) { rows.push(0, id); streamed += rows.take().map((d) => d.text).join(''); }
    const final = rows.finish(0, ids);
    streamed += rows.take().map((d) => d.text).join('');
    return { streamed, final };
  };

  it('gives back the text the tokens spell, where the folder does not ask for cleaning (as the shipped models and transformers have it)', async () => {
    for (const clean of [undefined, false]) {
      const tokenizer = await tokenizerWith(clean);
      assert.equal(tokenizer.cleansSpaces, false);
      const ids = tokenizer.encode(TEXT);
      assert.equal(tokenizer.decode(ids), TEXT);
      assert.deepEqual(stream(tokenizer, ids), { streamed: TEXT, final: TEXT });
    }
  });

  it('streams what it answers, no character lost, where the folder asks for cleaning', async () => {
    const tokenizer = await tokenizerWith(true);
    assert.equal(tokenizer.cleansSpaces, true);
    const ids = tokenizer.encode(TEXT);
    const cleaned = "It's here, and there. Isn 't it? Yes!";
    assert.equal(tokenizer.decode(ids), cleaned);
    // Without holding back, the stream sent "It is here " and then lost the comma the cleaning moved.
    assert.deepEqual(stream(tokenizer, ids), { streamed: cleaned, final: cleaned });
  });
});

describe('serving a batch of chat requests with the model', () => {
  let model: Transformer;
  let tokenizer: Tokenizer;
  let dir: string;
  before(async () => { ({ model, tokenizer, dir } = await tinyServingModel('serve-test')); });
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
  let running = 0;
  let most = 0;
  return {
    batches, unloaded, mostAtOnce: () => most,
    releaseAll: () => { const r = release; release = []; r.forEach((f) => f()); },
    engine: {
      unload: async (v: string) => { unloaded.push(v); },
      serve: async (version: string, _dir: string, rows: ServeRow[], _seed: number, onDeltas: (d: TextDelta[]) => void) => {
        batches.push({ version, rows: rows.length });
        running += rows.length;
        most = Math.max(most, running);
        onDeltas(rows.map((_, i) => ({ row: i, text: `${version}:` })));
        await new Promise<void>((r) => release.push(r));
        running -= rows.length;
        return { rows: rows.map((r): ServedRow => ({ text: `${version}:${(r.messages[0]!.content)}`, promptTokens: 1, completionTokens: 1, finishReason: 'stop' })), loadedNow: version === 'v1' };
      },
    },
  };
}
const tick = () => new Promise((r) => setTimeout(r, 5));

describe('the serving queue', () => {
  it('sends a request to the worker at once while fewer than maxBatch run, the rest together when room frees, and refuses past maxQueued', async () => {
    const f = fakeEngine();
    const q = new ServingQueue(f.engine, { maxQueued: 5, maxBatch: 3, active: async () => ({ version: 'v0', path: '/m' }) });
    const running = ['a', 'b', 'c'].map((t) => q.submit(row(t)));
    await tick();
    const waiting = ['d', 'e', 'f', 'g', 'h'].map((t) => q.submit(row(t)));
    assert.equal(q.queued, 5);
    assert.throws(() => q.submit(row('i')), (e: unknown) => e instanceof QueueFullError && e.retryAfterSeconds >= 1);
    f.releaseAll(); await tick(); f.releaseAll(); await tick(); f.releaseAll(); await tick();
    const all = await Promise.all([...running, ...waiting]);
    assert.deepEqual(all.map((s) => s.result.text), ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((t) => `v0:${t}`));
    assert.deepEqual(f.batches.map((b) => b.rows), [1, 1, 1, 1, 1, 1, 1, 1], 'each sent alone as room freed: the worker joins them into its running batch');
    assert.equal(f.mostAtOnce(), 3, 'never more than maxBatch at once');
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
    const q1 = new ServingQueue(f.engine, { maxQueued: 10, maxBatch: 1, active: async () => ({ version: 'v0', path: '/m' }) });
    const first = q1.submit(row('a'));
    await tick();
    let gone = false;
    const abandoned = q1.submit(row('b'), { cancelled: () => gone }).then(() => 'answered', (e: Error) => e.message);
    const kept = q1.submit(row('c'));
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

describe('continuous batching: requests join a running batch between decoding steps', () => {
  let model: Transformer;
  let tokenizer: Tokenizer;
  let dir: string;
  let decoder: NativeDecoder;
  before(async () => {
    ({ model, tokenizer, dir } = await tinyServingModel('continuous-test'));
    decoder = NativeDecoder.for(model)!;
    assert.ok(decoder, 'the native decoder is built (scripts/ensure-cpu-addon.sh)');
  });
  after(() => { NativeDecoder.release(model); model?.dispose(); rmSync(dirname(dir), { recursive: true, force: true }); });

  const SAMPLED = { temperature: 0.9, topP: 0.95, topK: 20 };
  const requests: { rows: ServeRow[]; seed: number }[] = [
    { rows: [row('How long is the warranty?', { maxNewTokens: 16 })], seed: 3 },
    { rows: [row('Where is my order?', { sampling: SAMPLED, maxNewTokens: 14 }), row('Hi', { sampling: SAMPLED, maxNewTokens: 5 })], seed: 4 },
    { rows: [row('Refund?', { maxNewTokens: 3 })], seed: 5 },
    { rows: [row('Tell me about support hours', { sampling: SAMPLED, maxNewTokens: 12 }), row('No tokens', { maxNewTokens: 0 })], seed: 6 },
  ];
  const alone = (r: { rows: ServeRow[]; seed: number }) => serveBatch(model, tokenizer, r.rows, r.seed, () => {});

  it('answers each request as it would be answered alone, whoever joins when, in fewer decoder calls', async () => {
    const batch = new ContinuousBatch(model, tokenizer, decoder);
    const streamed = requests.map((r) => r.rows.map(() => ''));
    const add = (i: number) => batch.add(requests[i]!.rows, requests[i]!.seed, (ds) => { for (const d of ds) streamed[i]![d.row] += d.text; });
    const answers: Promise<ServedRow[]>[] = [add(0), add(1)];
    let steps = 0;
    while (batch.size > 0) {
      batch.step();
      steps++;
      if (steps === 2) answers.push(add(2)); // joins mid-way
      if (steps === 4) answers.push(add(3));
    }
    const served = await Promise.all(answers);
    let aloneCalls = 0;
    served.forEach((rows, i) => {
      assert.deepEqual(rows, alone(requests[i]!), `request ${i}: the answer it gets alone`);
      rows.forEach((r, b) => assert.equal(streamed[i]![b], r.text, `request ${i} row ${b}: the deltas add up to the answer`));
      const one = new ContinuousBatch(model, tokenizer, decoder);
      void one.add(requests[i]!.rows, requests[i]!.seed, () => {});
      while (one.size > 0) one.step();
      aloneCalls += one.forwardCalls;
    });
    assert.ok(served.flat().some((r) => r.completionTokens > 3), 'the untrained model writes something');
    assert.ok(batch.forwardCalls < aloneCalls, `shared steps: ${batch.forwardCalls} decoder calls, ${aloneCalls} one request at a time`);
  });

  it('ends every request with the decoder\'s error and frees every sequence when a step fails', async () => {
    let calls = 0;
    const live = new Set<number>();
    const failing = {
      vocab: decoder.vocab,
      newSequence: (capacity?: number) => { const s = decoder.newSequence(capacity); live.add(s); return s; },
      freeSequence: (s: number) => { assert.ok(live.delete(s), `sequence ${s} freed once`); decoder.freeSequence(s); },
      forward: (t: Int32Array, s: Int32Array, o: Int32Array) => { if (++calls === 4) throw new Error('injected decoder failure'); return decoder.forward(t, s, o); },
    } as unknown as NativeDecoder;
    const batch = new ContinuousBatch(model, tokenizer, failing);
    const answers = requests.slice(0, 2).map((r) => batch.add(r.rows, r.seed, () => {}).then(() => 'answered', (e: Error) => e.message));
    while (batch.size > 0) batch.step();
    assert.deepEqual(await Promise.all(answers), ['injected decoder failure', 'injected decoder failure']);
    assert.equal(live.size, 0, 'no sequence is left allocated');
  });

  it('joins requests sent to the host while its batch runs, and an unload ends the ones in flight with a reason', async () => {
    const host = new PolicyHost();
    try {
      const first = host.serve('v', dir, requests[0]!.rows, requests[0]!.seed, () => {});
      while (host.serving('v') === null) await new Promise((r) => setImmediate(r)); // loading, then the batch runs
      const joined = host.serve('v', dir, requests[1]!.rows, requests[1]!.seed, () => {});
      const long = host.serve('v', dir, [row('a long one', { maxNewTokens: 40 })], 9, () => {});
      const a = await first;
      assert.notEqual(host.serving('v'), null, 'the request that started the batch is answered while the batch goes on');
      const b = await joined;
      assert.deepEqual(a.rows, alone(requests[0]!));
      assert.deepEqual(b.rows, alone(requests[1]!));
      assert.equal(a.loadedNow, true);
      assert.equal(b.loadedNow, false);
      await long;
      await host.serving('v');
      assert.equal(host.serving('v'), null, 'the batch ended with its last row');
      const cut = host.serve('v', dir, [row('long', { maxNewTokens: 40 })], 1, () => {}).then(() => 'answered', (e: Error) => e.message);
      host.unload('v');
      assert.match(await cut, /model v was unloaded while answering/);
    } finally {
      host.dispose();
    }
  });
});

describe('the model worker\'s line', () => {
  /** Answers that finish when the test says; a served one starts its batch at once. */
  function fakeLine() {
    const log: string[] = [];
    const release = new Map<string, () => void>();
    /** The running batch: its version and its end (a request whose name ends with * ends it when released). */
    let batch: { key: string; ended: Promise<void>; end: () => void } | null = null;
    const line = new WorkerLine<{ type: string; key?: string; name: string }>(async (r, onBatch) => {
      log.push(`start ${r.name}`);
      if (r.type === 'serve' && batch === null) {
        let end = () => {};
        const ended = new Promise<void>((res) => { end = res; });
        batch = { key: r.key!, ended, end };
        onBatch?.();
      }
      await new Promise<void>((res) => release.set(r.name, res));
      log.push(`end ${r.name}`);
      if (r.name.endsWith('*')) { const b = batch!; batch = null; b.end(); }
    }, (key) => (batch?.key === key ? batch.ended : null));
    return { log, line, release: async (name: string) => { release.get(name)!(); await tick(); } };
  }

  it('lets served requests join the running batch, but not past other waiting work, and the ones behind it join the next batch', async () => {
    const { log, line, release } = fakeLine();
    line.push({ type: 'serve', key: 'v', name: 's1*' }); // starts the batch (ends it when released)
    line.push({ type: 'serve', key: 'v', name: 's2' }); // joins at once
    line.push({ type: 'complete', key: 'v', name: 'c' }); // waits for the batch
    line.push({ type: 'serve', key: 'v', name: 's3*' }); // waits behind c: joining would starve it
    line.push({ type: 'serve', key: 'v', name: 's4' }); // behind s3: joins s3's batch when it starts
    line.push({ type: 'serve', key: 'w', name: 's5' }); // another version: waits for its turn
    await tick();
    assert.deepEqual(log, ['start s1*', 'start s2']);
    assert.equal(line.waiting, 4);
    await release('s2');
    await release('s1*');
    assert.deepEqual(log.slice(2), ['end s2', 'end s1*', 'start c']);
    await release('c');
    assert.deepEqual(log.slice(5), ['end c', 'start s3*', 'start s4'], 's4 joined the batch s3 started');
    await release('s4');
    await release('s3*');
    assert.deepEqual(log.slice(8), ['end s4', 'end s3*', 'start s5']);
    await release('s5');
    assert.equal(line.waiting, 0);
  });
});

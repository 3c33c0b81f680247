/**
 * The recorder of served exchanges (src/serving/exchange-recorder.ts) against a stand-in store
 * that counts, refuses for content, or is away: nothing is lost while the store takes it, one bad
 * exchange costs only itself, and a database that is away is waited for.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExchangeRecorder, storableText, type ServedExchange } from '../src/serving/exchange-recorder.ts';
import type { EventStore } from '../src/store/event-store.ts';

const exchange = (i: number, reply = `answer ${i}`): ServedExchange => ({
  responseId: `chatcmpl-${i}`, version: 'base', taskId: 'chat', messages: [{ role: 'user', content: `question ${i}` }], reply,
  finishReason: 'stop', usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }, settings: { temperature: 0.7 }, requestedModel: 'oeld',
});

/** A store that keeps what it is given; `refuse` decides per call (trusted or not) whether to throw. */
function fakeStore(refuse: (ids: string[], trusted: boolean) => Error | undefined = () => undefined) {
  const stored: string[] = [];
  const calls: { size: number; trusted: boolean }[] = [];
  const store = {
    append: async (requests: { events: { data: { interactionId: string } }[] }[], options: { trusted?: boolean } = {}) => {
      await new Promise((r) => setTimeout(r, 2));
      const ids = requests.map((r) => r.events[0]!.data.interactionId);
      calls.push({ size: ids.length, trusted: options.trusted === true });
      const err = refuse(ids, options.trusted === true);
      if (err) throw err;
      stored.push(...ids);
      return { appended: ids.map((id) => ({ id })), duplicates: [], conflicts: [] };
    },
  } as unknown as EventStore;
  return { store, stored, calls };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('recording served exchanges', () => {
  it('appends every exchange, in batches, trusted, however flushes and records interleave', async () => {
    const f = fakeStore();
    const r = new ExchangeRecorder(f.store, { flushMs: 5, maxBatch: 100, maxPending: 10_000 });
    for (let i = 0; i < 3; i++) r.record(exchange(i));
    await sleep(30);
    await r.flush(); // nothing waits: this must not stop later flushes
    for (let i = 3; i < 603; i++) { r.record(exchange(i)); if (i % 50 === 0) await sleep(1); }
    await sleep(30);
    for (let i = 603; i < 610; i++) r.record(exchange(i));
    await r.close();
    assert.equal(f.stored.length, 610);
    assert.deepEqual(new Set(f.stored).size, 610);
    assert.ok(f.calls.every((c) => c.size <= 100 && c.trusted), JSON.stringify(f.calls.slice(0, 5)));
    assert.equal(r.dropped, 0);
  });

  it('gathers answers for flushMs into one append, and a stop appends what waits at once', async () => {
    const f = fakeStore();
    const r = new ExchangeRecorder(f.store, { flushMs: 200, maxBatch: 500, maxPending: 10_000 });
    r.record(exchange(0));
    await sleep(60);
    r.record(exchange(1));
    await sleep(60);
    assert.deepEqual(f.stored, [], 'nothing is appended before flushMs has passed since the first answer waited');
    const deadline = performance.now() + 2000;
    while (f.stored.length < 2 && performance.now() < deadline) await sleep(10);
    assert.deepEqual(f.calls.map((c) => c.size), [2], 'both answers in one append');
    r.record(exchange(2));
    const t0 = performance.now();
    await r.close();
    assert.ok(performance.now() - t0 < 150, 'close does not wait for the timer');
    assert.deepEqual(f.stored, ['chatcmpl-0', 'chatcmpl-1', 'chatcmpl-2']);
  });

  it('appends a batch the database refuses for its content one by one, validated, and drops only what still fails', async () => {
    const bad = 'chatcmpl-7';
    const f = fakeStore((ids, trusted) => (ids.includes(bad) && (trusted || ids.length === 1) ? new Error('data.messages[1].content: contains U+0000') : undefined));
    const errors: number[] = [];
    const r = new ExchangeRecorder(f.store, { flushMs: 5, maxBatch: 100, maxPending: 10_000, onError: (_e, dropped) => errors.push(dropped) });
    for (let i = 0; i < 20; i++) r.record(exchange(i));
    await r.close();
    assert.equal(f.stored.length, 19);
    assert.ok(!f.stored.includes(bad));
    assert.equal(r.dropped, 1);
    assert.deepEqual(errors, [1]);
    assert.ok(f.calls.filter((c) => !c.trusted).every((c) => c.size === 1), 'one by one, validated');
  });

  it('waits for a database that is away, and loses nothing', async () => {
    let away = true;
    const f = fakeStore(() => (away ? Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }) : undefined));
    const r = new ExchangeRecorder(f.store, { flushMs: 5, maxBatch: 10, maxPending: 10_000 });
    for (let i = 0; i < 25; i++) r.record(exchange(i));
    await sleep(50);
    assert.equal(f.stored.length, 0);
    away = false;
    await sleep(1200); // the retry comes after at least a second
    assert.equal(f.stored.length, 25);
    assert.equal(r.dropped, 0);
    await r.close();
  });

  it('stores a reply PostgreSQL could not hold with U+FFFD where it could not', () => {
    assert.equal(storableText('a\u0000b\ud800c'), 'a\uFFFDb\uFFFDc');
    assert.equal(storableText('plain'), 'plain');
  });
});

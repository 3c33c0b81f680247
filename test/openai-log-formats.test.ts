import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { decodeInteraction, type DecodeResult } from '../src/ingest/decode-interaction.ts';
import { importJsonl } from '../src/ingest/import-jsonl.ts';
import { renderTrajectory } from '../src/extraction/extraction-prompt.ts';
import { trainingPrompts } from '../src/tasks/training-prompts.ts';
import { DEFAULT_TASK_ID } from '../src/tasks/task.ts';
import { EventStore } from '../src/store/event-store.ts';
import { embeddedDatabase, type TestDatabase } from './helpers/databases.ts';
import { uuidFromKey } from '../src/events/ids.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { Projector } from '../src/projections/projector.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { TrajectoryProjection } from '../src/projections/trajectories/trajectory-projection.ts';
import { feedbackEventId, readTrajectories } from '../src/rounds/round-queries.ts';

/** Six records as OpenAI-style APIs and gateways log them (see the comments in the generator: each shape once). */
const FIXTURE = new URL('./fixtures/openai-logs/records.jsonl', import.meta.url);
const lines = readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => Buffer.from(l));
const LIMITS = { maxBytes: 1 << 20, maxDepth: 64 };
const decoded = (i: number) => {
  const r: DecodeResult = decodeInteraction(lines[i]!, { kind: 'http' }, LIMITS);
  assert.ok(r.ok, `record ${i + 1}: ${r.ok ? '' : r.reason}`);
  return r.event.data;
};

/** Every scalar of a JSON value, as JSON text (a multiset: the same value twice counts twice). */
function leaves(v: unknown, out: string[] = []): string[] {
  if (v !== null && typeof v === 'object') for (const x of Object.values(v)) leaves(x, out);
  else out.push(JSON.stringify(v));
  return out;
}

describe('OpenAI-style chat logs at intake', () => {
  it('accepts every record, and keeps every value each record carries', () => {
    lines.forEach((bytes, i) => {
      const data = decoded(i);
      const have = leaves(data);
      for (const leaf of leaves(JSON.parse(bytes.toString()))) {
        const at = have.indexOf(leaf);
        assert.ok(at >= 0, `record ${i + 1}: ${leaf} was lost`);
        have.splice(at, 1);
      }
    });
  });

  it('reads a tool-calling exchange: null content, tool calls, the tool message and its call id', () => {
    const data = decoded(0);
    const prompts = trainingPrompts(data);
    assert.equal(prompts.length, 2, 'one prompt per assistant turn');
    const last = prompts[1]!;
    assert.deepEqual(last.map((m) => m.role), ['system', 'user', 'assistant', 'tool']);
    assert.equal(last[2]!.content, '');
    assert.equal((last[2]!.tool_calls![0] as { id: string }).id, 'call_7');
    assert.equal(last[3]!.tool_call_id, 'call_7');
    assert.match(renderTrajectory(data), /Turn 1 output: \[tool call\] lookup_order \{"order":1182\}/);
  });

  it('reads content parts as their text and counts the parts training cannot read, keeping them', () => {
    const data = decoded(1);
    assert.deepEqual(data.unsupportedContent, { image_url: 1 });
    assert.equal(trainingPrompts(data)[0]![0]!.content, 'What is on this label?');
    assert.equal((data.messages![0]!.content as { type: string }[])[1]!.type, 'image_url');
    assert.equal(data.taskId, DEFAULT_TASK_ID, 'a record without a task gets the default task');
  });

  it('gives the developer role to a chat template as a system message, and keeps it as logged', () => {
    const data = decoded(2);
    assert.equal(data.messages![0]!.role, 'developer');
    assert.equal(trainingPrompts(data)[0]![0]!.role, 'system');
  });

  it('maps a gateway\'s request/response record: the reply, the answering model and the response id', () => {
    const data = decoded(3);
    assert.equal(data.modelVersion, 'Qwen/Qwen3-8B@rev3');
    assert.equal(data.interactionId, 'chatcmpl-9f2c');
    assert.deepEqual(data.messages!.map((m) => m.role), ['user', 'assistant']);
    assert.equal(data.messages![1]!.content, 'Yes, within 30 days.');
    assert.equal((data.messages![1]! as Record<string, unknown>).refusal, null);
    assert.deepEqual(data.mapped, { messages: 'request.messages', 'messages[1]': 'response.choices[0].message', modelVersion: 'response.model', interactionId: 'response.id' });
    const extra = data.extra as { request: Record<string, unknown>; response: Record<string, unknown>; user: string };
    assert.equal(extra.request.model, 'support-bot', 'the requested name is kept beside the answering one');
    assert.equal(extra.user, 'u-4411');
    assert.deepEqual(extra.response.usage, { prompt_tokens: 14, completion_tokens: 7, total_tokens: 21 });
  });

  it('takes a flat record\'s own id as the interaction id and its model name as the version', () => {
    const data = decoded(4);
    assert.equal(data.interactionId, 'chatcmpl-77ab');
    assert.equal(data.modelVersion, 'Qwen/Qwen3-8B@rev3');
    assert.equal(data.messages!.length, 2);
  });

  it('keeps reasoning content, fields of a message and fields of the record it does not know', () => {
    const data = decoded(5);
    assert.equal(data.messages![1]!.reasoning_content, '2027 is not divisible by 4.');
    assert.deepEqual((data.messages![1]! as Record<string, unknown>).annotations, []);
    assert.deepEqual(data.extra, { metadata: { tenant: 'acme', tags: ['vip'] } });
  });

  it('derives an interaction id from the bytes when a record names none, and rejects what is still wrong with the field named', () => {
    const bare = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }));
    const r1 = decodeInteraction(bare, { kind: 'http' }, LIMITS);
    const r2 = decodeInteraction(Buffer.from(bare), { kind: 'http' }, LIMITS);
    assert.ok(r1.ok && r2.ok);
    assert.match(r1.event.data.interactionId, /^sha256:[0-9a-f]{32}$/);
    assert.equal(r1.event.data.interactionId, r2.event.data.interactionId);
    assert.equal(r1.event.id, r2.event.id);
    const reason = (o: unknown) => { const r = decodeInteraction(Buffer.from(JSON.stringify(o)), { kind: 'http' }, LIMITS); assert.ok(!r.ok); return r.reason; };
    assert.match(reason({ model: 'm', messages: [{ role: 'narrator', content: 'x' }] }), /data\.messages\[0\]\.role: .*\(got "narrator"\)/);
    assert.match(reason({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text' }] }] }), /data\.messages\[0\]\.content\[0\]\.text: a text part needs a text string/);
    assert.match(reason({ model: 'bad\nname', messages: [{ role: 'user', content: 'x' }] }), /data\.modelVersion: must not contain control characters/);
    assert.match(reason({ messages: [{ role: 'user', content: 'x' }] }), /data\.modelVersion: /);
    // A record that asks for schema version 1 is read as version 1: the developer role is not one of its roles.
    assert.match(reason({ schemaVersion: 1, interactionId: 'a', modelVersion: 'v0', messages: [{ role: 'developer', content: 'x' }] }), /data\.messages\[0\]\.role: /);
  });
});

describe('feedback given after an exchange was recorded', () => {
  let db: TestDatabase;
  before(async () => { db = await embeddedDatabase(); await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections()); });
  after(async () => { await db.drop(); });
  it('is the outcome rounds read (its fields over the recorded ones); an interaction without feedback keeps its own', async () => {
    const store = new EventStore(db.sql);
    await store.append([{ streamId: 'models', events: [{ id: uuidFromKey('fb:publish'), type: 'ModelVersionPublished', data: { version: 'v0', path: '/m', sha256: '0'.repeat(64) } }] }]);
    const exchange = (id: string) => ({ id: uuidFromKey(`fb:${id}`), type: 'InteractionRecorded' as const, data: {
      interactionId: id, source: { kind: 'served' as const, responseId: id }, modelVersion: 'v0', taskId: 'chat',
      messages: [{ role: 'user' as const, content: 'hi' }, { role: 'assistant' as const, content: 'hello' }], outcome: { reward: 0.5 } } });
    await store.append([{ streamId: 'interaction-a', events: [exchange('a')] }, { streamId: 'interaction-b', events: [exchange('b')] }]);
    await store.append([{ streamId: 'interaction-a', events: [{ id: feedbackEventId('a'), type: 'InteractionFeedbackRecorded', data: { interactionId: 'a', outcome: { success: false, feedback: 'wrong' } } }] }]);
    await new Projector(db.sql, new TrajectoryProjection()).catchUp();
    const t = await readTrajectories(db.sql, 'chat', 'v0', 10);
    assert.deepEqual(t.map((x) => [x.id, x.data.outcome]), [['a', { reward: 0.5, success: false, feedback: 'wrong' }], ['b', { reward: 0.5 }]]);
  });
});

describe('OpenAI-style chat logs in the store', () => {
  let db: TestDatabase;
  before(async () => { db = await embeddedDatabase(); });
  after(async () => { await db.drop(); });
  it('stores each record as decoded, with nothing lost on the way through jsonb', async () => {
    const report = await importJsonl(new EventStore(db.sql), FIXTURE.pathname, { maxEventBytes: 1 << 20 });
    assert.equal(report.appended, lines.length);
    const { rows } = await db.sql.query<{ data: Record<string, unknown> }>("SELECT data FROM events WHERE type = 'InteractionRecorded' ORDER BY global_position");
    rows.forEach((r, i) => {
      const { source: _s, ...stored } = r.data;
      const { source: _d, ...want } = decodeInteraction(lines[i]!, { kind: 'http' }, LIMITS).ok ? decoded(i) : {} as never;
      assert.deepEqual(stored, JSON.parse(JSON.stringify(want)));
    });
  });
});

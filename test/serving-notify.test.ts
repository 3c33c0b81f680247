/**
 * Announcing the active version to the serving stack, against a stand-in HTTP server: the webhook
 * gets the version, folder, sha256 and adapter base; a failing target is retried until it takes
 * the version, without repeating a target that already took it; a newer activation supersedes an
 * undelivered one; vLLM loads adapter versions (its "already loaded" counts) and is skipped for
 * full-weight ones; a target that never answers times out.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { NewEvent } from '../src/events/envelope.ts';
import { newEventId } from '../src/events/ids.ts';
import { ADAPTER_CONFIG, OELD_ADAPTER } from '../src/model/formats/lora-adapter.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { Projector } from '../src/projections/projector.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { ServingNotifier, type ActivationNotice, type DeliveryOutcome, type TargetName } from '../src/publication/serving-notifier.ts';
import { EventStore } from '../src/store/event-store.ts';
import { embeddedDatabase, type TestDatabase } from './helpers/databases.ts';

const SHA = (c: string) => c.repeat(64);

describe('announcing the active version to serving', () => {
  let db: TestDatabase;
  let store: EventStore;
  let root: string;
  let server: Server;
  let base: string;
  /** What the stand-in server received, and how it answers each path next (a queue; then 200). */
  let received: { path: string; auth: string | undefined; body: Record<string, unknown> }[];
  let answers: Map<string, { status: number; body: string }[]>;
  let hang = false;
  let outcomes: { target: TargetName; outcome: DeliveryOutcome; version: string }[];

  const catchUp = async () => { for (const p of createProjections()) await new Projector(db.sql, p).catchUp(); };
  const activate = async (version: string, reason: 'initial' | 'rollback' = 'rollback') => {
    await store.append([{ streamId: 'models', events: [{ id: newEventId(), type: 'ModelVersionActivated', data: { version, reason } }] }]);
    await catchUp();
  };
  const notifier = (targets: { webhook?: boolean; vllm?: boolean }, timeoutMs = 5000) => new ServingNotifier(db.sql, {
    ...(targets.webhook ? { webhook: { url: `${base}/hook`, token: 'hook-secret' } } : {}),
    ...(targets.vllm ? { vllm: { url: `${base}/` } } : {}),
    timeoutMs,
  }, (target: TargetName, outcome: DeliveryOutcome, n: ActivationNotice) => outcomes.push({ target, outcome, version: n.version }));

  before(async () => {
    db = await embeddedDatabase();
    store = new EventStore(db.sql);
    await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
    root = mkdtempSync(join(tmpdir(), 'oeld-notify-'));
    const folder = (v: string) => { mkdirSync(join(root, v), { recursive: true }); return join(root, v); };
    const adapterDir = folder('a1');
    writeFileSync(join(adapterDir, ADAPTER_CONFIG), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'], base_model_name_or_path: folder('v0') }));
    writeFileSync(join(adapterDir, OELD_ADAPTER), JSON.stringify({ baseVersion: 'v0', baseSha256: SHA('0') }));
    const published: NewEvent[] = [
      { id: newEventId(), type: 'ModelVersionPublished', data: { version: 'v0', path: join(root, 'v0'), sha256: SHA('0') } },
      { id: newEventId(), type: 'ModelVersionPublished', data: { version: 'a1', path: adapterDir, sha256: SHA('a'), baseVersion: 'v0', adapterOf: { version: 'v0', sha256: SHA('0') } } },
      { id: newEventId(), type: 'ModelVersionPublished', data: { version: 'v2', path: folder('v2'), sha256: SHA('2'), baseVersion: 'v0' } },
    ];
    await store.append([{ streamId: 'models', events: published }]);
    await activate('v0', 'initial');
    server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        received.push({ path: req.url!, auth: req.headers.authorization, body: JSON.parse(body || '{}') });
        if (hang) return; // never answers
        const next = answers.get(req.url!)?.shift() ?? { status: 200, body: 'ok' };
        res.writeHead(next.status, { 'content-type': 'text/plain' }).end(next.body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  beforeEach(() => { received = []; answers = new Map(); outcomes = []; hang = false; });
  after(async () => { server.closeAllConnections(); server.close(); await db.drop(); rmSync(root, { recursive: true, force: true }); });

  it('retries a failing webhook with the same announcement until it takes it, then rests', async () => {
    await activate('v0');
    answers.set('/hook', [{ status: 503, body: 'busy' }, { status: 502, body: 'bad gateway' }]);
    const n = notifier({ webhook: true });
    await assert.rejects(n.step(), /announcing version v0 to serving failed: webhook: POST .*\/hook answered 503 busy/);
    assert.equal(n.status().pending, 'v0');
    await assert.rejects(n.step(), /answered 502/);
    assert.equal(await n.step(), 'idle');
    assert.equal(received.length, 3);
    assert.deepEqual(new Set(received.map((r) => JSON.stringify(r.body))).size, 1, 'the same announcement each time');
    const body = received[0]!.body;
    assert.equal(body.version, 'v0');
    assert.equal(body.path, join(root, 'v0'));
    assert.equal(body.sha256, SHA('0'));
    assert.equal(body.adapterOf, null);
    assert.match(String(body.activationId), /^v0@/);
    assert.equal(received[0]!.auth, 'Bearer hook-secret');
    assert.deepEqual(outcomes.map((o) => o.outcome), ['failed', 'failed', 'delivered']);
    assert.equal(n.status().pending, null);
    assert.equal(n.status().delivered?.version, 'v0');
    await n.step();
    assert.equal(received.length, 3, 'nothing more once delivered');
  });

  it('loads an adapter version into vLLM, skips a full-weight one, and repeats only the target that failed', async () => {
    await activate('v2');
    const n = notifier({ webhook: true, vllm: true });
    await n.step();
    assert.deepEqual(received.map((r) => r.path), ['/hook'], 'vLLM is not asked to load a full-weight version');
    assert.deepEqual(outcomes.map((o) => `${o.target}:${o.outcome}`), ['webhook:delivered', 'vllm:skipped']);
    await activate('a1');
    received = [];
    outcomes = [];
    answers.set('/v1/load_lora_adapter', [{ status: 500, body: 'oops' }]);
    await assert.rejects(n.step(), /vllm: POST .*\/v1\/load_lora_adapter answered 500 oops/);
    await n.step();
    assert.deepEqual(received.map((r) => r.path), ['/hook', '/v1/load_lora_adapter', '/v1/load_lora_adapter'], 'the webhook, which took it, is not told again');
    assert.deepEqual(received[1]!.body, { lora_name: 'a1', lora_path: join(root, 'a1') });
    assert.deepEqual(received[0]!.body.adapterOf, { version: 'v0', sha256: SHA('0') });
    // After a restart the active adapter is announced again; vLLM's "already loaded" counts as taken.
    answers.set('/v1/load_lora_adapter', [{ status: 400, body: '{"message":"The lora adapter \'a1\' has already been loaded."}' }]);
    const restarted = notifier({ vllm: true });
    assert.equal(await restarted.step(), 'idle');
    assert.equal(restarted.status().delivered?.version, 'a1');
  });

  it('announces only the newest activation when one lands while an older one is undelivered', async () => {
    await activate('v0');
    answers.set('/hook', [{ status: 503, body: 'down' }]);
    const n = notifier({ webhook: true });
    await assert.rejects(n.step());
    await activate('v2');
    await n.step();
    assert.deepEqual(received.map((r) => r.body.version), ['v0', 'v2']);
    assert.equal(n.status().delivered?.version, 'v2');
  });

  it('gives up on a target that never answers after the timeout, and says so', async () => {
    await activate('v0');
    hang = true;
    const t0 = performance.now();
    await assert.rejects(notifier({ webhook: true }, 300).step(), /webhook: .*(timeout|aborted)/i);
    assert.ok(performance.now() - t0 < 5000);
  });
});

import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { HttpError, createHttpServer } from '../src/http/server.ts';
import { ValidationError } from '../src/events/validate.ts';

describe('HTTP errors', () => {
  it('answers our own errors with their message and keeps every other error in the log', async () => {
    const logged: { err: unknown; requestId: string }[] = [];
    const log = { error: (o: { err: unknown; requestId: string }) => logged.push(o), warn: (o: { err: unknown; requestId: string }) => logged.push(o) };
    const server = createHttpServer([
      { method: 'GET', path: '/conflict', handle: async () => { throw new HttpError(409, 'version v2 is already active'); } },
      { method: 'GET', path: '/invalid', handle: async () => { throw new ValidationError('data.reason', 'contains U+0000, which PostgreSQL cannot store'); } },
      { method: 'GET', path: '/bug', handle: async () => { throw Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00 at SELECT secret FROM events'), { status: 500 }); } },
      { method: 'GET', path: '/db-away', handle: async () => { throw Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' }); } },
    ], {}, log as never);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const get = async (path: string) => { const r = await fetch(`${url}${path}`); return { status: r.status, error: ((await r.json()) as { error: string }).error }; };
      assert.deepEqual(await get('/conflict'), { status: 409, error: 'version v2 is already active' });
      assert.deepEqual(await get('/invalid'), { status: 400, error: 'data.reason: contains U+0000, which PostgreSQL cannot store' });
      const bug = await get('/bug');
      assert.equal(bug.status, 500);
      assert.doesNotMatch(bug.error, /secret|UTF8|SELECT/);
      const id = bug.error.match(/request ([0-9a-f-]{36})/)![1];
      assert.equal(logged.find((l) => l.requestId === id)?.err instanceof Error, true, 'the details are in the log under that id');
      const away = await get('/db-away');
      assert.equal(away.status, 503);
      assert.doesNotMatch(away.error, /10\.1\.2\.3/);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DatabaseTimeoutError, isTransientDatabaseError, withTimeout } from '../src/db/transient-errors.ts';

describe('transient database errors', () => {
  it('tells a database that is away from a failed statement', () => {
    const away = [
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
      Object.assign(new Error('could not connect'), { code: '08006' }),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      new Error('Connection terminated unexpectedly'),
      new Error('Query read timeout'),
      new Error('timeout exceeded when trying to connect'),
      new Error('Client has encountered a connection error and is not queryable'),
      new DatabaseTimeoutError('leader session check', 1000),
      Object.assign(new Error('wrapped'), { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) }),
    ];
    for (const e of away) assert.equal(isTransientDatabaseError(e), true, e.message);
    const failed = [
      Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' }),
      Object.assign(new Error('syntax error at or near "SELEC"'), { code: '42601' }),
      Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021' }),
      new Error('something else'), null, undefined, 'a string',
    ];
    for (const e of failed) assert.equal(isTransientDatabaseError(e), false, String((e as Error)?.message ?? e));
  });

  it('withTimeout rejects in time and leaves no unhandled rejection behind', async () => {
    let rejectLate!: (e: Error) => void;
    const slow = new Promise<never>((_, reject) => { rejectLate = reject; });
    await assert.rejects(withTimeout(slow, 50, 'a probe'), /a probe: the database is not answering \(no reply within 50 ms\)/);
    rejectLate(new Error('late')); // would crash the test runner as an unhandled rejection if not swallowed
    assert.equal(await withTimeout(Promise.resolve(7), 50, 'fast'), 7);
  });
});

/**
 * One runner runs every checkpointed processor; a processor that keeps failing slowly (the outbox
 * relay with the broker away) must not hold up the projections, and exclusive work (a replay)
 * waits for both loops to be idle.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { migrate } from '../src/db/migrate.ts';
import { createLogger } from '../src/log.ts';
import type { Processor } from '../src/processing/processor.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { readCheckpoints } from '../src/projections/checkpoints.ts';
import { ProjectionRunner } from '../src/projections/projection-runner.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { EventStore } from '../src/store/event-store.ts';
import { headPosition } from '../src/store/log-queries.ts';
import { serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { interaction } from './helpers/events.ts';

describe('the processor runner', () => {
  let db: TestDatabase;
  before(async () => {
    db = await serverDatabase();
    await migrate(db.sql);
    await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
  });
  after(async () => { await db.drop(); });

  it('keeps the projections current while another processor fails slowly, and pauses both for exclusive work', async () => {
    let failures = 0;
    let running = 0;
    let overlapped = false;
    const broken: Processor = {
      name: 'outbox:test',
      step: async () => {
        running++;
        await new Promise((r) => setTimeout(r, 300)); // a send that waits for a broker that is away
        running--;
        failures++;
        throw new Error('broker unreachable');
      },
    };
    const errors: string[] = [];
    const runner = new ProjectionRunner(db.sql, createProjections, { batchSize: 100, pollMs: 20 }, createLogger('silent'),
      ({ processor, error }) => { if (error) errors.push(processor); }, [broken]);
    const stop = new AbortController();
    const running$ = runner.run(stop.signal);
    try {
      const store = new EventStore(db.sql);
      for (let i = 0; i < 5; i++) { await store.append([{ streamId: `i-${i}`, events: [interaction(i)] }]); runner.notify(); }
      const head = await headPosition(db.sql);
      const t0 = Date.now();
      for (;;) {
        const cps = await readCheckpoints(db.sql);
        if (cps.every((c) => c.checkpoint.globalPosition >= head)) break;
        assert.ok(Date.now() - t0 < 3000, `the projections reached the head within 3 s (at ${JSON.stringify(cps.map((c) => c.checkpoint.globalPosition))}, head ${head})`);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(Date.now() - t0 < 1500, `caught up in ${Date.now() - t0} ms although the other processor takes 300 ms and fails every time`);
      // Exclusive work starts only when neither loop has a batch in flight, and none starts during it.
      await runner.exclusive(async () => {
        overlapped ||= running > 0;
        await new Promise((r) => setTimeout(r, 400));
        overlapped ||= running > 0;
      });
      assert.equal(overlapped, false, 'no processor ran during exclusive work');
      assert.ok(failures >= 1 && errors.every((e) => e === 'outbox:test'), 'the failing processor was retried, its errors named');
    } finally {
      stop.abort();
      await running$;
    }
  });
});

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { appendEvents } from '../src/store/append-events.ts';
import { EventStore } from '../src/store/event-store.ts';
import { START } from '../src/store/read-events.ts';
import { BACKENDS, type TestDatabase } from './helpers/databases.ts';
import { interaction } from './helpers/events.ts';

for (const backend of BACKENDS) {
  describe(`gap-safe reads on ${backend.name}`, () => {
    let db: TestDatabase;
    before(async () => { db = await backend.open(); });
    after(async () => { await db.drop(); });

    it('a live subscriber sees every event exactly once, in the final global order, while transactions commit out of order', async () => {
      const store = new EventStore(db.sql);
      const writers = 6;
      const batchesPerWriter = 15;
      const perBatch = 7;
      let n = 0;
      let done = false;
      const seen: string[] = [];

      const subscriber = (async () => {
        let at = START;
        for (;;) {
          const finished = done;
          const b = await store.read({ after: at, limit: 13 });
          seen.push(...b.events.map((e) => e.id));
          at = b.next;
          if (finished && b.caughtUp) return;
          if (b.caughtUp) await sleep(2);
        }
      })();

      const writer = async (w: number) => {
        for (let b = 0; b < batchesPerWriter; b++) {
          const events = Array.from({ length: perBatch }, () => interaction(n++, { prefix: `w${w}` }));
          // Writer 0 keeps every other transaction open while the others commit past it:
          // its positions are lower than theirs but become visible later.
          const holdOpen = w === 0 && b % 2 === 0;
          await db.sql.transaction(async (tx) => {
            await appendEvents(tx, events.map((e) => ({ streamId: `interaction-${e.data.interactionId}`, events: [e] })));
            await sleep(holdOpen ? 120 : Math.random() * 4);
          });
        }
      };
      await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
      done = true;
      await subscriber;

      const total = writers * batchesPerWriter * perBatch;
      assert.equal(new Set(seen).size, seen.length, 'no event seen twice');
      assert.equal(seen.length, total, 'every event seen');
      const finalOrder: string[] = [];
      let at = START;
      for (;;) {
        const b = await store.read({ after: at, limit: 500 });
        finalOrder.push(...b.events.map((e) => e.id));
        at = b.next;
        if (b.caughtUp) break;
      }
      assert.deepEqual(seen, finalOrder, 'the live order is the global order');
    });
  });
}

/**
 * Runs one learning round in its own process, so a test can kill it with SIGKILL mid-round.
 * Env: DATABASE_URL, OELD_ARTIFACT_ROOT, OELD_TEST_ROUND_TASK (game, the default, or chat). Prints "STEP n" after each training step.
 */
import { openDatabase } from '../../src/db/open-database.ts';
import { loadConfig } from '../../src/config.ts';
import { localEngine } from '../../src/engine/local-engine.ts';
import { RoundRunner } from '../../src/rounds/round-runner.ts';
import { EventStore } from '../../src/store/event-store.ts';
import { scriptedExtractor, tinyChatRound, tinyGameRound, TINY_ROUND } from './round-settings.ts';

const sql = await openDatabase(loadConfig({ DATABASE_URL: process.env.DATABASE_URL! }));
const store = new EventStore(sql);
const engine = localEngine();
const runner = new RoundRunner({
  store, engine, artifactRoot: process.env.OELD_ARTIFACT_ROOT!, ...(process.env.OELD_TEST_ROUND_TASK === 'chat' ? tinyChatRound(engine, store) : tinyGameRound(engine)),
  settings: { ...TINY_ROUND, training: { ...TINY_ROUND.training, steps: 400 } },
  extractFnFor: scriptedExtractor([]),
  onProgress: (p) => { if (p.step) process.stdout.write(`STEP ${p.step.step}\n`); },
});
await runner.run('manual');
process.stdout.write('DONE\n');
await sql.close();

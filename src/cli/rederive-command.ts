import { join } from 'node:path';
import { createEngine, createTrainer } from '../daemon/model-runtime.ts';
import { createLogger } from '../log.ts';
import { catchUpProjections } from '../operations/catch-up.ts';
import { rederiveVersion } from '../operations/rederive.ts';
import { EventStore } from '../store/event-store.ts';
import { emit, UsageError, type Command } from './command.ts';
import { withDatabase } from './with-database.ts';

export const rederiveCommand: Command = {
  name: 'rederive',
  summary: 'make a round\'s version again from the log and compare its sha256 with the one recorded at publication',
  usage: 'oeld rederive <version> [--restore] [--out DIR] [--tolerance X]',
  help: [
    'Re-runs the round that trained <version> from what its events recorded (the round-start weights,',
    'checked by sha256; the trajectories and extracted knowledge by event id; settings, seed and trainer)',
    'into a fresh folder (default <OELD_DATA_DIR>/artifacts/rederived/<version>-<id>), and compares the',
    'new weights\' sha256 with the recorded one: exit 0 when they match, 1 when not. A round-start version',
    'whose files were pruned is re-derived first. On the tfjs trainer the result is bit for bit the same',
    'on the same backend and kernels (the round records them); docs/retention.md says what holds elsewhere.',
    '--restore: for a version pruned by the retention policy, move the matching folder back to its',
    'recorded path and record ModelVersionRestored, so that `oeld rollback --model <version>` can use it.',
    'Where the sha256 differs and the version\'s files are still there, the largest absolute difference of',
    'the weights is printed; --tolerance X accepts (exit 0) weights within X of them (a GPU trainer is not',
    'bit-reproducible). Only identical weights are restored.',
    'The trainer is the configured one (OELD_TRAINER and its settings must be the ones the round used).',
    'With the embedded database, stop the daemon first.',
  ],
  options: { restore: { type: 'boolean' }, out: { type: 'string' }, tolerance: { type: 'string' } },
  allowPositionals: true,
  async run(v, positionals, ctx) {
    const version = positionals[0];
    if (!version || positionals.length > 1) throw new UsageError('give exactly one version: oeld rederive <version>');
    if (v.restore && typeof v.out === 'string') throw new UsageError('--restore moves the folder to the version\'s recorded path: leave out --out');
    const tolerance = v.tolerance === undefined ? undefined : Number(v.tolerance);
    if (tolerance !== undefined && !(Number.isFinite(tolerance) && tolerance >= 0)) throw new UsageError(`--tolerance must be a number >= 0, got ${JSON.stringify(v.tolerance)}`);
    const result = await withDatabase(ctx.env, async (sql, config) => {
      await catchUpProjections(sql);
      const log = createLogger(config.logLevel, { format: ctx.json ? 'json' : 'text', name: 'oeld-rederive' });
      const engine = createEngine(config);
      const { trainer } = createTrainer(config, engine, log);
      try {
        return await rederiveVersion({
          store: new EventStore(sql), engine, trainer, artifactRoot: join(config.dataDir, 'artifacts'),
          onProgress: (m) => { if (!ctx.json) process.stderr.write(`${m}\n`); },
        }, version, { ...(v.restore ? { restore: true } : {}), ...(typeof v.out === 'string' ? { outDir: v.out } : {}), ...(tolerance !== undefined ? { tolerance } : {}) });
      } finally {
        await trainer.close();
        await engine.close();
      }
    });
    emit(ctx, result, [
      `version    ${result.version} (round ${result.roundId})${result.through.length ? `, through ${result.through.join(', ')} (re-derived first: pruned)` : ''}`,
      `recorded   ${result.recordedSha256}`,
      `re-derived ${result.derivedSha256}`,
      `result     ${result.matches ? 'the same weights, bit for bit' : 'DIFFERENT weights'}${result.difference ? ` (largest difference ${result.difference.maxAbs.toExponential(3)} over ${result.difference.elements} elements${tolerance !== undefined ? `; ${result.accepted ? 'within' : 'beyond'} --tolerance ${tolerance}` : ''})` : ''}${result.restored ? '; restored' : ''}`,
      `folder     ${result.folder}`,
      `runtime    recorded: ${result.runtime.recorded}`,
      `           now:      ${result.runtime.now}`,
      `time       ${result.seconds.toFixed(1)} s`,
    ].join('\n'));
    return result.accepted ? 0 : 1;
  },
};

import { loadConfig } from '../config.ts';
import { migrate } from '../db/migrate.ts';
import { describeDatabase, openDatabase } from '../db/open-database.ts';
import { emit, type Command } from './command.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply pending SQL migrations from migrations/',
  usage: 'oeld migrate [--json]',
  help: ['Safe to run while daemons run: migrations take an advisory lock and each runs in one transaction.'],
  options: {},
  async run(_v, _p, ctx) {
    const config = loadConfig(ctx.env);
    const sql = await openDatabase(config);
    try {
      const applied = await migrate(sql);
      emit(ctx, { database: describeDatabase(config), applied },
        applied.length ? `applied ${applied.length} migration(s) to ${describeDatabase(config)}: ${applied.join(', ')}` : `${describeDatabase(config)} is up to date`);
      return 0;
    } finally {
      await sql.close();
    }
  },
};

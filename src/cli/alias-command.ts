import { AliasError, setAlias } from '../operations/aliases.ts';
import { readAliases } from '../projections/models/model-projection.ts';
import { EventStore } from '../store/event-store.ts';
import { emit, UsageError, type Command } from './command.ts';
import { withDatabase } from './with-database.ts';

export const aliasCommand: Command = {
  name: 'alias',
  summary: 'map a model name your serving stack logs to an oeld version, or list the aliases',
  usage: 'oeld alias <name> (<version> | --follows-active) [--reason <text>] [--json]  |  oeld alias --list [--json]',
  help: [
    'Interactions logged under <name> count as the version\'s (status, rounds) from here on in the log; those logged under it before it was ever mapped take this first mapping.',
    '--follows-active: the name always answers with the active version (a served-model name that is updated in place).',
    'Appends ModelVersionAliased. With the embedded database and a running daemon, use POST /admin/aliases instead.',
  ],
  options: { 'follows-active': { type: 'boolean' }, list: { type: 'boolean' }, reason: { type: 'string' } },
  allowPositionals: true,
  async run(values, positionals, ctx) {
    const { list, reason } = values as { list?: boolean; reason?: string };
    const follows = values['follows-active'] === true;
    if (list) {
      if (positionals.length || follows) throw new UsageError('--list takes no name, version or --follows-active');
      return withDatabase(ctx.env, async (sql) => {
        const aliases = await readAliases(sql);
        emit(ctx, aliases, aliases.length ? aliases.map((a) => `${a.alias} -> ${a.followsActive ? 'the active version' : a.version} (set by ${a.setBy}, ${a.setAt.toISOString()})`).join('\n') : 'no aliases');
        return 0;
      });
    }
    const [name, version, ...rest] = positionals;
    if (!name || rest.length || (version === undefined) === !follows) throw new UsageError('usage: oeld alias <name> (<version> | --follows-active)');
    return withDatabase(ctx.env, async (sql) => {
      try {
        const r = await setAlias(new EventStore(sql), { alias: name, ...(follows ? { followsActive: true as const } : { version: version! }), setBy: 'operator', ...(reason ? { reason } : {}) });
        emit(ctx, r, r.changed ? `${name} -> ${follows ? 'the active version' : version}; event ${r.eventId}` : `${name} already maps to ${follows ? 'the active version' : version}; nothing appended`);
        return 0;
      } catch (err) {
        if (err instanceof AliasError) throw new UsageError(err.message);
        throw err;
      }
    });
  },
};

import { parseArgs } from 'node:util';
import { ConfigError, SETTINGS } from './config.ts';
import { ValidationError } from './events/validate.ts';
import { UsageError, type Command, type CommandContext } from './cli/command.ts';
import { evalCommand } from './cli/eval-command.ts';
import { reportCommand } from './cli/report-command.ts';
import { roundCommand } from './cli/round-command.ts';
import { ingestCommand } from './cli/ingest-command.ts';
import { migrateCommand } from './cli/migrate-command.ts';
import { modelCommand } from './cli/model-command.ts';
import { replayCommand } from './cli/replay-command.ts';
import { rollbackCommand } from './cli/rollback-command.ts';
import { aliasCommand } from './cli/alias-command.ts';
import { rederiveCommand } from './cli/rederive-command.ts';
import { startCommand } from './cli/start-command.ts';
import { statusCommand } from './cli/status-command.ts';
import { RederiveError } from './operations/rederive.ts';
import { RollbackError } from './operations/rollback.ts';
import { DataDirInUseError } from './db/data-dir-lock.ts';
import { isTransientDatabaseError } from './db/transient-errors.ts';

/** The exit status of a command that lost its database (documented in `oeld help`). */
export const EXIT_DATABASE_AWAY = 4;

const COMMANDS: Command[] = [startCommand, migrateCommand, statusCommand, ingestCommand, replayCommand, rollbackCommand, rederiveCommand, roundCommand, evalCommand, reportCommand, modelCommand, aliasCommand];

function mainHelp(): string {
  return [
    'oeld: Online Experiential Learning daemon',
    '',
    'usage: oeld <command> [options]',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    `  ${'help'.padEnd(10)} this text; \`oeld help <command>\` or \`oeld <command> --help\` for one command; \`oeld help config\` for settings`,
    '',
    'Every command takes --json for machine-readable output.',
    '',
    'Exit status: 0 done, 1 failed, 2 bad usage or configuration, 3 done with rejected input (ingest),',
    '4 the database went away (what was committed stays; run the same command again to finish).',
  ].join('\n');
}

function commandHelp(c: Command): string {
  return [`usage: ${c.usage}`, '', c.summary, ...(c.help.length ? ['', ...c.help] : [])].join('\n');
}

function configHelp(): string {
  return ['Environment variables (name, default, meaning):', '',
    ...Object.values(SETTINGS).map((s) => `  ${s.name.padEnd(26)} ${(s.default ?? '(unset)').padEnd(12)} ${s.description}`)].join('\n');
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const out = (t: string) => { process.stdout.write(`${t}\n`); };
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = rest[0];
    if (topic === 'config') out(configHelp());
    else if (topic) {
      const c = COMMANDS.find((x) => x.name === topic);
      if (!c) { process.stderr.write(`oeld: unknown command ${JSON.stringify(topic)}\n\n${mainHelp()}\n`); return 2; }
      out(commandHelp(c));
    } else out(mainHelp());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) { process.stderr.write(`oeld: unknown command ${JSON.stringify(name)}\n\n${mainHelp()}\n`); return 2; }
  let ctx: CommandContext = { env, json: false, out };
  try {
    const { values, positionals } = parseArgs({
      args: rest, allowPositionals: command.allowPositionals ?? false, strict: true,
      options: { ...command.options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) { out(commandHelp(command)); return 0; }
    ctx = { ...ctx, json: Boolean(values.json) };
    return await command.run(values as Record<string, string | boolean | undefined>, positionals, ctx);
  } catch (err) {
    if (isTransientDatabaseError(err)) {
      const line = `the database went away (${(err as Error).message}); what was committed stays: run the same command again to finish`;
      if (ctx.json) process.stdout.write(`${JSON.stringify({ error: line })}\n`);
      process.stderr.write(`oeld ${name}: ${line}\n`);
      return EXIT_DATABASE_AWAY;
    }
    const known = err instanceof UsageError || err instanceof ConfigError || err instanceof ValidationError || err instanceof RollbackError || err instanceof RederiveError || err instanceof DataDirInUseError
      || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    const message = (err as Error).message;
    if (ctx.json) process.stdout.write(`${JSON.stringify({ error: message })}\n`);
    process.stderr.write(`oeld ${name}: ${message}\n`);
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) process.stderr.write(`\n${commandHelp(command)}\n`);
    if (!known) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
    return err instanceof UsageError || err instanceof ConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => { console.error(err); process.exitCode = 1; });
}

import { importJsonl } from '../ingest/import-jsonl.ts';
import { EventStore } from '../store/event-store.ts';
import { emit, UsageError, type Command } from './command.ts';
import { withDatabase } from './with-database.ts';

export const ingestCommand: Command = {
  name: 'ingest',
  summary: 'append interactions from a JSONL export (one InteractionRecorded per line)',
  usage: 'oeld ingest <file.jsonl> [--json]',
  help: [
    'Each line is an interaction: {interactionId, modelVersion, taskId, turns | messages, outcome?, id?}.',
    'A bad line is reported with its line number and reason and kept as a dead letter; the rest still land.',
    'Importing the same file again appends nothing (event ids are derived from the lines).',
    'Exit status 0 when every line landed, 3 when some lines were rejected, 4 when the database went away',
    'mid-import (the batches committed before stay; running the same command again finishes the import).',
  ],
  options: {},
  allowPositionals: true,
  async run(_v, positionals, ctx) {
    if (positionals.length !== 1) throw new UsageError('expected exactly one file: oeld ingest <file.jsonl>');
    const file = positionals[0]!;
    let progressShown = false;
    const report = await withDatabase(ctx.env, (sql, config) => importJsonl(new EventStore(sql), file, {
      maxEventBytes: config.maxEventBytes,
      maxJsonDepth: config.maxJsonDepth,
      onProgress: ctx.json ? undefined : (p) => { progressShown = true; process.stderr.write(`\r${p.lines} lines: ${p.appended} appended, ${p.duplicates} duplicates, ${p.rejected} rejected`); },
    })).finally(() => { if (progressShown) process.stderr.write('\n'); });
    const rejected = report.rejected.map((r) => `line ${r.line}: ${r.reason}`);
    emit(ctx, report, [
      `${file}: ${report.lines} lines, ${report.appended} appended, ${report.duplicates} already stored, ${report.rejectedCount} rejected (${report.deadLettered} newly dead-lettered)`,
      ...rejected,
    ].join('\n'));
    return report.rejectedCount > 0 ? 3 : 0;
  },
};

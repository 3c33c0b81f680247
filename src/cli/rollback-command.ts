import { rollbackKnowledge, rollbackModel } from '../operations/rollback.ts';
import { EventStore } from '../store/event-store.ts';
import { emit, UsageError, type Command } from './command.ts';
import { withDatabase } from './with-database.ts';

export const rollbackCommand: Command = {
  name: 'rollback',
  summary: 'make an earlier knowledge version or model version current again (history is kept)',
  usage: 'oeld rollback (--knowledge <version> | --model <version>) [--reason <text>] [--json]',
  help: ['Appends KnowledgeBaseRolledBack or ModelVersionActivated (reason rollback); the projections follow.'],
  options: { knowledge: { type: 'string' }, model: { type: 'string' }, reason: { type: 'string' } },
  async run(values, _p, ctx) {
    const { knowledge, model, reason } = values as { knowledge?: string; model?: string; reason?: string };
    if ((knowledge === undefined) === (model === undefined)) throw new UsageError('give exactly one of --knowledge <version> or --model <version>');
    if (knowledge !== undefined && !/^\d+$/.test(knowledge)) throw new UsageError(`--knowledge: expected a version number, got ${JSON.stringify(knowledge)}`);
    return withDatabase(ctx.env, async (sql) => {
      const store = new EventStore(sql);
      if (knowledge !== undefined) {
        const r = await rollbackKnowledge(store, Number(knowledge), reason);
        emit(ctx, r, `knowledge rolled back to version ${knowledge} (content hash ${r.contentHash}); event ${r.eventId}`);
      } else {
        const r = await rollbackModel(store, model!);
        emit(ctx, r, `model ${model} active again (was ${r.previousVersion ?? 'none'}; sha256 ${r.sha256}); event ${r.eventId}`);
      }
      return 0;
    });
  },
};

import { readStatus } from '../operations/status.ts';
import { describeTaskUsage } from '../operations/task-usage.ts';
import { loadTasks } from '../tasks/task-config.ts';
import { emit, type Command } from './command.ts';
import { withDatabase } from './with-database.ts';

export const statusCommand: Command = {
  name: 'status',
  summary: 'event store, projections, knowledge base, active model, interactions per task, recent rounds',
  usage: 'oeld status [--json]',
  help: [],
  options: {},
  async run(_v, _p, ctx) {
    const s = await withDatabase(ctx.env, (sql, config) => readStatus(sql, sql.kind, loadTasks(config.tasks, config.tasksFile, {
      minInteractions: config.roundMinInteractions, maxRetentionKl: config.retentionMaxKl, maxBaseRetentionKl: config.retentionMaxBaseKl, anchorPromptsFile: config.anchorPromptsFile,
    })));
    const lines = [
      `database        ${s.database}`,
      `events          ${s.events} (head position ${s.headPosition}), dead letters ${s.deadLetters}`,
      ...s.projections.map((p) => `projection      ${p.name.padEnd(10)} at ${p.globalPosition} (lag ${p.lagEvents})`),
      `knowledge       version ${s.knowledge.version}, ${s.knowledge.items} items, ${s.knowledge.tokens} tokens, ${s.knowledge.pools} pools, hash ${s.knowledge.contentHash.slice(0, 16)}`,
      `active model    ${s.activeModel ? `${s.activeModel.version} (${s.activeModel.reason}, sha256 ${s.activeModel.sha256.slice(0, 16)})` : 'none'}`,
      `model versions  ${s.versions.kept} kept, ${s.versions.pruned} pruned (${(s.versions.prunedBytes / 2 ** 20).toFixed(1)} MiB freed; OELD_KEEP_VERSIONS, OELD_ROLLBACK_WINDOW_HOURS)`,
      ...s.tasks.map((t) => `task            ${describeTaskUsage(t)}`),
      ...s.rounds.map((r) => `round           ${r.roundId} ${r.status} base ${r.baseModelVersion}${r.newModelVersion ? ` -> ${r.newModelVersion}` : ''}`),
    ];
    emit(ctx, s, lines.join('\n'));
    return 0;
  },
};

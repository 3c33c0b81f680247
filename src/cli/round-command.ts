import { loadConfig } from '../config.ts';
import { emit, UsageError, type Command } from './command.ts';

export const roundCommand: Command = {
  name: 'round',
  summary: 'ask the running daemon to start a training round now (the manual trigger)',
  usage: 'oeld round [--task ID] [--url http://127.0.0.1:9820]',
  help: [
    'Calls POST /admin/rounds on the running daemon with OELD_ADMIN_TOKEN. The round runs in the',
    'background on the leader; its progress is in the daemon\'s output, /status and /metrics.',
    'It is refused (exit 1, with the reason) while a round runs or when the active version has no interactions yet.',
    '--task names the task the round learns (default: the first configured task with interactions).',
  ],
  options: { url: { type: 'string' }, task: { type: 'string' } },
  async run(v, _p, ctx) {
    const config = loadConfig(ctx.env);
    if (!config.adminToken) throw new UsageError('OELD_ADMIN_TOKEN is not set: the admin API (and so the manual trigger) needs it');
    const base = typeof v.url === 'string' ? v.url : `http://${config.httpHost}:${config.httpPort}`;
    let r: Response;
    try {
      r = await fetch(`${base.replace(/\/$/, '')}/admin/rounds`, { method: 'POST', headers: { authorization: `Bearer ${config.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(typeof v.task === 'string' ? { task: v.task } : {}) });
    } catch (err) {
      throw new Error(`no daemon answered at ${base} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}); start one with \`oeld start\` or pass --url`);
    }
    const body = await r.json().catch(() => ({})) as { start?: boolean; reason?: string; error?: string };
    emit(ctx, { status: r.status, ...body }, r.status === 202 ? `round started: ${body.reason}` : `round not started (HTTP ${r.status}): ${body.reason ?? body.error ?? 'no reason given'}`);
    return r.status === 202 ? 0 : 1;
  },
};

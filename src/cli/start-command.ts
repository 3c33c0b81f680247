import { loadConfig } from '../config.ts';
import { startDaemon } from '../daemon.ts';
import { createLogger } from '../log.ts';
import type { Command } from './command.ts';

export const startCommand: Command = {
  name: 'start',
  summary: 'run the daemon (HTTP metrics/health/admin, projections, leader election)',
  usage: 'oeld start',
  help: ['Configuration comes from environment variables; see the README table or `oeld help config`.',
    'SIGTERM or SIGINT stops it gracefully; a second signal exits at once.'],
  options: {},
  async run(_v, _p, ctx) {
    const config = loadConfig(ctx.env);
    // One stream: every line goes through the log, as sentences on a terminal and JSON elsewhere.
    const format = config.logFormat === 'auto' ? (process.stderr.isTTY ? 'text' : 'json') : config.logFormat;
    const log = createLogger(config.logLevel, { format });
    const daemon = await startDaemon(config, log);
    log.info(`oeld listening on ${daemon.url} (status page ${daemon.url}/status, metrics ${daemon.url}/metrics)`);
    await new Promise<void>((resolve) => {
      let signalled = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (signalled) { log.warn({ signal }, 'second signal: exiting now'); process.exit(130); }
        signalled = true;
        log.info({ signal }, 'signal received');
        void daemon.stop().then(resolve);
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    return 0;
  },
};

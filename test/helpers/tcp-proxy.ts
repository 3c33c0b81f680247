import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

/**
 * A TCP proxy in front of PostgreSQL, for injecting the faults a daemon meets in production:
 *   restart()   every open connection is cut and new ones are refused until up() (a restart,
 *               a failover, a proxy reset);
 *   blackHole() open connections stop carrying data and new ones are accepted but never
 *               answered (a network partition) until up();
 *   up()        back to normal (connections held in a black hole carry their data again).
 */
export interface TcpProxy {
  port: number;
  url(databaseUrl: string): string;
  restart(): void;
  blackHole(): void;
  up(): void;
  /** Connections open now (both directions counted once). */
  open(): number;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let mode: 'up' | 'down' | 'hole' = 'up';
  const pairs = new Set<{ client: Socket; server: Socket }>();
  const server: Server = createServer((client) => {
    client.on('error', () => {});
    if (mode === 'down') { client.destroy(); return; }
    const upstream = connect(targetPort, targetHost);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    const pair = { client, server: upstream };
    pairs.add(pair);
    const forget = () => { pairs.delete(pair); client.destroy(); upstream.destroy(); };
    client.on('close', forget);
    upstream.on('close', forget);
    client.pipe(upstream);
    upstream.pipe(client);
    if (mode === 'hole') { client.pause(); upstream.pause(); client.unpipe(upstream); upstream.unpipe(client); }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url(databaseUrl) { const u = new URL(databaseUrl); u.hostname = '127.0.0.1'; u.port = String(port); return u.toString(); },
    restart() {
      mode = 'down';
      for (const p of pairs) { p.client.destroy(); p.server.destroy(); }
      pairs.clear();
    },
    blackHole() {
      mode = 'hole';
      for (const p of pairs) { p.client.unpipe(p.server); p.server.unpipe(p.client); p.client.pause(); p.server.pause(); }
    },
    up() {
      if (mode === 'hole') for (const p of pairs) { p.client.pipe(p.server); p.server.pipe(p.client); p.client.resume(); p.server.resume(); }
      mode = 'up';
    },
    open: () => pairs.size,
    async close() {
      for (const p of pairs) { p.client.destroy(); p.server.destroy(); }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An OpenAI-compatible extraction endpoint serving one model version (`served`, or what it returns now), on a free localhost port; `answer` writes each reply from the request's last message. */
export async function startExtractionEndpoint(served: string | (() => string), answer: (prompt: string) => string): Promise<{ url: string; completions: () => number; close: () => Promise<void> }> {
  let completions = 0;
  const version = () => (typeof served === 'string' ? served : served());
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const json = (status: number, body: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
      if (req.method === 'GET' && req.url === '/v1/models') return json(200, { object: 'list', data: [{ id: version(), object: 'model' }] });
      if (req.method === 'POST' && req.url === '/v1/chat/completions') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { model?: string; messages?: { content?: unknown }[] };
        if (body.model !== version() || !Array.isArray(body.messages)) return json(400, { error: { message: `unexpected request: ${JSON.stringify(body).slice(0, 200)}` } });
        completions++;
        return json(200, { model: version(), choices: [{ index: 0, message: { role: 'assistant', content: answer(String(body.messages.at(-1)?.content ?? '')) }, finish_reason: 'stop' }], usage: { completion_tokens: 12 } });
      }
      return json(404, { error: { message: `no route ${req.method} ${req.url}` } });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    completions: () => completions,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}


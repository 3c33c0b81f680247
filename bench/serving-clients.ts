/**
 * The load of bench/serving.ts, in a process of its own (as real clients are): `clients` loops,
 * each sending `perClient` chat completions one after another to `url` over a kept-alive
 * connection; prints one JSON line with the seconds taken, every latency (ms), the completion
 * tokens and this process's CPU per request.
 * The requests go through node:http, not fetch: on the benchmark's two cores the load generator
 * shares the CPU with the server, and fetch (undici) took 1.2 ms of CPU a request against 0.43 ms
 * for node:http (thirteenth session, the same sitting), which the server's figures then paid for.
 * Usage: node --import tsx bench/serving-clients.ts <url> <clients> <perClient> <maxTokens>
 */
import http from 'node:http';
import { SERVING_QUESTIONS } from './lib.ts';

const [url, clientsArg, perClientArg, tokensArg] = process.argv.slice(2);
const clients = Number(clientsArg), perClient = Number(perClientArg), maxTokens = Number(tokensArg);
const target = new URL(url!);
const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
const body = (i: number) => JSON.stringify({ model: 'oeld', messages: [{ role: 'user', content: SERVING_QUESTIONS[i % SERVING_QUESTIONS.length] }], max_tokens: maxTokens, temperature: 0.7 });

/** One POST; resolves with the status and the whole body. */
function post(text: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
    }, (res) => {
      let out = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { out += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: out }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(text);
  });
}

const latencies: number[] = [];
let tokens = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(Array.from({ length: clients }, async (_, c) => {
  for (let k = 0; k < perClient; k++) {
    const t = performance.now();
    const r = await post(body(c * perClient + k));
    if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text}`);
    tokens += (JSON.parse(r.text) as { usage: { completion_tokens: number } }).usage.completion_tokens;
    latencies.push(performance.now() - t);
  }
}));
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
agent.destroy();
console.log(JSON.stringify({ seconds, latencies, tokens, cpuMsPerRequest: (cpu.user + cpu.system) / 1000 / (clients * perClient) }));

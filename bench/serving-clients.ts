/**
 * The load of bench/serving.ts, in a process of its own (as real clients are): `clients` loops,
 * each sending `perClient` chat completions one after another to `url`; prints one JSON line with
 * the seconds taken, every latency (ms) and the completion tokens.
 * Usage: node --import tsx bench/serving-clients.ts <url> <clients> <perClient> <maxTokens>
 */
import { SERVING_QUESTIONS } from './lib.ts';

const [url, clientsArg, perClientArg, tokensArg] = process.argv.slice(2);
const clients = Number(clientsArg), perClient = Number(perClientArg), maxTokens = Number(tokensArg);
const body = (i: number) => JSON.stringify({ model: 'oeld', messages: [{ role: 'user', content: SERVING_QUESTIONS[i % SERVING_QUESTIONS.length] }], max_tokens: maxTokens, temperature: 0.7 });
const latencies: number[] = [];
let tokens = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: clients }, async (_, c) => {
  for (let k = 0; k < perClient; k++) {
    const t = performance.now();
    const r = await fetch(url!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(c * perClient + k) });
    if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
    tokens += ((await r.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens;
    latencies.push(performance.now() - t);
  }
}));
console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000, latencies, tokens }));

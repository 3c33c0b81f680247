/**
 * Continuous batching on the native decoder: requests join a running batch between decoding steps
 * instead of waiting for it to end. Each step prefills the prompts of the requests that joined
 * since the last one, samples one token for every running row, and sends all of them through the
 * decoder in one call; a request is answered the moment its last row ends. Every request keeps its
 * own random stream, sampling settings, lengths and stop sequences, so its answer is the one
 * serveBatch gives it alone, whoever else shares its steps. Pure logic over a model's decoder and
 * its tokenizer; the caller decides when to step (the model worker steps while rows run, letting
 * new requests in between steps).
 */
import { seededRandom } from '../network/rng.ts';
import type { Transformer } from '../network/transformer.ts';
import type { Tokenizer } from '../formats/tokenizer.ts';
import type { TemplateVariables } from './chat-prompt.ts';
import type { NativeDecoder } from './native-decoder.ts';
import { sampleToken } from './sampling.ts';
import { servedPromptIds, type ServedRow, type ServeRow } from './serve-batch.ts';
import { StreamedRows, type TextDelta } from './streamed-rows.ts';

/** Most prompt tokens one prefill call takes (the decoder's scratch grows with the tokens of a call). */
const PREFILL_CHUNK = 2048;

interface Request {
  rows: ServeRow[];
  ids: number[][];
  random: () => number;
  stream: StreamedRows;
  tokens: number[][];
  endedBy: ('eos' | 'length' | 'stop')[];
  maxNew: number[];
  onDeltas: (d: TextDelta[]) => void;
  resolve: (rows: ServedRow[]) => void;
  reject: (err: Error) => void;
}

interface Row { request: Request; index: number; sequence: number; logits: Float32Array | null; done: boolean }

export class ContinuousBatch {
  private joining: Request[] = [];
  private rows: Row[] = [];
  private readonly eos: Set<number>;
  /** Decoder calls made so far (prefill and decoding): what sharing steps saves. */
  forwardCalls = 0;

  constructor(private readonly model: Transformer, private readonly tokenizer: Tokenizer, private readonly decoder: NativeDecoder) {
    this.eos = new Set(tokenizer.eosTokenIds);
  }

  /** Rows running or waiting to join. */
  get size(): number { return this.rows.length + this.joining.reduce((n, r) => n + r.rows.length, 0); }

  /** Adds a request; it joins at the next step and resolves when all its rows have ended. */
  add(rows: ServeRow[], seed: number, onDeltas: (d: TextDelta[]) => void, templateVariables?: TemplateVariables): Promise<ServedRow[]> {
    if (rows.length === 0) return Promise.resolve([]);
    const ids = rows.map((r) => servedPromptIds(this.model, this.tokenizer, r, templateVariables));
    return new Promise((resolve, reject) => this.joining.push({
      rows, ids, random: seededRandom(seed), stream: new StreamedRows(this.tokenizer, rows.map((r) => r.stop)),
      tokens: rows.map(() => []), endedBy: rows.map(() => 'length'),
      maxNew: rows.map((r, b) => Math.min(r.maxNewTokens, Math.max(0, this.model.config.maxPositions - ids[b]!.length))),
      onDeltas, resolve, reject,
    }));
  }

  /**
   * One step: the joined requests' prompts in, a token for every running row, and those tokens
   * through the decoder. A failure ends every request of the batch with it.
   */
  step(): void {
    try {
      this.prefill();
      this.sample();
      const running = this.rows.filter((r) => !r.done);
      if (running.length > 0) {
        const last = (r: Row) => r.request.tokens[r.index]!.at(-1)!;
        const logits = this.decoder.forward(Int32Array.from(running, last), Int32Array.from(running, (r) => r.sequence), Int32Array.from(running, (_, i) => i));
        this.forwardCalls++;
        const V = this.decoder.vocab;
        running.forEach((r, i) => { r.logits = logits.subarray(i * V, (i + 1) * V); });
      }
      this.rows = running;
    } catch (err) {
      this.failAll(err as Error);
    }
  }

  /** Ends every request with `err` and frees their sequences. */
  failAll(err: Error): void {
    const requests = new Set([...this.rows.map((r) => r.request), ...this.joining]);
    for (const r of this.rows) if (!r.done && r.sequence >= 0) this.decoder.freeSequence(r.sequence);
    this.rows = [];
    this.joining = [];
    for (const q of requests) q.reject(err);
  }

  /** The joined requests' rows get a sequence each and their prompts go in, in calls of at most PREFILL_CHUNK tokens. */
  private prefill(): void {
    const joined = this.joining;
    this.joining = [];
    const fresh: Row[] = [];
    for (const request of joined) {
      const rows = request.rows.map((_, index): Row => ({ request, index, sequence: -1, logits: null, done: request.maxNew[index]! <= 0 }));
      this.rows.push(...rows);
      fresh.push(...rows.filter((r) => !r.done));
      if (rows.every((r) => r.done)) this.finish(request);
    }
    for (const r of fresh) r.sequence = this.decoder.newSequence(r.request.ids[r.index]!.length + r.request.maxNew[r.index]!);
    const V = this.decoder.vocab;
    let tokens: number[] = [];
    let sequences: number[] = [];
    let ends: { at: number; row: Row }[] = [];
    const flush = () => {
      if (tokens.length === 0) return;
      const out = this.decoder.forward(Int32Array.from(tokens), Int32Array.from(sequences), Int32Array.from(ends, (e) => e.at));
      this.forwardCalls++;
      ends.forEach((e, i) => { e.row.logits = out.slice(i * V, (i + 1) * V); });
      tokens = []; sequences = []; ends = [];
    };
    for (const r of fresh) {
      const prompt = r.request.ids[r.index]!;
      for (let at = 0; at < prompt.length;) {
        const take = Math.min(prompt.length - at, PREFILL_CHUNK - tokens.length);
        for (let j = 0; j < take; j++) { tokens.push(prompt[at + j]!); sequences.push(r.sequence); }
        at += take;
        if (at === prompt.length) ends.push({ at: tokens.length - 1, row: r });
        if (tokens.length >= PREFILL_CHUNK) flush();
      }
    }
    flush();
  }

  /** A token for every running row, each request's rows in order from its own random stream; rows that end free their sequence. */
  private sample(): void {
    const touched = new Set<Request>();
    for (const r of this.rows) {
      if (r.done || !r.logits) continue;
      const q = r.request;
      const { token } = sampleToken(r.logits, q.rows[r.index]!.sampling, q.random);
      r.logits = null;
      const tokens = q.tokens[r.index]!;
      tokens.push(token);
      const ended = this.eos.has(token) ? 'eos' : q.stream.push(r.index, token) ? 'stop' : tokens.length >= q.maxNew[r.index]! ? 'length' : null;
      touched.add(q);
      if (!ended) continue;
      q.endedBy[r.index] = ended;
      r.done = true;
      this.decoder.freeSequence(r.sequence);
    }
    for (const q of touched) {
      if (this.rows.some((r) => r.request === q && !r.done)) this.sendDeltas(q);
      else this.finish(q);
    }
  }

  private finish(q: Request): void {
    const out = q.rows.map((_, b): ServedRow => ({
      text: q.stream.finish(b, q.tokens[b]!), promptTokens: q.ids[b]!.length, completionTokens: q.tokens[b]!.length,
      finishReason: q.endedBy[b] === 'length' ? 'length' : 'stop',
    }));
    this.sendDeltas(q);
    q.resolve(out);
  }

  /** The text written since the last call, of the rows that stream it. */
  private sendDeltas(q: Request): void {
    const d = q.stream.take().filter((x) => q.rows[x.row]!.stream !== false);
    if (d.length) q.onDeltas(d);
  }
}

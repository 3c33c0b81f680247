import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { openAiExtractFn, servedModelVersion } from '../src/extraction/openai-endpoint.ts';
import { ModelVersionMismatchError } from '../src/extraction/model-version-guard.ts';
import { EVALUATION_SAMPLING } from '../src/model/inference/sampling.ts';

interface ChatRequest {
  model: string;
  messages: { role: string; content: string }[];
  temperature: number;
  top_p: number;
  top_k?: number;
  max_tokens: number;
  seed: number;
}

interface FakeEndpoint {
  baseUrl: string;
  posts: { body: ChatRequest; authorization: string | undefined }[];
  gets: number;
  maxInFlight: number;
  close(): Promise<void>;
}

type ChatHandler = (body: ChatRequest, index: number) => Promise<{ status?: number; json?: unknown; raw?: string }>;

/** A real OpenAI-compatible server on a free port: /v1/models lists `models`, /v1/chat/completions runs `chat`. */
async function fakeEndpoint(models: unknown, chat: ChatHandler): Promise<FakeEndpoint> {
  const state = { posts: [] as FakeEndpoint['posts'], gets: 0, inFlight: 0, maxInFlight: 0 };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const send = (status: number, payload: string) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(payload);
    };
    if (req.method === 'GET' && req.url === '/v1/models') {
      state.gets++;
      return send(200, JSON.stringify(models));
    }
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequest;
      const index = state.posts.length;
      state.posts.push({ body, authorization: req.headers.authorization });
      state.inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      try {
        const r = await chat(body, index);
        return send(r.status ?? 200, r.raw ?? JSON.stringify(r.json));
      } finally {
        state.inFlight--;
      }
    }
    send(404, '{"error":"not found"}');
  };
  const server = createServer((req, res) => { handle(req, res).catch((err) => { res.writeHead(599); res.end(String(err)); }); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    get posts() { return state.posts; },
    get gets() { return state.gets; },
    get maxInFlight() { return state.maxInFlight; },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

const oneModel = (id: string) => ({ object: 'list', data: [{ id, object: 'model', owned_by: 'vllm' }] });

const answer = (model: string | undefined, content: string, tokens = 5) => ({
  json: {
    id: 'cmpl-1', object: 'chat.completion', ...(model === undefined ? {} : { model }),
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 10, completion_tokens: tokens, total_tokens: 10 + tokens },
  },
});

const options = (baseUrl: string, modelVersion = 'policy-v7') => ({ baseUrl, modelVersion, sampling: EVALUATION_SAMPLING, maxTokens: 64 });

describe('OpenAI-compatible extraction endpoint', () => {
  it('sends each prompt with the evaluation sampling preset and returns answers in prompt order', async () => {
    // The first prompt answers last, so prompt order must come from the client, not arrival order.
    const ep = await fakeEndpoint(oneModel('policy-v7'), async (body) => {
      const prompt = body.messages[0]!.content;
      await sleep(prompt === 'first' ? 60 : 5);
      return answer('policy-v7', `items for ${prompt}`, prompt.length);
    });
    try {
      const extract = await openAiExtractFn({ ...options(`${ep.baseUrl}/`), apiKey: 'sekret' });
      const out = await extract(['first', 'second!'], 42);
      assert.deepEqual(out, [{ text: 'items for first', tokens: 5 }, { text: 'items for second!', tokens: 7 }]);
      assert.equal(ep.gets, 1);
      assert.equal(ep.posts.length, 2);
      const byPrompt = new Map(ep.posts.map((p) => [p.body.messages[0]!.content, p]));
      for (const prompt of ['first', 'second!']) {
        const p = byPrompt.get(prompt);
        assert.ok(p, `a request for ${prompt}`);
        assert.equal(p.authorization, 'Bearer sekret');
        const { seed, ...rest } = p.body;
        assert.deepEqual(rest, {
          model: 'policy-v7', messages: [{ role: 'user', content: prompt }],
          temperature: 0.7, top_p: 0.8, top_k: 20, max_tokens: 64,
        });
        assert.ok(Number.isInteger(seed) && seed >= 0, `seed ${seed} is a non-negative integer`);
      }
      assert.notEqual(byPrompt.get('first')!.body.seed, byPrompt.get('second!')!.body.seed, 'each prompt gets its own seed');
    } finally {
      await ep.close();
    }
  });

  it('sends the task\'s chat-template variables as chat_template_kwargs (enable_thinking), and none when there are none', async () => {
    const ep = await fakeEndpoint(oneModel('policy-v7'), async () => ({ json: { choices: [{ message: { role: 'assistant', content: 'x' } }] } }));
    try {
      await (await openAiExtractFn({ ...options(ep.baseUrl), templateVariables: { enable_thinking: false } }))(['p'], 1);
      assert.deepEqual((ep.posts[0]!.body as unknown as { chat_template_kwargs: unknown }).chat_template_kwargs, { enable_thinking: false });
      await (await openAiExtractFn({ ...options(ep.baseUrl), templateVariables: {} }))(['p'], 1);
      assert.equal('chat_template_kwargs' in ep.posts[1]!.body, false);
    } finally {
      await ep.close();
    }
  });

  it('omits top_k when topK is 0 and counts missing usage as 0 tokens', async () => {
    const ep = await fakeEndpoint(oneModel('policy-v7'), async () => ({ json: { choices: [{ message: { role: 'assistant', content: 'x' } }] } }));
    try {
      const extract = await openAiExtractFn({ ...options(ep.baseUrl), sampling: { temperature: 0.7, topP: 1, topK: 0 } });
      assert.deepEqual(await extract(['p'], 1), [{ text: 'x', tokens: 0 }]);
      assert.equal('top_k' in ep.posts[0]!.body, false);
    } finally {
      await ep.close();
    }
  });

  it('refuses an endpoint that serves another model version before sending any prompt', async () => {
    const ep = await fakeEndpoint(oneModel('policy-v8'), async () => answer('policy-v8', 'never'));
    try {
      await assert.rejects(openAiExtractFn(options(ep.baseUrl, 'policy-v7')), (err: unknown) => {
        assert.ok(err instanceof ModelVersionMismatchError);
        assert.equal(err.endpointDeclared, 'policy-v8');
        assert.equal(err.trajectoryModelVersion, 'policy-v7');
        return true;
      });
      assert.equal(ep.gets, 1);
      assert.equal(ep.posts.length, 0, 'no completion request after a mismatch');
    } finally {
      await ep.close();
    }
  });

  it('refuses an endpoint that serves two models, naming the URL and both ids', async () => {
    const ep = await fakeEndpoint({ object: 'list', data: [{ id: 'policy-v7' }, { id: 'policy-v7-lora' }] }, async () => answer('policy-v7', 'never'));
    try {
      await assert.rejects(openAiExtractFn(options(ep.baseUrl)), (err: unknown) => {
        assert.ok(err instanceof Error && !(err instanceof ModelVersionMismatchError));
        assert.match(err.message, new RegExp(`${ep.baseUrl}/models`));
        assert.match(err.message, /exactly one model/);
        assert.match(err.message, /serves 2/);
        assert.match(err.message, /"policy-v7", "policy-v7-lora"/);
        return true;
      });
      assert.equal(ep.posts.length, 0);
    } finally {
      await ep.close();
    }
  });

  it('refuses an endpoint serving no model or a body without a data array', async () => {
    for (const [models, expected] of [[{ object: 'list', data: [] }, /serves 0/], [{ models: ['policy-v7'] }, /"data" array/], [{ data: [{ name: 'x' }] }, /data\[0\]\.id/]] as const) {
      const ep = await fakeEndpoint(models, async () => answer('policy-v7', 'never'));
      try {
        await assert.rejects(servedModelVersion({ baseUrl: ep.baseUrl }), (err: unknown) => {
          assert.ok(err instanceof Error);
          assert.match(err.message, new RegExp(`GET ${ep.baseUrl}/models`));
          assert.match(err.message, expected);
          return true;
        });
      } finally {
        await ep.close();
      }
    }
  });

  it('refuses an answer whose model field changed mid-round (endpoint redeployed)', async () => {
    const ep = await fakeEndpoint(oneModel('policy-v7'), async (_body, index) => answer(index === 0 ? 'policy-v7' : 'policy-v8', `answer ${index}`));
    try {
      const extract = await openAiExtractFn({ ...options(ep.baseUrl), concurrency: 1 });
      await assert.rejects(extract(['a', 'b', 'c'], 3), (err: unknown) => {
        assert.ok(err instanceof ModelVersionMismatchError);
        assert.equal(err.endpointDeclared, 'policy-v8');
        assert.equal(err.trajectoryModelVersion, 'policy-v7');
        return true;
      });
      assert.equal(ep.posts.length, 2, 'stops sending prompts after the mismatch');
    } finally {
      await ep.close();
    }
  });

  it('reports an HTTP error with the URL, the status and the start of the body', async () => {
    const ep = await fakeEndpoint(oneModel('policy-v7'), async () => ({ status: 500, raw: `{"error":"CUDA out of memory${'!'.repeat(500)}"}` }));
    try {
      const extract = await openAiExtractFn(options(ep.baseUrl));
      await assert.rejects(extract(['a'], 1), (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.match(err.message, new RegExp(`POST ${ep.baseUrl}/chat/completions`));
        assert.match(err.message, /HTTP 500/);
        assert.match(err.message, /CUDA out of memory/);
        assert.ok(!err.message.includes('!'.repeat(200)), 'the body is cut to its first 200 characters');
        return true;
      });
    } finally {
      await ep.close();
    }
  });

  it('gives up on a request that takes longer than timeoutMs', async () => {
    const ep = await fakeEndpoint(oneModel('policy-v7'), async () => { await sleep(1000); return answer('policy-v7', 'late'); });
    try {
      const extract = await openAiExtractFn({ ...options(ep.baseUrl), timeoutMs: 100 });
      await assert.rejects(extract(['a'], 1), /no response within 100 ms/);
    } finally {
      await ep.close();
    }
  });

  it('runs at most `concurrency` requests at once and keeps prompt order', async () => {
    const ep = await fakeEndpoint(oneModel('policy-v7'), async (body) => {
      await sleep(30);
      return answer('policy-v7', `re: ${body.messages[0]!.content}`);
    });
    try {
      const extract = await openAiExtractFn({ ...options(ep.baseUrl), concurrency: 3 });
      const prompts = Array.from({ length: 10 }, (_, i) => `prompt ${i}`);
      const out = await extract(prompts, 9);
      assert.deepEqual(out.map((c) => c.text), prompts.map((p) => `re: ${p}`));
      assert.equal(ep.posts.length, 10);
      assert.ok(ep.maxInFlight <= 3, `at most 3 in flight, saw ${ep.maxInFlight}`);
      assert.ok(ep.maxInFlight > 1, `requests run in parallel, saw ${ep.maxInFlight}`);
    } finally {
      await ep.close();
    }
  });
});

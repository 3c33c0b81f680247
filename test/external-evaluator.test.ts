import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { runEvaluator } from '../src/evaluation/external-evaluator.ts';
import { userPrompt } from '../src/model/inference/chat-prompt.ts';

const items = [{ prompt: userPrompt('How long is the warranty?'), reply: '24 months' }, { prompt: userPrompt('Refund window?'), reply: 'no idea' }];
/** A command evaluator: passes replies that contain a digit. */
const JUDGE = `let b='';process.stdin.on('data',d=>b+=d).on('end',()=>{for(const l of b.split('\\n').filter(Boolean)){const x=JSON.parse(l);const ok=/\\d/.test(x.reply);console.log(JSON.stringify({pass:ok,reason:ok?'has a figure':'no figure in '+x.prompt.at(-1).content}))}})`;

describe('external evaluators (a team\'s own pass/fail checks)', () => {
  it('a command reads JSON lines and answers one verdict per line', async () => {
    const v = await runEvaluator({ command: [process.execPath, '-e', JUDGE] }, items);
    assert.deepEqual(v, [{ pass: true, reason: 'has a figure' }, { pass: false, reason: 'no figure in Refund window?' }]);
  });

  it('fails loudly, naming the evaluator, when a command crashes, answers too few lines, writes no JSON, or hangs', async () => {
    await assert.rejects(runEvaluator({ command: [process.execPath, '-e', 'process.stderr.write("boom"); process.exit(3)'] }, items), /evaluator command ".*": exited with status 3: boom/);
    await assert.rejects(runEvaluator({ command: [process.execPath, '-e', 'process.stdin.resume(); process.stdin.on("end", () => console.log(JSON.stringify({pass:true})))'] }, items), /answered 1 lines for 2 items/);
    await assert.rejects(runEvaluator({ command: [process.execPath, '-e', 'process.stdin.resume(); process.stdin.on("end", () => console.log("yes\\nno"))'] }, items), /line 1 is not JSON: yes/);
    await assert.rejects(runEvaluator({ command: [process.execPath, '-e', 'process.stdin.resume(); process.stdin.on("end", () => console.log(JSON.stringify({ok:1})+"\\n"+JSON.stringify({ok:1})))'] }, items), /line 1: expected \{"pass": true\|false/);
    await assert.rejects(runEvaluator({ command: [process.execPath, '-e', 'setTimeout(() => {}, 60000)'], timeoutMs: 300 }, items), /no complete answer within 300 ms/);
    await assert.rejects(runEvaluator({ command: ['/nonexistent/judge'] }, items), /could not start/);
  });

  it('an HTTP evaluator gets each item as JSON, with the bearer token, and its errors name the item', async () => {
    const seen: { auth: string | undefined; body: { reply: string } }[] = [];
    const server = createServer((req, res) => {
      let b = '';
      req.on('data', (d) => { b += d; }).on('end', () => {
        const body = JSON.parse(b) as { reply: string };
        seen.push({ auth: req.headers.authorization, body });
        if (body.reply === 'explode') { res.writeHead(500); res.end('judge down'); return; }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ pass: body.reply.includes('24'), reason: 'checked' }));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/judge`;
    try {
      const v = await runEvaluator({ url, bearerToken: 'sekrit' }, items);
      assert.deepEqual(v.map((x) => x.pass), [true, false]);
      assert.equal(seen[0]!.auth, 'Bearer sekrit');
      assert.deepEqual(seen[0]!.body, JSON.parse(JSON.stringify(items[0])));
      await assert.rejects(runEvaluator({ url }, [items[0]!, { ...items[1]!, reply: 'explode' }]), /evaluator http:.*item 2: HTTP 500: judge down/);
    } finally {
      server.close();
    }
  });
});

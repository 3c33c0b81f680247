/**
 * Logit parity with Hugging Face transformers (the release this machine's package index has, 5.x
 * here), on random Qwen3-, Qwen2- and Llama-shaped models saved by transformers itself, with and
 * without RoPE scaling (llama3, yarn, linear, dynamic): oeld's
 * TypeScript runtime (issue #16: config.json as transformers 5 writes it, rope_parameters included)
 * and the torch trainer's own model code (issue #18) each give transformers' logits on the same
 * token ids, in float32.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../src/model/formats/checkpoint.ts';
import { loadTokenizer } from '../src/model/formats/tokenizer.ts';
import { promptIds, type Prompt } from '../src/model/inference/chat-prompt.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { resolveConfig } from '../src/model/network/model-config.ts';
import { torchModelSpec } from '../src/trainer/torch-job.ts';

const ROOT = join(import.meta.dirname, '..');
const PYTHON = join(ROOT, '.build', 'venv-hf', 'bin', 'python');
const SCRIPT = join(ROOT, 'python', 'reference', 'hf_reference.py');
const MODELS = ['qwen3', 'qwen2', 'llama', 'llama3-scaled', 'qwen3-yarn', 'llama-linear', 'qwen2-dynamic'] as const;
const SCALED = new Set<string>(['llama3-scaled', 'qwen3-yarn', 'llama-linear', 'qwen2-dynamic']);

const worst = (a: number[][][], b: number[][][]) => {
  let w = 0;
  a.forEach((row, i) => row.forEach((pos, t) => pos.forEach((x, v) => { w = Math.max(w, Math.abs(x - b[i]![t]![v]!)); })));
  return w;
};

describe('logits against Hugging Face transformers', () => {
  let out: string;
  let version: string;
  before(async () => {
    await initBackend();
    out = mkdtempSync(join(tmpdir(), 'oeld-hf-'));
    // scripts/ensure-transformers.sh (run by scripts/test.sh) makes the environment.
    version = JSON.parse(execFileSync(PYTHON, [SCRIPT, 'make', out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').pop()!).transformers;
    // The torch model gets the rotary frequencies oeld computes, for the test's sequence length (dynamic scaling reads it).
    const seqLen = 12;
    for (const m of MODELS) writeFileSync(join(out, m, 'resolved.json'), JSON.stringify(torchModelSpec(resolveConfig(JSON.parse(readFileSync(join(out, m, 'config.json'), 'utf8'))), seqLen)));
    execFileSync(PYTHON, [SCRIPT, 'torch', out], { stdio: ['ignore', 'pipe', 'ignore'] });
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  for (const m of MODELS) {
    it(`${m}: the TypeScript runtime and the torch trainer's model within 1e-4 of transformers`, () => {
      const reference = JSON.parse(readFileSync(join(out, m, 'reference.json'), 'utf8')) as { ids: number[][]; logits: number[][][]; unscaledLogits: number[][][] };
      assert.equal(reference.ids[0]!.length, 12);
      const { model } = loadModel(join(out, m), { trainable: false });
      const { logits } = model.forward(reference.ids);
      const ts = logits.arraySync() as number[][][];
      tf.dispose(logits);
      model.dispose();
      const torch = (JSON.parse(readFileSync(join(out, 'oeld-torch.json'), 'utf8')) as Record<string, number[][][]>)[m]!;
      const scale = Math.max(...reference.logits.flat(2).map(Math.abs));
      const dTs = worst(ts, reference.logits);
      const byScaling = worst(reference.unscaledLogits, reference.logits);
      const dTorch = worst(torch, reference.logits);
      console.log(`${m} (transformers ${version}): largest logit difference TypeScript ${dTs.toExponential(2)}, torch trainer ${dTorch.toExponential(2)} (logits up to ${scale.toFixed(2)}; the RoPE scaling moves them by ${byScaling.toExponential(2)})`);
      assert.ok(scale > 0.1, 'the logits are not trivially small');
      if (SCALED.has(m)) assert.ok(byScaling > 1e-2, `the RoPE scaling changes the logits (by ${byScaling}), so the check can fail`);
      assert.ok(dTs <= 1e-4, `TypeScript runtime: ${dTs}`);
      assert.ok(dTorch <= 1e-4, `torch trainer: ${dTorch}`);
    });
  }
});

describe("chat templates against transformers' apply_chat_template", () => {
  const cases = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'chat-templates', 'cases.json'), 'utf8')) as { messages: Prompt; variables?: Record<string, unknown> }[];
  /** A copy of the shipped model's tokenizer with `template` in tokenizer_config.json or in chat_template.jinja. */
  const folder = (template: string | null, where: 'tokenizer_config.json' | 'chat_template.jinja') => {
    const dir = mkdtempSync(join(tmpdir(), 'oeld-template-'));
    const config = JSON.parse(readFileSync(join(ROOT, 'models', 'oeld-base', 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    for (const f of ['tokenizer.json', 'config.json', 'generation_config.json']) copyFileSync(join(ROOT, 'models', 'oeld-base', f), join(dir, f));
    const text = template ?? String(config.chat_template);
    if (where === 'chat_template.jinja') { delete config.chat_template; writeFileSync(join(dir, 'chat_template.jinja'), text); } else config.chat_template = text;
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    return dir;
  };
  const chatml = readFileSync(join(ROOT, 'test', 'fixtures', 'chat-templates', 'chatml-thinking.jinja'), 'utf8');
  for (const [label, template, where] of [
    ["the shipped model's template, in tokenizer_config.json", null, 'tokenizer_config.json'],
    ["the shipped model's template, in chat_template.jinja (as transformers 5 saves it)", null, 'chat_template.jinja'],
    ['a ChatML template with thinking, tool calls and a namespace, in chat_template.jinja', chatml, 'chat_template.jinja'],
  ] as const) {
    it(`${label}: the same token ids`, async () => {
      const dir = folder(template, where);
      try {
        execFileSync(PYTHON, [SCRIPT, 'template', dir, join(ROOT, 'test', 'fixtures', 'chat-templates', 'cases.json'), join(dir, 'expected.json')], { stdio: ['ignore', 'pipe', 'ignore'] });
        const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as number[][];
        const tokenizer = await loadTokenizer(dir);
        cases.forEach((c, i) => assert.deepEqual(promptIds(tokenizer, c.messages, c.variables), expected[i], `case ${i}: ${tokenizer.decode(expected[i]!, false)}`));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

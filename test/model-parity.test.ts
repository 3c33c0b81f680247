import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { initBackend } from '../src/model/kernels/backend.ts';
import { resolveConfig } from '../src/model/network/model-config.ts';
import { loadCheckpoint } from '../src/model/formats/safetensors.ts';
import { Transformer } from '../src/model/network/transformer.ts';

const FIXTURES = new URL('./fixtures/model-parity/', import.meta.url).pathname;

interface Expected { sequences: { tokens: number[]; logits: number[][] }[] }

function load(name: string): { model: Transformer; expected: Expected } {
  const dir = `${FIXTURES}${name}`;
  const config = resolveConfig(JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')));
  const model = Transformer.fromTensors(config, loadCheckpoint(dir).tensors);
  return { model, expected: JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8')) as Expected };
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((row, i) => row.forEach((x, j) => { m = Math.max(m, Math.abs(x - b[i]![j]!)); }));
  return m;
}

describe('numerical parity with an independent NumPy reference (test/fixtures/model-parity)', () => {
  for (const [name, backend] of ['llama', 'qwen2', 'qwen3'].flatMap((n) => (['cpu', 'wasm'] as const).map((b) => [n, b] as const))) {
    it(`${name} on ${backend}: logits on fixed token ids within 1e-4`, async () => {
      await initBackend({ force: backend });
      const { model, expected } = load(name);
      try {
        for (const seq of expected.sequences) {
          const { logits } = model.forward([seq.tokens]);
          const got = (await logits.array())[0]!;
          logits.dispose();
          const diff = maxAbsDiff(got, seq.logits);
          assert.ok(diff < 1e-4, `max |diff| ${diff}`);
        }
        // Both sequences in one right-padded batch give the same logits at real positions.
        const [a, b] = expected.sequences;
        const T = a!.tokens.length;
        const padded = [a!.tokens, [...b!.tokens, ...Array(T - b!.tokens.length).fill(0)]];
        const mask = [Array(T).fill(1), [...Array(b!.tokens.length).fill(1), ...Array(T - b!.tokens.length).fill(0)]];
        const { logits } = model.forward(padded, { attentionMask: mask });
        const batch = await logits.array();
        logits.dispose();
        assert.ok(maxAbsDiff(batch[1]!.slice(0, b!.tokens.length), b!.logits) < 1e-4);
      } finally {
        model.dispose();
      }
    });
  }
});

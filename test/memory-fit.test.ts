/**
 * A model that does not fit the backend is refused with the figures before its weights are read
 * (src/model/kernels/memory-fit.ts, PolicyHost.load), instead of crashing the process later: the
 * WebAssembly backend's kernels fail past 2 GiB of heap.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { PolicyHost } from '../src/engine/policy-host.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { memoryRefusal, WASM_HEAP_LIMIT_BYTES } from '../src/model/kernels/memory-fit.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const GiB = 2 ** 30;

describe('whether a model fits the backend', () => {
  it('refuses on WebAssembly past 2 GiB, counting what is held already, and nowhere else', () => {
    assert.equal(memoryRefusal(1 * GiB, 'wasm', 0.5 * GiB, 'answer'), null);
    assert.equal(memoryRefusal(WASM_HEAP_LIMIT_BYTES, 'wasm', 0, 'answer'), null, 'exactly at the limit fits');
    assert.match(memoryRefusal(2.4 * GiB, 'wasm', 0, 'answer')!, /^needs about 2,458 MiB to answer on the WebAssembly backend, with 0 MiB already held, and that backend's kernels fail past 2,048 MiB/);
    assert.match(memoryRefusal(1.5 * GiB, 'wasm', 0.6 * GiB, 'train a round')!, /to train a round .* with 615 MiB already held/);
    assert.equal(memoryRefusal(100 * GiB, 'tensorflow', 0, 'answer'), null);
    assert.equal(memoryRefusal(100 * GiB, 'cpu', 0, 'answer'), null);
  });

  it('refuses a Qwen3-0.6B-shaped folder before reading its weights, naming the figures', async (t) => {
    const backend = await initBackend();
    if (backend.name !== 'wasm') { t.skip(`the backend here is ${backend.name}, which has no 2 GiB cap`); return; }
    const tiny = await makeTinyModel();
    const big = mkdtempSync(join(tmpdir(), 'oeld-big-'));
    try {
      // The tiny model's files under a config that claims a 0.6B model: the refusal must come first.
      cpSync(tiny, big, { recursive: true });
      const config = JSON.parse(readFileSync(join(tiny, 'config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(big, 'config.json'), JSON.stringify({ ...config, model_type: 'qwen3', vocab_size: 151_936, hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128 }));
      const host = new PolicyHost();
      await assert.rejects(host.load('big', big), /model big \(.*\) needs about 2,\d{3} MiB to answer on the WebAssembly backend/);
      await host.load('tiny', tiny);
      host.dispose();
    } finally {
      rmSync(big, { recursive: true, force: true });
      rmSync(dirname(tiny), { recursive: true, force: true });
    }
  });
});

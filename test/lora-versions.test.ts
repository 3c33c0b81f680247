/**
 * LoRA adapter versions: the torch trainer trains an adapter (OELD_TORCH_LORA_RANK), the round
 * publishes it as a PEFT folder on its full-weight version with both sha256 recorded, the
 * TypeScript runtime merges it at load so that the simulator, the gate and rollback work with it,
 * the next round continues the adapter, and a tfjs round from it writes full weights.
 */
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import type { EventDataMap } from '../src/events/schemas.ts';
import { loadModel } from '../src/model/formats/checkpoint.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loraWeightName, mergeLora, OELD_ADAPTER, readAdapterFolder } from '../src/model/formats/lora-adapter.ts';
import { loadSafetensorsFile } from '../src/model/formats/safetensors.ts';
import { rollbackModel } from '../src/operations/rollback.ts';
import { readActiveModel } from '../src/projections/models/model-projection.ts';
import { RoundRunner, type RoundOutcome, trained } from '../src/rounds/round-runner.ts';
import type { EventStore } from '../src/store/event-store.ts';
import { START } from '../src/store/read-events.ts';
import { TorchTrainer } from '../src/trainer/torch-trainer.ts';
import type { Trainer } from '../src/trainer/trainer-port.ts';
import type { TestDatabase } from './helpers/databases.ts';
import { scriptedExtractor, tinyGameRound, TINY_ROUND } from './helpers/round-settings.ts';
import { modelSha256 } from './helpers/tiny-model.ts';
import { tinyRoundWorld } from './helpers/tiny-round-world.ts';
import { torchPython } from './helpers/torch-python.ts';

const ALL = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;

describe('merging an adapter', () => {
  it('adds (alpha / r) B A to each targeted weight and refuses factors that fit no weight', () => {
    const w = { shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
    const name = 'model.layers.0.self_attn.q_proj.weight';
    const A = { shape: [1, 2], data: Float32Array.from([1, -1]) };
    const B = { shape: [3, 1], data: Float32Array.from([1, 2, 3]) };
    const tensors = new Map([[name, w], ['model.norm.weight', { shape: [2], data: Float32Array.from([1, 1]) }]]);
    const adapter = new Map([[loraWeightName(name, 'A'), A], [loraWeightName(name, 'B'), B]]);
    assert.equal(mergeLora(tensors, adapter, { rank: 1, alpha: 2, targetModules: ['q_proj'] }), 1);
    // B A = [[1, -1], [2, -2], [3, -3]], times 2.
    assert.deepEqual([...tensors.get(name)!.data], [3, 0, 7, 0, 11, 0]);
    assert.deepEqual([...tensors.get('model.norm.weight')!.data], [1, 1], 'untargeted weights unchanged');
    adapter.set('base_model.model.model.layers.9.mlp.up_proj.lora_A.weight', A);
    assert.throws(() => mergeLora(new Map([[name, w]]), adapter, { rank: 1, alpha: 2, targetModules: ['q_proj'] }), /factors match no weight of the base/);
    assert.throws(() => mergeLora(new Map([[name, w]]), new Map(), { rank: 1, alpha: 2, targetModules: ['q_proj'] }), /no lora_A\/lora_B factors for model.layers.0.self_attn.q_proj.weight/);
  });
});

describe('LoRA versions through rounds', () => {
  let db: TestDatabase;
  let store: EventStore;
  let engine: ModelEngine;
  let modelDir: string;
  let artifactRoot: string;
  let torch: TorchTrainer;
  let catchUp: () => Promise<void>;
  let play: () => Promise<void>;
  let close: () => Promise<void>;
  const published = async (version: string) => (await store.read({ after: START, limit: 100_000 })).events
    .find((e) => e.type === 'ModelVersionPublished' && (e.data as { version: string }).version === version)!.data as EventDataMap['ModelVersionPublished'];
  const round = async (trainer: Trainer | undefined): Promise<RoundOutcome> => {
    const outcome = await new RoundRunner({
      store, engine, ...(trainer ? { trainer } : {}), artifactRoot, ...tinyGameRound(engine), settings: TINY_ROUND, extractFnFor: scriptedExtractor([]),
    }).run('manual').then(trained);
    await catchUp();
    return outcome;
  };
  before(async () => {
    const w = await tinyRoundWorld('lora');
    ({ db, store, engine, modelDir, catchUp, play, close } = w);
    artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-lora-'));
    torch = new TorchTrainer({ python: torchPython(), device: 'cpu', stallSeconds: 120, lora: { rank: 4, alpha: 8, targets: [...ALL] } });
  });
  after(async () => { await torch.close(); await close(); });

  let first: RoundOutcome;
  it('publishes an adapter on the full-weight version, with both sha256, that the runtime merges at load', async () => {
    first = await round(torch);
    const event = await published(first.newVersion);
    assert.deepEqual(event.adapterOf, { version: 'tiny', sha256: modelSha256(modelDir) });
    const dir = event.path;
    assert.ok(!existsSync(join(dir, 'model.safetensors')) && !existsSync(join(dir, 'config.json')), 'no full weights in an adapter version');
    for (const f of [ADAPTER_CONFIG, ADAPTER_WEIGHTS, OELD_ADAPTER, 'tokenizer.json']) assert.ok(existsSync(join(dir, f)), f);
    const config = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG), 'utf8'));
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.r, 4);
    assert.equal(config.lora_alpha, 8);
    assert.equal(config.base_model_name_or_path, modelDir);
    assert.deepEqual(config.target_modules, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    assert.equal(event.sha256, modelSha256(dir, ADAPTER_WEIGHTS));
    assert.ok(first.after, 'the gate evaluated the adapter version on the TypeScript runtime');

    // The merged weights are the base's plus 2 * B A, computed here independently.
    const adapter = loadSafetensorsFile(join(dir, ADAPTER_WEIGHTS)).tensors;
    const base = loadSafetensorsFile(join(modelDir, 'model.safetensors')).tensors;
    const name = 'model.layers.0.mlp.down_proj.weight';
    const { model } = loadModel(dir, { trainable: false });
    const merged = model.toTensors().get(name)!;
    model.dispose();
    const A = adapter.get(loraWeightName(name, 'A'))!;
    const B = adapter.get(loraWeightName(name, 'B'))!;
    const [out, inn] = base.get(name)!.shape as [number, number];
    let worst = 0;
    let moved = 0;
    for (let o = 0; o < out; o++) for (let i = 0; i < inn; i++) {
      let s = 0;
      for (let r = 0; r < 4; r++) s += B.data[o * 4 + r]! * A.data[r * inn + i]!;
      worst = Math.max(worst, Math.abs(merged.data[o * inn + i]! - (base.get(name)!.data[o * inn + i]! + 2 * s)));
      moved = Math.max(moved, Math.abs(2 * s));
    }
    assert.ok(moved > 1e-5, 'the adapter trained (B is no longer zero)');
    assert.ok(worst < 1e-6, `merged weight off by ${worst}`);
  });

  it('continues the adapter in the next round (at its own rank), still on the same full-weight version', async () => {
    await play();
    // Set up for rank 2: a round from a rank-4 adapter version continues that adapter, at rank 4.
    const rank2 = new TorchTrainer({ python: torchPython(), device: 'cpu', stallSeconds: 120, lora: { rank: 2, alpha: 4, targets: ['q'] } });
    let second: RoundOutcome;
    try { second = await round(rank2); } finally { await rank2.close(); }
    const event = await published(second.newVersion);
    assert.deepEqual(event.adapterOf, { version: 'tiny', sha256: modelSha256(modelDir) });
    const config = JSON.parse(readFileSync(join(event.path, ADAPTER_CONFIG), 'utf8'));
    assert.equal(config.r, 4);
    assert.equal(config.lora_alpha, 8);
    assert.equal(config.target_modules.length, 7);
    const a1 = loadSafetensorsFile(join((await published(first.newVersion)).path, ADAPTER_WEIGHTS)).tensors;
    const a2 = loadSafetensorsFile(join(event.path, ADAPTER_WEIGHTS)).tensors;
    const name = loraWeightName('model.layers.0.self_attn.q_proj.weight', 'A');
    // Continued: A started from round 1's A (a fresh adapter would start from a new random A), so it stays close to it.
    let diff = 0;
    let size = 0;
    for (let i = 0; i < a1.get(name)!.data.length; i++) { diff = Math.max(diff, Math.abs(a1.get(name)!.data[i]! - a2.get(name)!.data[i]!)); size = Math.max(size, Math.abs(a1.get(name)!.data[i]!)); }
    assert.ok(diff > 0 && diff < size / 4, `A moved by ${diff} (its entries are up to ${size})`);
  });

  it('refuses to merge an adapter into weights other than those it was trained on', async () => {
    const dir = (await published(first.newVersion)).path;
    const other = mkdtempSync(join(tmpdir(), 'oeld-lora-other-'));
    cpSync(dir, join(other, 'adapter'), { recursive: true });
    cpSync(modelDir, join(other, 'base'), { recursive: true });
    const weights = readFileSync(join(other, 'base', 'model.safetensors'));
    weights[weights.length - 1] = weights[weights.length - 1]! ^ 1;
    writeFileSync(join(other, 'base', 'model.safetensors'), weights);
    const config = JSON.parse(readFileSync(join(other, 'adapter', ADAPTER_CONFIG), 'utf8'));
    writeFileSync(join(other, 'adapter', ADAPTER_CONFIG), JSON.stringify({ ...config, base_model_name_or_path: join(other, 'base') }));
    assert.throws(() => loadModel(join(other, 'adapter')), /the adapter was trained on base tiny with sha256 [0-9a-f]{64}, but .* has sha256 [0-9a-f]{64}; refusing/);
    assert.equal(readAdapterFolder(modelDir), null, 'a full-weight folder is no adapter');
    copyFileSync(join(dir, ADAPTER_CONFIG), join(other, ADAPTER_CONFIG));
    assert.throws(() => readAdapterFolder(other), /an adapter folder without oeld-adapter.json/);
  });

  it('rolls back to an adapter version, and a tfjs round from one writes full weights', async () => {
    await rollbackModel(store, first.newVersion);
    await catchUp();
    assert.equal((await readActiveModel(db.sql))!.version, first.newVersion);
    await play();
    const third = await round(undefined);
    const event = await published(third.newVersion);
    assert.equal(event.adapterOf, undefined);
    assert.ok(existsSync(join(event.path, 'model.safetensors')) && existsSync(join(event.path, 'config.json')));
    assert.deepEqual(readdirSync(event.path).filter((f) => f.startsWith('adapter')), []);
  });
});

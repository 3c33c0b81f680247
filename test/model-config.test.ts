/**
 * config.json as current tools write it: the rotary base from rope_theta (transformers before 5)
 * or rope_parameters.rope_theta (transformers 5), and a loud refusal of what the runtime does not
 * implement (RoPE scaling, sliding windows) instead of running a different model; and a version
 * folder written from a model carries what its tokenizer and chat template need.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { loadModel, saveModel } from '../src/model/formats/checkpoint.ts';
import { storedDtypesOf } from '../src/model/formats/safetensors.ts';
import { loadTokenizer } from '../src/model/formats/tokenizer.ts';
import { resolveConfig } from '../src/model/network/model-config.ts';
import { initialWeights } from '../src/model/network/init-weights.ts';
import { Transformer } from '../src/model/network/transformer.ts';
import { modelFolderInfo, parameterCount } from '../src/model/formats/model-folder-info.ts';
import { oeld } from './helpers/oeld-cli.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const qwen3 = { model_type: 'qwen3', vocab_size: 100, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 16 };

describe('model config', () => {
  it('reads the rotary base where transformers 4 and 5 write it', () => {
    assert.equal(resolveConfig({ ...qwen3, rope_theta: 1_000_000 }).ropeTheta, 1_000_000);
    assert.equal(resolveConfig({ ...qwen3, rope_parameters: { rope_theta: 1_000_000, rope_type: 'default' } }).ropeTheta, 1_000_000, 'transformers 5: no top-level rope_theta');
    assert.equal(resolveConfig(qwen3).ropeTheta, 10000, 'neither: the Llama default');
    assert.throws(() => resolveConfig({ ...qwen3, rope_theta: 10000, rope_parameters: { rope_theta: 500000 } }), /rope_theta 10000 and rope_parameters\.rope_theta 500000 disagree/);
  });

  it('names the field and the value of a config it cannot read', () => {
    assert.throws(() => resolveConfig({ ...qwen3, model_type: 'mamba' }), /^Error: config: model_type: expected one of "llama", "qwen2", "qwen3" \(got "mamba"\)$/);
    assert.throws(() => resolveConfig({ ...qwen3, hidden_size: undefined }), /^Error: config: hidden_size: .* \(missing\)$/);
    assert.throws(() => resolveConfig({ ...qwen3, num_hidden_layers: 'six' }), /config: num_hidden_layers: .*\(got "six"\)/);
  });

  it('reads the RoPE scaling types transformers writes, with its defaults, and refuses the others naming the field and value', () => {
    assert.deepEqual(resolveConfig({ ...qwen3, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }).ropeScaling,
      { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    assert.deepEqual(resolveConfig({ ...qwen3, rope_scaling: { type: 'linear', factor: 2 } }).ropeScaling, { type: 'linear', factor: 2 });
    // yarn's defaults as transformers': beta 32 and 1, attention factor 0.1 ln(factor) + 1, truncate.
    const yarn = resolveConfig({ ...qwen3, rope_parameters: { rope_theta: 10000, rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } }).ropeScaling;
    assert.deepEqual(yarn, { type: 'yarn', factor: 4, originalMaxPositions: 32768, betaFast: 32, betaSlow: 1, attentionFactor: 0.1 * Math.log(4) + 1, truncate: true });
    assert.equal(resolveConfig({ ...qwen3, rope_scaling: null }).ropeScaling, null);
    assert.throws(() => resolveConfig({ ...qwen3, rope_scaling: { rope_type: 'llama3', factor: 8 } }), /rope_scaling\.low_freq_factor is missing \(rope type "llama3"\)/);
    assert.throws(() => resolveConfig({ ...qwen3, rope_scaling: { rope_type: 'linear', factor: -2 } }), /rope_scaling\.factor -2 is not a positive number/);
    assert.throws(() => resolveConfig({ ...qwen3, rope_parameters: { rope_theta: 10000, rope_type: 'longrope', factor: 4 } }), /rope_parameters\.rope_type "longrope" is not implemented by oeld's runtime \(default, linear, dynamic, llama3, yarn\)/);
    assert.throws(() => resolveConfig({ ...qwen3, rope_parameters: { rope_theta: 10000, rope_type: 'default', partial_rotary_factor: 0.5 } }), /partial_rotary_factor 0.5 is not implemented/);
    assert.throws(() => resolveConfig({ ...qwen3, rope_parameters: { rope_theta: 10000, rope_type: 'linear', factor: 2 }, rope_scaling: { rope_type: 'yarn', factor: 2 } }), /disagree/);
    assert.throws(() => resolveConfig({ ...qwen3, use_sliding_window: true, sliding_window: 4096 }), /use_sliding_window true is not implemented/);
    // What the Hub's configs say when nothing is scaled or windowed.
    assert.doesNotThrow(() => resolveConfig({ ...qwen3, rope_scaling: null, use_sliding_window: false }));
    assert.doesNotThrow(() => resolveConfig({ ...qwen3, rope_scaling: { rope_type: 'default' } }));
  });
});

describe('model folders written as versions', () => {
  it('carry the chat template a folder keeps in chat_template.jinja, so the version renders prompts as its base did', async () => {
    const base = await makeTinyModel();
    // The template moved out of tokenizer_config.json into chat_template.jinja, as transformers 5 saves it.
    const configPath = join(base, 'tokenizer_config.json');
    const tokenizerConfig = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(join(base, 'chat_template.jinja'), String(tokenizerConfig.chat_template));
    delete tokenizerConfig.chat_template;
    writeFileSync(configPath, JSON.stringify(tokenizerConfig));
    const before = (await loadTokenizer(base)).applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
    const { model, rawConfig } = loadModel(base);
    const version = join(dirname(base), 'version-1');
    const saved = saveModel(model, rawConfig, version, base);
    assert.ok(saved.files.includes('chat_template.jinja'), saved.files.join(', '));
    assert.ok(existsSync(join(version, 'chat_template.jinja')));
    assert.equal((await loadTokenizer(version)).applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true }), before);
  });
});

describe('the dtype of a version', () => {
  it('is the base\'s: a bf16 base gives bf16 versions, and config.json says so once', async () => {
    const base = await makeTinyModel();
    const { model } = loadModel(base);
    // The tiny model as a transformers 5 folder in bf16: `dtype` in config.json, BF16 tensors.
    const raw = JSON.parse(readFileSync(join(base, 'config.json'), 'utf8')) as Record<string, unknown>;
    delete raw.torch_dtype;
    const bf16 = join(dirname(base), 'bf16');
    saveModel(model, { ...raw, dtype: 'bfloat16' }, bf16, base);
    const loaded = loadModel(bf16);
    const version = join(dirname(base), 'bf16-version');
    saveModel(loaded.model, loaded.rawConfig, version, bf16);
    const header = (dir: string) => storedDtypesOf(join(dir, 'model.safetensors'));
    assert.deepEqual(header(version), ['BF16']);
    const config = JSON.parse(readFileSync(join(version, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.dtype, 'bfloat16');
    assert.equal(config.torch_dtype, undefined, 'no second, contradicting dtype field');
    // Half the bytes of the float32 base; the float32 base's versions stay float32.
    assert.ok(statSync(join(version, 'model.safetensors')).size < 0.6 * statSync(join(base, 'model.safetensors')).size);
    const f32 = join(dirname(base), 'f32-version');
    saveModel(model, loadModel(base).rawConfig, f32, base);
    assert.deepEqual(header(f32), ['F32']);
    assert.equal((JSON.parse(readFileSync(join(f32, 'config.json'), 'utf8')) as Record<string, unknown>).torch_dtype, 'float32');
  });
});

describe('oeld model info', () => {
  it('counts parameters as the transformer allocates them, for each family', () => {
    for (const raw of [
      qwen3,
      { ...qwen3, model_type: 'qwen2', head_dim: undefined, num_key_value_heads: 2 },
      { ...qwen3, model_type: 'llama', attention_bias: true, tie_word_embeddings: true },
    ]) {
      const config = resolveConfig(raw);
      const model = Transformer.fromTensors(config, initialWeights(config, 1));
      assert.equal(parameterCount(config), model.parameterCount(), raw.model_type);
      model.dispose();
    }
  });

  it('reads a folder without its weights: family, sizes, stored dtype, tokenizer and template, memory; and says why a config is refused', async () => {
    const dir = await makeTinyModel();
    const info = modelFolderInfo(dir);
    const { model } = loadModel(dir);
    assert.equal(info.family, 'llama');
    assert.equal(info.refused, null);
    assert.equal(info.parameters, model.parameterCount());
    assert.deepEqual(info.storedDtypes, ['F32']);
    assert.deepEqual(info.weightFiles, ['model.safetensors']);
    assert.equal(info.chatTemplate, 'tokenizer_config.json');
    assert.ok(info.tokenizerFiles.includes('tokenizer.json'));
    assert.equal(info.memory!.inferenceBytes, 4 * info.parameters!);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, rope_scaling: { rope_type: 'llama3', factor: 8 } }));
    const refused = modelFolderInfo(dir);
    assert.match(refused.refused!, /rope_scaling/);
    assert.equal(refused.parameters, null);
  });

  it('prints the RoPE scaling it will apply', async () => {
    const dir = await makeTinyModel();
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 256 } }));
    const r = await oeld(['model', 'info', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /rope +theta 10000, yarn scaling \(factor 4, originalMaxPositions 256, betaFast 32, betaSlow 1, attentionFactor 1\.13863, truncate true\), 1024 positions/);
  });
});

import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../network/model-config.ts';
import { ADAPTER_WEIGHTS, mergeLora, readAdapterFolder } from './lora-adapter.ts';
import { loadCheckpoint, loadSafetensorsFile, saveSafetensorsFile, type WriteDtype } from './safetensors.ts';
import { Transformer } from '../network/transformer.ts';

/**
 * A loaded version: the model, the base's config.json as it is on disk, the version's folder, and
 * the folder holding the weights and config (the base's, for an adapter version; else the same).
 */
export interface LoadedModel { model: Transformer; rawConfig: Record<string, unknown>; dir: string; weightsDir: string }

/**
 * A Hugging Face model folder: config.json plus model.safetensors (or shards with an index); or an
 * adapter version (lora-adapter.ts), whose base is loaded, checked against the sha256 the adapter
 * was trained on, and merged with the adapter.
 */
export function loadModel(dir: string, options: { trainable?: boolean; id?: string } = {}): LoadedModel {
  const adapter = readAdapterFolder(dir);
  const weightsDir = adapter ? adapter.baseDir : dir;
  const configPath = join(weightsDir, 'config.json');
  if (!existsSync(configPath)) throw new Error(`${weightsDir}: no config.json (is this a Hugging Face model folder?)`);
  const rawConfig = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  let config;
  try { config = resolveConfig(rawConfig); } catch (err) { throw new Error(`${configPath}: ${(err as Error).message}`); }
  const tensors = loadCheckpoint(weightsDir).tensors;
  if (adapter) {
    const baseFile = join(weightsDir, 'model.safetensors');
    const actual = existsSync(baseFile) ? createHash('sha256').update(readFileSync(baseFile)).digest('hex') : null;
    if (actual !== adapter.baseSha256) {
      throw new Error(`${dir}: the adapter was trained on base ${adapter.baseVersion} with sha256 ${adapter.baseSha256}, but ${baseFile} ${actual ? `has sha256 ${actual}` : 'is missing'}; refusing to merge it into other weights`);
    }
    mergeLora(tensors, loadSafetensorsFile(join(dir, ADAPTER_WEIGHTS)).tensors, adapter);
  }
  return { model: Transformer.fromTensors(config, tensors, options), rawConfig, dir, weightsDir };
}

/**
 * What a folder's tokenizer and chat template may need, carried into every version written from
 * it: transformers 5 writes the chat template to chat_template.jinja (or chat_template.json), and
 * slow tokenizers keep their vocabularies in vocab.json, merges.txt or tokenizer.model.
 */
export const TOKENIZER_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json', 'added_tokens.json',
  'chat_template.jinja', 'chat_template.json', 'vocab.json', 'merges.txt', 'tokenizer.model',
];

const STORED: Record<string, { dtype: WriteDtype; name: string }> = {
  bfloat16: { dtype: 'BF16', name: 'bfloat16' }, float16: { dtype: 'F16', name: 'float16' }, float32: { dtype: 'F32', name: 'float32' },
};

/**
 * The dtype a version is stored in: the one its config declares (transformers 5 writes `dtype`,
 * earlier releases `torch_dtype`), so a bf16 base gives bf16 versions (the arithmetic stays
 * float32 inside); float32 when it declares none or one oeld does not write.
 */
export function storedDtype(rawConfig: Record<string, unknown>): { dtype: WriteDtype; name: string } {
  return STORED[String(rawConfig.dtype ?? rawConfig.torch_dtype ?? 'float32')] ?? STORED.float32!;
}

/**
 * Writes a model folder that the Hugging Face stack loads: config.json (its dtype fields telling
 * the stored dtype), model.safetensors in the dtype its config declares (storedDtype), and the
 * tokenizer files copied from `tokenizerFrom`. Written to a temporary folder and renamed, so a
 * crash never leaves a half-written version. Returns the sha256 of model.safetensors.
 */
export function saveModel(model: Transformer, rawConfig: Record<string, unknown>, dir: string, tokenizerFrom?: string): { sha256: string; files: string[] } {
  return writeVersionFolder(dir, rawConfig, tokenizerFrom, (path, dtype) => saveSafetensorsFile(path, model.toTensors(), { format: 'pt' }, dtype));
}

/**
 * The folder layout of a version, whoever computed its weights: `writeWeights` puts
 * model.safetensors at the path it is given, in the dtype given (this process's model, or a file
 * another trainer wrote, moved in). The rest as saveModel says.
 */
export function writeVersionFolder(
  dir: string, rawConfig: Record<string, unknown>, tokenizerFrom: string | undefined, writeWeights: (path: string, dtype: WriteDtype) => void,
): { sha256: string; files: string[] } {
  if (existsSync(dir)) throw new Error(`${dir} already exists: model versions are immutable`);
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const stored = storedDtype(rawConfig);
  const config: Record<string, unknown> = { ...rawConfig };
  if ('dtype' in rawConfig) config.dtype = stored.name;
  if ('torch_dtype' in rawConfig || !('dtype' in rawConfig)) config.torch_dtype = stored.name;
  writeFileSync(join(tmp, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  writeWeights(join(tmp, 'model.safetensors'), stored.dtype);
  const files = ['config.json', 'model.safetensors'];
  for (const f of TOKENIZER_FILES) {
    if (tokenizerFrom && existsSync(join(tokenizerFrom, f))) { copyFileSync(join(tokenizerFrom, f), join(tmp, f)); files.push(f); }
  }
  const sha256 = createHash('sha256').update(readFileSync(join(tmp, 'model.safetensors'))).digest('hex');
  if (existsSync(dir)) throw new Error(`${dir} already exists: model versions are immutable`);
  renameSync(tmp, dir);
  return { sha256, files };
}

import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../network/model-config.ts';
import { loadCheckpoint, saveSafetensorsFile } from './safetensors.ts';
import { Transformer } from '../network/transformer.ts';

export interface LoadedModel { model: Transformer; rawConfig: Record<string, unknown>; dir: string }

/** A Hugging Face model folder: config.json plus model.safetensors (or shards with an index). */
export function loadModel(dir: string, options: { trainable?: boolean; id?: string } = {}): LoadedModel {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new Error(`${dir}: no config.json (is this a Hugging Face model folder?)`);
  const rawConfig = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  let config;
  try { config = resolveConfig(rawConfig); } catch (err) { throw new Error(`${configPath}: ${(err as Error).message}`); }
  return { model: Transformer.fromTensors(config, loadCheckpoint(dir).tensors, options), rawConfig, dir };
}

/**
 * What a folder's tokenizer and chat template may need, carried into every version written from
 * it: transformers 5 writes the chat template to chat_template.jinja (or chat_template.json), and
 * slow tokenizers keep their vocabularies in vocab.json, merges.txt or tokenizer.model.
 */
const TOKENIZER_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json', 'added_tokens.json',
  'chat_template.jinja', 'chat_template.json', 'vocab.json', 'merges.txt', 'tokenizer.model',
];

/**
 * Writes a model folder that the Hugging Face stack loads: config.json, model.safetensors (F32),
 * and the tokenizer files copied from `tokenizerFrom`. Written to a temporary folder and renamed,
 * so a crash never leaves a half-written version. Returns the sha256 of model.safetensors.
 */
export function saveModel(model: Transformer, rawConfig: Record<string, unknown>, dir: string, tokenizerFrom?: string): { sha256: string; files: string[] } {
  const tmp = `${dir}.partial-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'config.json'), `${JSON.stringify({ ...rawConfig, torch_dtype: 'float32' }, null, 2)}\n`);
  saveSafetensorsFile(join(tmp, 'model.safetensors'), model.toTensors(), { format: 'pt' });
  const files = ['config.json', 'model.safetensors'];
  for (const f of TOKENIZER_FILES) {
    if (tokenizerFrom && existsSync(join(tokenizerFrom, f))) { copyFileSync(join(tokenizerFrom, f), join(tmp, f)); files.push(f); }
  }
  const sha256 = createHash('sha256').update(readFileSync(join(tmp, 'model.safetensors'))).digest('hex');
  if (existsSync(dir)) throw new Error(`${dir} already exists: model versions are immutable`);
  renameSync(tmp, dir);
  return { sha256, files };
}

/**
 * Whether a folder can be a version: what the runtime would refuse when loading it, found without
 * loading the weights (config read as the runtime resolves it, safetensors headers, tokenizer loads,
 * chat template renders). An adapter version is checked through its full-weight folder, and its own
 * tokenizer files and adapter file.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ADAPTER_WEIGHTS, readAdapterFolder } from './lora-adapter.ts';
import { modelFolderInfo } from './model-folder-info.ts';
import { storedDtypesOf } from './safetensors.ts';
import { loadTokenizer } from './tokenizer.ts';

/** Why a full-weight folder cannot be a version, or null. */
export async function checkModelFolder(folder: string): Promise<string | null> {
  if (!existsSync(join(folder, 'model.safetensors'))) return `${folder}: no model.safetensors (a single-file checkpoint is needed to publish)`;
  try {
    const info = modelFolderInfo(folder);
    if (info.refused) return `${folder}: ${info.refused}`;
    return await checkTokenizer(folder);
  } catch (err) {
    return `${folder}: ${(err as Error).message}`;
  }
}

/** Why a version folder (full weights, or an adapter on a full-weight folder) cannot be loaded, or null. */
export async function checkVersionFolder(folder: string): Promise<string | null> {
  let adapter;
  try { adapter = readAdapterFolder(folder); } catch (err) { return (err as Error).message; }
  if (!adapter) return checkModelFolder(folder);
  const base = await checkModelFolder(adapter.baseDir);
  if (base) return `${folder}: its full-weight folder: ${base}`;
  try {
    storedDtypesOf(join(folder, ADAPTER_WEIGHTS));
    return await checkTokenizer(folder);
  } catch (err) {
    return `${folder}: ${(err as Error).message}`;
  }
}

/** The folder's tokenizer loads and its chat template (if any) renders a message. */
async function checkTokenizer(folder: string): Promise<string | null> {
  const tokenizer = await loadTokenizer(folder);
  if (tokenizer.hasChatTemplate) tokenizer.applyChatTemplate([{ role: 'user', content: 'hello' }], { addGenerationPrompt: true });
  return null;
}

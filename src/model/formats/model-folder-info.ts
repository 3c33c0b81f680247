/**
 * How oeld reads a Hugging Face model folder, without loading its weights: the family and sizes
 * from config.json (as the runtime resolves them, or why it refuses them), the stored dtype from
 * the safetensors header, the parameters, the tokenizer files and where the chat template comes
 * from, and the memory the runtime needs (weights in float32 inside, whatever is stored).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig, type ResolvedConfig } from '../network/model-config.ts';
import { INDEX_FILE, SINGLE_FILE, storedDtypesOf } from './safetensors.ts';
import { TOKENIZER_FILES } from './checkpoint.ts';

export interface ModelFolderInfo {
  folder: string;
  family: ResolvedConfig['family'] | null;
  /** Why the runtime refuses the config (null: it reads it). */
  refused: string | null;
  config: ResolvedConfig | null;
  parameters: number | null;
  storedDtypes: string[];
  weightFiles: string[];
  tokenizerFiles: string[];
  chatTemplate: 'tokenizer_config.json' | 'chat_template.jinja' | 'chat_template.json' | null;
  /** Bytes the runtime needs: float32 weights to answer; weights, gradients and AdamW's two moments, plus the frozen teacher, to train a round. */
  memory: { inferenceBytes: number; trainingBytes: number } | null;
}

/** Parameters of a resolved config, counted as the transformer allocates them. */
export function parameterCount(c: ResolvedConfig): number {
  const q = c.heads * c.headDim;
  const kv = c.kvHeads * c.headDim;
  const attention = c.hidden * q + 2 * c.hidden * kv + q * c.hidden + (c.qkvBias ? q + 2 * kv : 0) + (c.oBias ? c.hidden : 0) + (c.qkNorm ? 2 * c.headDim : 0);
  const layer = attention + 3 * c.hidden * c.intermediate + 2 * c.hidden;
  return c.vocabSize * c.hidden * (c.tiedEmbeddings ? 1 : 2) + c.layers * layer + c.hidden;
}

export function modelFolderInfo(folder: string): ModelFolderInfo {
  const configPath = join(folder, 'config.json');
  if (!existsSync(configPath)) throw new Error(`${folder}: no config.json (is this a Hugging Face model folder?)`);
  const raw = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  let config: ResolvedConfig | null = null;
  let refused: string | null = null;
  try { config = resolveConfig(raw); } catch (err) { refused = (err as Error).message; }
  const weightFiles = existsSync(join(folder, SINGLE_FILE)) ? [SINGLE_FILE]
    : existsSync(join(folder, INDEX_FILE))
      ? [...new Set(Object.values((JSON.parse(readFileSync(join(folder, INDEX_FILE), 'utf8')) as { weight_map: Record<string, string> }).weight_map))].sort()
      : [];
  const storedDtypes = [...new Set(weightFiles.filter((f) => existsSync(join(folder, f))).flatMap((f) => storedDtypesOf(join(folder, f))))].sort();
  const tokenizerFiles = TOKENIZER_FILES.filter((f) => f !== 'generation_config.json' && existsSync(join(folder, f)));
  const tokenizerConfig = existsSync(join(folder, 'tokenizer_config.json')) ? JSON.parse(readFileSync(join(folder, 'tokenizer_config.json'), 'utf8')) as { chat_template?: unknown } : {};
  const chatTemplate = tokenizerConfig.chat_template ? 'tokenizer_config.json' as const
    : existsSync(join(folder, 'chat_template.jinja')) ? 'chat_template.jinja' as const
      : existsSync(join(folder, 'chat_template.json')) ? 'chat_template.json' as const : null;
  const parameters = config ? parameterCount(config) : null;
  return {
    folder, family: config?.family ?? null, refused, config, parameters, storedDtypes, weightFiles, tokenizerFiles, chatTemplate,
    memory: parameters === null ? null : { inferenceBytes: 4 * parameters, trainingBytes: 20 * parameters },
  };
}

/**
 * LoRA adapter versions: a version that is a full-weight version (its base) plus one adapter, in
 * PEFT's folder format so that serving stacks load it as they load any adapter
 * (adapter_config.json, adapter_model.safetensors with PEFT's tensor names), plus
 * oeld-adapter.json naming the base version and the sha256 of its weights, and the base's tokenizer
 * files. adapter_config.json's base_model_name_or_path is the base version's folder.
 *
 * The TypeScript runtime merges the adapter into the base's weights at load (W + (alpha / r) B A,
 * in float64 per element), checking first that the base's weights are the ones the adapter was
 * trained on; the simulator, extraction, evaluation and serving then see an ordinary model.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostTensor } from '../network/transformer.ts';
import { TOKENIZER_FILES } from './checkpoint.ts';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const OELD_ADAPTER = 'oeld-adapter.json';

/** oeld's projection names and PEFT's target_modules. */
export const LORA_TARGETS = { q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj' } as const;
export type LoraTarget = keyof typeof LORA_TARGETS;

export interface LoraSettings { rank: number; alpha: number; targets: LoraTarget[] }

export interface AdapterFolder {
  /** The base version: its name, folder and the sha256 of its model.safetensors. */
  baseVersion: string;
  baseDir: string;
  baseSha256: string;
  rank: number;
  alpha: number;
  targetModules: string[];
}

/** The adapter a version folder holds, or null when it is a full-weight folder. Errors name the file and field. */
export function readAdapterFolder(dir: string): AdapterFolder | null {
  const configPath = join(dir, ADAPTER_CONFIG);
  if (!existsSync(configPath)) return null;
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  const oeldPath = join(dir, OELD_ADAPTER);
  if (!existsSync(oeldPath)) throw new Error(`${dir}: an adapter folder without ${OELD_ADAPTER} (which base version, which weights); oeld loads only adapters it wrote`);
  const oeld = JSON.parse(readFileSync(oeldPath, 'utf8')) as Record<string, unknown>;
  const need = <T>(from: Record<string, unknown>, file: string, field: string, ok: (v: unknown) => boolean): T => {
    if (!ok(from[field])) throw new Error(`${join(dir, file)}: ${field} ${from[field] === undefined ? 'is missing' : `${JSON.stringify(from[field])} is not valid`}`);
    return from[field] as T;
  };
  const str = (v: unknown) => typeof v === 'string' && v.length > 0;
  if (config.peft_type !== 'LORA') throw new Error(`${configPath}: peft_type ${JSON.stringify(config.peft_type)} is not LORA`);
  return {
    baseVersion: need(oeld, OELD_ADAPTER, 'baseVersion', str),
    baseSha256: need(oeld, OELD_ADAPTER, 'baseSha256', (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v)),
    baseDir: need(config, ADAPTER_CONFIG, 'base_model_name_or_path', str),
    rank: need(config, ADAPTER_CONFIG, 'r', (v) => Number.isInteger(v) && (v as number) > 0),
    alpha: need(config, ADAPTER_CONFIG, 'lora_alpha', (v) => typeof v === 'number' && v > 0),
    targetModules: need(config, ADAPTER_CONFIG, 'target_modules', (v) => Array.isArray(v) && v.length > 0 && v.every(str)),
  };
}

/** oeld's target names for PEFT's target_modules (an adapter oeld wrote names only these). */
export function loraTargetsOf(modules: readonly string[]): LoraTarget[] {
  const byModule = new Map(Object.entries(LORA_TARGETS).map(([t, m]) => [m as string, t as LoraTarget]));
  return modules.map((m) => {
    const t = byModule.get(m);
    if (!t) throw new Error(`adapter target_modules: ${JSON.stringify(m)} is not one of ${[...byModule.keys()].join(', ')}`);
    return t;
  });
}

/** A version's adapter as the PyTorch process reads it (file, rank, alpha, targets), or null for a full-weight folder. */
export function adapterForTorch(dir: string): { folder: AdapterFolder; file: string; rank: number; alpha: number; targets: LoraTarget[] } | null {
  const a = readAdapterFolder(dir);
  return a ? { folder: a, file: join(dir, ADAPTER_WEIGHTS), rank: a.rank, alpha: a.alpha, targets: loraTargetsOf(a.targetModules) } : null;
}

/** The folder holding a version's config.json and full weights: its base's for an adapter version. */
export function weightsFolderOf(dir: string): string {
  return readAdapterFolder(dir)?.baseDir ?? dir;
}

/** PEFT's name for a LoRA factor of the weight `name` (model.layers.0.self_attn.q_proj.weight). */
export function loraWeightName(name: string, part: 'A' | 'B'): string {
  return `base_model.model.${name.slice(0, -'.weight'.length)}.lora_${part}.weight`;
}

/**
 * Adds (alpha / rank) * B @ A to every weight the adapter has factors for, in place. Every factor
 * must belong to a weight of the base, with matching shapes; every weight of a target module must
 * have both factors.
 */
export function mergeLora(tensors: Map<string, HostTensor>, adapter: Map<string, HostTensor>, a: Pick<AdapterFolder, 'rank' | 'alpha' | 'targetModules'>): number {
  const scale = a.alpha / a.rank;
  const used = new Set<string>();
  let merged = 0;
  for (const [name, w] of tensors) {
    if (!name.endsWith('.weight') || !a.targetModules.some((m) => name.endsWith(`.${m}.weight`))) continue;
    const A = adapter.get(loraWeightName(name, 'A'));
    const B = adapter.get(loraWeightName(name, 'B'));
    if (!A || !B) throw new Error(`adapter: no lora_A/lora_B factors for ${name} (target_modules ${a.targetModules.join(', ')})`);
    const [out, inn] = w.shape as [number, number];
    if (A.shape[0] !== a.rank || A.shape[1] !== inn || B.shape[0] !== out || B.shape[1] !== a.rank) {
      throw new Error(`adapter: ${name} is [${w.shape}] but its factors are A [${A.shape}] and B [${B.shape}] at rank ${a.rank}`);
    }
    const data = Float32Array.from(w.data);
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < inn; i++) {
        let s = 0;
        for (let r = 0; r < a.rank; r++) s += B.data[o * a.rank + r]! * A.data[r * inn + i]!;
        data[o * inn + i] = data[o * inn + i]! + scale * s;
      }
    }
    tensors.set(name, { shape: w.shape, data });
    used.add(loraWeightName(name, 'A')).add(loraWeightName(name, 'B'));
    merged++;
  }
  const stray = [...adapter.keys()].filter((k) => !used.has(k));
  if (stray.length) throw new Error(`adapter: ${stray.length} factors match no weight of the base (first: ${stray[0]})`);
  return merged;
}

/**
 * Writes an adapter version: adapter_config.json, oeld-adapter.json, the adapter's weights
 * (`writeWeights` puts adapter_model.safetensors at the path it is given) and the base's tokenizer
 * files, in a temporary folder renamed into place. Returns the sha256 of adapter_model.safetensors.
 */
export function writeAdapterFolder(dir: string, base: { version: string; dir: string; sha256: string }, lora: LoraSettings, writeWeights: (path: string) => void): { sha256: string; files: string[] } {
  if (existsSync(dir)) throw new Error(`${dir} already exists: model versions are immutable`);
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const config = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: base.dir, r: lora.rank, lora_alpha: lora.alpha, lora_dropout: 0,
    bias: 'none', fan_in_fan_out: false, inference_mode: true, target_modules: lora.targets.map((t) => LORA_TARGETS[t]),
  };
  writeFileSync(join(tmp, ADAPTER_CONFIG), `${JSON.stringify(config, null, 2)}\n`);
  writeFileSync(join(tmp, OELD_ADAPTER), `${JSON.stringify({ baseVersion: base.version, baseSha256: base.sha256 }, null, 2)}\n`);
  writeWeights(join(tmp, ADAPTER_WEIGHTS));
  const files = [ADAPTER_CONFIG, OELD_ADAPTER, ADAPTER_WEIGHTS];
  for (const f of TOKENIZER_FILES) if (existsSync(join(base.dir, f))) { copyFileSync(join(base.dir, f), join(tmp, f)); files.push(f); }
  const sha256 = createHash('sha256').update(readFileSync(join(tmp, ADAPTER_WEIGHTS))).digest('hex');
  renameSync(tmp, dir);
  return { sha256, files };
}

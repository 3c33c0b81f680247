import { z } from 'zod';
import type { RopeScaling } from './rope-frequencies.ts';

/**
 * The subset of a Hugging Face config.json that the Llama, Qwen2 and Qwen3 families share and
 * that oeld's transformer reads. Unknown fields are kept on disk but ignored here.
 */
export const ModelConfigSchema = z.object({
  model_type: z.enum(['llama', 'qwen2', 'qwen3']),
  vocab_size: z.number().int().min(2),
  hidden_size: z.number().int().min(1),
  intermediate_size: z.number().int().min(1),
  num_hidden_layers: z.number().int().min(1),
  num_attention_heads: z.number().int().min(1),
  num_key_value_heads: z.number().int().min(1).optional(),
  head_dim: z.number().int().min(1).optional(),
  rms_norm_eps: z.number().positive().default(1e-6),
  /** Transformers before 5 write rope_theta; transformers 5 writes rope_parameters {rope_theta, rope_type}. */
  rope_theta: z.number().positive().optional(),
  rope_parameters: z.object({ rope_theta: z.number().positive().optional(), rope_type: z.string().optional() }).passthrough().nullable().optional(),
  rope_scaling: z.record(z.string(), z.unknown()).nullable().optional(),
  use_sliding_window: z.boolean().optional(),
  max_position_embeddings: z.number().int().min(1).default(2048),
  tie_word_embeddings: z.boolean().default(false),
  /** Llama: attention_bias; Qwen2 always has q/k/v biases. */
  attention_bias: z.boolean().optional(),
  bos_token_id: z.number().int().nullable().optional(),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int())]).nullable().optional(),
  hidden_act: z.literal('silu').default('silu'),
}).passthrough();

export type ModelConfig = z.infer<typeof ModelConfigSchema>;

/** What the transformer needs, resolved: family defaults applied. */
export interface ResolvedConfig {
  family: 'llama' | 'qwen2' | 'qwen3';
  vocabSize: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  ropeTheta: number;
  /** RoPE scaling (rope-frequencies.ts); null: the default rotary embedding. */
  ropeScaling: RopeScaling | null;
  maxPositions: number;
  tiedEmbeddings: boolean;
  /** q/k/v projections have biases (Qwen2; Llama with attention_bias). */
  qkvBias: boolean;
  /** o_proj has a bias (Llama with attention_bias only). */
  oBias: boolean;
  /** Per-head RMSNorm on q and k before rotary embeddings (Qwen3). */
  qkNorm: boolean;
  eosTokenIds: number[];
}

/** The rotary base: rope_theta or rope_parameters.rope_theta (10000 when neither), refusing two that disagree. */
function ropeTheta(c: ModelConfig): number {
  const top = c.rope_theta;
  const nested = c.rope_parameters?.rope_theta;
  if (top !== undefined && nested !== undefined && top !== nested) {
    throw new Error(`config: rope_theta ${top} and rope_parameters.rope_theta ${nested} disagree`);
  }
  return top ?? nested ?? 10000;
}

/**
 * The RoPE scaling a config asks for (rope-frequencies.ts), from rope_parameters (transformers 5)
 * or rope_scaling (earlier releases; `type` or `rope_type`), with transformers' defaults; null for
 * the default rotary embedding. Refuses, naming the field and value, a type oeld does not implement
 * (longrope, proportional, ...), a partial rotary factor, and two places that disagree.
 */
function ropeScalingOf(c: ModelConfig): RopeScaling | null {
  const nested = c.rope_parameters ?? undefined;
  const legacy = c.rope_scaling ?? undefined;
  const typeOf = (o: Record<string, unknown> | undefined) => (o ? (o.rope_type ?? o.type) : undefined);
  const nestedType = typeOf(nested as Record<string, unknown> | undefined);
  const legacyType = typeOf(legacy);
  if (nestedType !== undefined && legacyType !== undefined && nestedType !== legacyType && nestedType !== 'default') {
    throw new Error(`config: rope_parameters.rope_type ${JSON.stringify(nestedType)} and rope_scaling.rope_type ${JSON.stringify(legacyType)} disagree`);
  }
  const [field, p] = legacyType !== undefined && legacyType !== 'default' ? ['rope_scaling', legacy!] as const : ['rope_parameters', (nested ?? {}) as Record<string, unknown>] as const;
  const type = typeOf(p);
  const partial = p.partial_rotary_factor;
  if (partial !== undefined && partial !== 1) throw new Error(`config: ${field}.partial_rotary_factor ${JSON.stringify(partial)} is not implemented by oeld's runtime (rotary embedding on the whole head only)`);
  if (type === undefined || type === 'default') return null;
  const num = (key: string, fallback?: number): number => {
    const v = p[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`config: ${field}.${key} ${v === undefined ? 'is missing' : `${JSON.stringify(v)} is not a positive number`} (rope type ${JSON.stringify(type)})`);
    return v;
  };
  switch (type) {
    case 'linear': return { type: 'linear', factor: num('factor') };
    case 'dynamic': return { type: 'dynamic', factor: num('factor') };
    case 'llama3': return { type: 'llama3', factor: num('factor'), lowFreqFactor: num('low_freq_factor'), highFreqFactor: num('high_freq_factor'), originalMaxPositions: num('original_max_position_embeddings') };
    case 'yarn': {
      const original = num('original_max_position_embeddings');
      const factor = p.factor === null || p.factor === undefined ? c.max_position_embeddings / original : num('factor');
      const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      const attentionFactor = p.attention_factor !== undefined && p.attention_factor !== null ? num('attention_factor')
        : p.mscale && p.mscale_all_dim ? mscale(factor, num('mscale')) / mscale(factor, num('mscale_all_dim')) : mscale(factor);
      const truncate = p.truncate ?? true;
      if (typeof truncate !== 'boolean') throw new Error(`config: ${field}.truncate ${JSON.stringify(truncate)} is not true or false`);
      return { type: 'yarn', factor, originalMaxPositions: original, betaFast: p.beta_fast ? num('beta_fast') : 32, betaSlow: p.beta_slow ? num('beta_slow') : 1, attentionFactor, truncate };
    }
    default:
      throw new Error(`config: ${field}.rope_type ${JSON.stringify(type)} is not implemented by oeld's runtime (default, linear, dynamic, llama3, yarn); refusing to run a model whose positions would differ`);
  }
}

/** Refuses what the transformer does not implement rather than running a different model: sliding-window attention. */
function refuseUnimplemented(c: ModelConfig): void {
  if (c.use_sliding_window === true) throw new Error('config: use_sliding_window true is not implemented by oeld\'s runtime (full attention only)');
}

export function resolveConfig(raw: unknown): ResolvedConfig {
  const parsed = ModelConfigSchema.safeParse(raw);
  if (!parsed.success) {
    // The first problem, with its field and the value found (a list of zod issues helps no one).
    const i = parsed.error.issues[0]!;
    const field = i.path.join('.') || '(config)';
    let value: unknown = raw;
    for (const k of i.path) value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[k] : undefined;
    const expected = i.code === 'invalid_value' && 'values' in i ? `expected one of ${(i.values as unknown[]).map((x) => JSON.stringify(x)).join(', ')}` : i.message;
    throw new Error(`config: ${field}: ${expected}${value === undefined ? ' (missing)' : ` (got ${JSON.stringify(value)})`}`);
  }
  const c = parsed.data;
  refuseUnimplemented(c);
  const kvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % kvHeads !== 0) throw new Error(`config: num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  const eos = c.eos_token_id;
  return {
    family: c.model_type,
    vocabSize: c.vocab_size,
    hidden: c.hidden_size,
    intermediate: c.intermediate_size,
    layers: c.num_hidden_layers,
    heads: c.num_attention_heads,
    kvHeads,
    headDim: c.head_dim ?? c.hidden_size / c.num_attention_heads,
    eps: c.rms_norm_eps,
    ropeTheta: ropeTheta(c),
    ropeScaling: ropeScalingOf(c),
    maxPositions: c.max_position_embeddings,
    tiedEmbeddings: c.tie_word_embeddings,
    qkvBias: c.model_type === 'qwen2' || (c.model_type === 'llama' && c.attention_bias === true),
    oBias: c.model_type === 'llama' && c.attention_bias === true,
    qkNorm: c.model_type === 'qwen3',
    eosTokenIds: eos == null ? [] : Array.isArray(eos) ? eos : [eos],
  };
}

/** Hugging Face tensor names, shared by the loader, the saver and the reference fixtures. */
export const tensorNames = {
  embed: 'model.embed_tokens.weight',
  finalNorm: 'model.norm.weight',
  lmHead: 'lm_head.weight',
  layer: (i: number) => ({
    inputNorm: `model.layers.${i}.input_layernorm.weight`,
    postNorm: `model.layers.${i}.post_attention_layernorm.weight`,
    q: `model.layers.${i}.self_attn.q_proj.weight`,
    k: `model.layers.${i}.self_attn.k_proj.weight`,
    v: `model.layers.${i}.self_attn.v_proj.weight`,
    o: `model.layers.${i}.self_attn.o_proj.weight`,
    qBias: `model.layers.${i}.self_attn.q_proj.bias`,
    kBias: `model.layers.${i}.self_attn.k_proj.bias`,
    vBias: `model.layers.${i}.self_attn.v_proj.bias`,
    oBias: `model.layers.${i}.self_attn.o_proj.bias`,
    qNorm: `model.layers.${i}.self_attn.q_norm.weight`,
    kNorm: `model.layers.${i}.self_attn.k_norm.weight`,
    gate: `model.layers.${i}.mlp.gate_proj.weight`,
    up: `model.layers.${i}.mlp.up_proj.weight`,
    down: `model.layers.${i}.mlp.down_proj.weight`,
  }),
};

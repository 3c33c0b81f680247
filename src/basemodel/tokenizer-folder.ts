/** Writes the tokenizer files of a trained BPE into a folder (what saveModel copies into a model). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tokenizerFiles, type TrainedBpe } from './bpe-trainer.ts';

export function writeTokenizerFolder(dir: string, bpe: TrainedBpe): void {
  mkdirSync(dir, { recursive: true });
  const files = tokenizerFiles(bpe);
  writeFileSync(join(dir, 'tokenizer.json'), `${JSON.stringify(files.tokenizer)}\n`);
  writeFileSync(join(dir, 'tokenizer_config.json'), `${JSON.stringify(files.tokenizerConfig, null, 2)}\n`);
  writeFileSync(join(dir, 'generation_config.json'), `${JSON.stringify({ eos_token_id: 1, pad_token_id: 0, temperature: 0.7, top_p: 0.8, top_k: 20, do_sample: true }, null, 2)}\n`);
}

/** The config.json of a small Llama-family model over a tokenizer of `vocabSize` ids (rounded up to 64). */
export function smallLlamaConfig(vocabSize: number, size: { hidden: number; intermediate: number; layers: number; heads: number }): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: Math.ceil(vocabSize / 64) * 64,
    hidden_size: size.hidden,
    intermediate_size: size.intermediate,
    num_hidden_layers: size.layers,
    num_attention_heads: size.heads,
    num_key_value_heads: size.heads,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: true,
    bos_token_id: null,
    eos_token_id: 1,
    pad_token_id: 0,
    hidden_act: 'silu',
  };
}

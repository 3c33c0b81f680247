/** A tiny untrained model folder in the base model's format (BPE tokenizer, Llama config), made in seconds. */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SPECIAL_TOKENS, trainBpe } from '../../src/basemodel/bpe-trainer.ts';
import { drawExample, promptText } from '../../src/basemodel/corpus.ts';
import { smallLlamaConfig, writeTokenizerFolder } from '../../src/basemodel/tokenizer-folder.ts';
import { saveModel } from '../../src/model/formats/checkpoint.ts';
import { initialWeights } from '../../src/model/network/init-weights.ts';
import { resolveConfig } from '../../src/model/network/model-config.ts';
import { seededRandom } from '../../src/model/network/rng.ts';
import { loadTokenizer } from '../../src/model/formats/tokenizer.ts';
import { Transformer } from '../../src/model/network/transformer.ts';

export async function makeTinyModel(parent = mkdtempSync(join(tmpdir(), 'oeld-tiny-')), seed = 1): Promise<string> {
  const random = seededRandom(seed);
  const sample = Array.from({ length: 400 }, () => drawExample(random));
  const bpe = trainBpe(sample.flatMap((e) => [promptText(e), e.response]), 700, Object.values(SPECIAL_TOKENS));
  const tokDir = join(parent, 'tokenizer');
  writeTokenizerFolder(tokDir, bpe);
  const tokenizer = await loadTokenizer(tokDir);
  const raw = smallLlamaConfig(tokenizer.vocabSize, { hidden: 32, intermediate: 64, layers: 1, heads: 2 });
  const model = Transformer.fromTensors(resolveConfig(raw), initialWeights(resolveConfig(raw), seed), { id: `tiny-${seed}` });
  const dir = join(parent, 'model');
  saveModel(model, raw, dir, tokDir);
  model.dispose();
  rmSync(tokDir, { recursive: true, force: true });
  return dir;
}

/** The sha256 of a model folder's weights, as a publication records it. */
export function modelSha256(dir: string, file = 'model.safetensors'): string {
  return createHash('sha256').update(readFileSync(join(dir, file))).digest('hex');
}

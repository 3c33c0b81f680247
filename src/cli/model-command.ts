import { resolve } from 'node:path';
import { modelFolderInfo, type ModelFolderInfo } from '../model/formats/model-folder-info.ts';
import { emit, UsageError, type Command } from './command.ts';

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function describe(i: ModelFolderInfo): string {
  const c = i.config;
  return [
    `folder            ${i.folder}`,
    c ? `family            ${c.family}: ${c.layers} layers, hidden ${c.hidden}, ${c.heads} heads of ${c.headDim} (${c.kvHeads} key/value heads), MLP ${c.intermediate}, vocabulary ${c.vocabSize}${c.tiedEmbeddings ? ', tied embeddings' : ''}`
      : `family            refused: ${i.refused}`,
    ...(c ? [`rope              theta ${c.ropeTheta}, no scaling, ${c.maxPositions} positions`, `parameters        ${i.parameters!.toLocaleString('en-US')}`] : []),
    `weights           ${i.weightFiles.join(', ') || 'none'} (stored as ${i.storedDtypes.join(', ') || '-'}; float32 inside)`,
    `tokenizer         ${i.tokenizerFiles.join(', ') || 'none'}`,
    `chat template     ${i.chatTemplate ?? 'none'}`,
    ...(i.memory ? [`memory            ${mib(i.memory.inferenceBytes)} to answer, about ${mib(i.memory.trainingBytes)} to train a round (weights, gradients, AdamW's moments, the frozen teacher)`] : []),
  ].join('\n');
}

export const modelCommand: Command = {
  name: 'model',
  summary: 'show how oeld reads a Hugging Face model folder',
  usage: 'oeld model info <folder> [--json]',
  help: ['info: family and sizes as the runtime resolves them (or why it refuses the config), the stored dtype, parameters, tokenizer files, where the chat template comes from, and the memory the runtime needs. Reads no weights.'],
  options: {},
  allowPositionals: true,
  async run(_v, positionals, ctx) {
    const [sub, folder] = positionals;
    if (sub !== 'info' || !folder || positionals.length > 2) throw new UsageError('usage: oeld model info <folder>');
    const info = modelFolderInfo(resolve(folder));
    emit(ctx, info, describe(info));
    return info.refused ? 1 : 0;
  },
};

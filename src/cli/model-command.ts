import type { RopeScaling } from '../model/network/rope-frequencies.ts';
import { resolve } from 'node:path';
import { loadConfig } from '../config.ts';
import { loadModel } from '../model/formats/checkpoint.ts';
import { modelFolderInfo, type ModelFolderInfo } from '../model/formats/model-folder-info.ts';
import { loadTokenizer } from '../model/formats/tokenizer.ts';
import { inspectGeneration } from '../model/inference/inspect.ts';
import { initBackend } from '../model/kernels/backend.ts';
import { emit, UsageError, type Command, type CommandContext } from './command.ts';

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function describe(i: ModelFolderInfo): string {
  const c = i.config;
  return [
    `folder            ${i.folder}`,
    c ? `family            ${c.family}: ${c.layers} layers, hidden ${c.hidden}, ${c.heads} heads of ${c.headDim} (${c.kvHeads} key/value heads), MLP ${c.intermediate}, vocabulary ${c.vocabSize}${c.tiedEmbeddings ? ', tied embeddings' : ''}`
      : `family            refused: ${i.refused}`,
    ...(c ? [`rope              theta ${c.ropeTheta}, ${describeRopeScaling(c.ropeScaling)}, ${c.maxPositions} positions`, `parameters        ${i.parameters!.toLocaleString('en-US')}`] : []),
    `weights           ${i.weightFiles.join(', ') || 'none'} (stored as ${i.storedDtypes.join(', ') || '-'}; float32 inside)`,
    `tokenizer         ${i.tokenizerFiles.join(', ') || 'none'}`,
    `chat template     ${i.chatTemplate ?? 'none'}`,
    ...(i.memory ? [`memory            ${mib(i.memory.inferenceBytes)} to answer, about ${mib(i.memory.trainingBytes)} to train a round (weights, gradients, AdamW's moments, the frozen teacher)`] : []),
  ].join('\n');
}

const USAGE = 'oeld model info <folder> | generate <folder> --prompt <text> [--tokens N] [--top K] [--raw] | publish <folder> --version <name> [--activate] [--url ...]';

async function generateCommand(folder: string, v: Record<string, string | boolean | undefined>, ctx: CommandContext): Promise<number> {
  if (typeof v.prompt !== 'string') throw new UsageError('generate needs --prompt <text>');
  const count = (name: string, fallback: number, max: number) => {
    const raw = v[name];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`--${name}: expected an integer from 1 to ${max}, got ${JSON.stringify(raw)}`);
    return n;
  };
  const backend = await initBackend();
  const model = loadModel(resolve(folder), { trainable: false, id: 'inspect' }).model;
  try {
    const r = inspectGeneration(model, await loadTokenizer(resolve(folder)), v.prompt, { newTokens: count('tokens', 16, 4096), top: count('top', 5, 1000), raw: v.raw === true });
    emit(ctx, { folder: resolve(folder), backend: backend.name, ...r }, [
      `prompt ids     ${r.promptIds.join(' ')}`,
      `greedy ids     ${r.tokens.join(' ')}`,
      `greedy text    ${JSON.stringify(r.text)}`,
      `top logits at the prompt's last position:`,
      ...r.topLogits.map((t) => `  ${String(t.id).padStart(6)}  ${t.logit.toFixed(6).padStart(12)}  ${JSON.stringify(t.token)}`),
    ].join('\n'));
    return 0;
  } finally {
    model.dispose();
  }
}

async function publishCommand(folder: string, v: Record<string, string | boolean | undefined>, ctx: CommandContext): Promise<number> {
  if (typeof v.version !== 'string') throw new UsageError('publish needs --version <name>');
  const config = loadConfig(ctx.env);
  if (!config.adminToken) throw new UsageError('OELD_ADMIN_TOKEN is not set: publishing into a running daemon goes through its admin API');
  const base = typeof v.url === 'string' ? v.url : `http://${config.httpHost}:${config.httpPort}`;
  let r: Response;
  try {
    r = await fetch(`${base.replace(/\/$/, '')}/admin/models`, {
      method: 'POST', headers: { authorization: `Bearer ${config.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ folder: resolve(folder), version: v.version, activate: v.activate === true }),
    });
  } catch (err) {
    throw new Error(`no daemon answered at ${base} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}); start one with \`oeld start\` or pass --url`);
  }
  const body = await r.json().catch(() => ({})) as { version?: string; path?: string; sha256?: string; activated?: boolean; error?: string };
  emit(ctx, { status: r.status, ...body }, r.status === 201 ? `published ${body.version} (sha256 ${body.sha256}) at ${body.path}${body.activated ? '; active now' : ''}` : `not published (HTTP ${r.status}): ${body.error ?? 'no reason given'}`);
  return r.status === 201 ? 0 : 1;
}

export const modelCommand: Command = {
  name: 'model',
  summary: 'read, try and publish Hugging Face model folders',
  usage: USAGE,
  help: [
    'info: family and sizes as the runtime resolves them (or why it refuses the config), the stored dtype, parameters, tokenizer files, where the chat template comes from, and the memory the runtime needs. Reads no weights.',
    'generate: the prompt through the chat template (--raw: the text as it is), its token ids, the greedy continuation (--tokens, default 16) and the largest logits at the prompt\'s last position (--top, default 5): to compare oeld with another runtime.',
    'publish: copies the folder into the running daemon\'s artifact store and publishes it as --version with its sha256 (checked first: config, weights\' headers, tokenizer, chat template); --activate makes it active. Uses the admin API (OELD_ADMIN_TOKEN).',
  ],
  options: { prompt: { type: 'string' }, tokens: { type: 'string' }, top: { type: 'string' }, raw: { type: 'boolean' }, version: { type: 'string' }, activate: { type: 'boolean' }, url: { type: 'string' } },
  allowPositionals: true,
  async run(v, positionals, ctx) {
    const [sub, folder] = positionals;
    if (!sub || !folder || positionals.length > 2) throw new UsageError(`usage: ${USAGE}`);
    if (sub === 'generate') return generateCommand(folder, v, ctx);
    if (sub === 'publish') return publishCommand(folder, v, ctx);
    if (sub !== 'info') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}; usage: ${USAGE}`);
    const info = modelFolderInfo(resolve(folder));
    emit(ctx, info, describe(info));
    return info.refused ? 1 : 0;
  },
};

/** How `oeld model info` shows a config's RoPE scaling. */
function describeRopeScaling(s: RopeScaling | null): string {
  if (!s) return 'no scaling';
  const { type, ...rest } = s;
  return `${type} scaling (${Object.entries(rest).map(([k, v]) => `${k} ${typeof v === 'number' ? Number(v.toPrecision(6)) : v}`).join(', ')})`;
}

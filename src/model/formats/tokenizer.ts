/**
 * The model's tokenizer, loaded from the Hugging Face files in a model folder with
 * @huggingface/tokenizers (a pure JavaScript implementation of tokenizer.json: BPE, WordPiece,
 * Unigram; normalisers, pre-tokenisers, decoders). Nothing is downloaded: the folder must hold
 * tokenizer.json, and tokenizer_config.json for the special tokens and the chat template.
 *
 * encode() does not add special tokens by default (addSpecialTokens: true adds what the
 * tokenizer's post-processor adds, e.g. Llama's <|begin_of_text|>): text rendered by a chat
 * template already has them, as transformers' apply_chat_template(tokenize=True) assumes.
 * Special tokens written in the text (e.g. "<|im_end|>") are always encoded as their single id.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ChatTemplate, findChatTemplate, type ChatMessage, type ChatTemplateOptions, type SpecialTokenStrings } from './chat-template.ts';

export type { ChatMessage, ChatTemplateOptions } from './chat-template.ts';

export interface Tokenizer {
  /** Token ids of `text`. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /**
   * The text of `ids`; special tokens are left out when skipSpecial is true. Ids the vocabulary
   * lacks are skipped. Spaces before punctuation are removed only where the folder asks for it
   * (cleansSpaces).
   */
  decode(ids: number[], skipSpecial?: boolean): string;
  /**
   * Whether decode removes spaces before punctuation and contractions (" ." -> ".", " 's" ->
   * "'s"): tokenizer_config.json's clean_up_tokenization_spaces, false where it is not set, as
   * transformers 5 has it (transformers 4 and @huggingface/tokenizers alone clean then). With
   * it, the text of a sequence can lose a character when the next token comes, which a stream
   * must allow for.
   */
  readonly cleansSpaces: boolean;
  /**
   * Ids that end a generation: tokenizer_config.json's eos_token, then generation_config.json's
   * and config.json's eos_token_id (a number or a list) where those files are in the folder.
   */
  readonly eosTokenIds: readonly number[];
  readonly bosTokenId: number | null;
  readonly padTokenId: number | null;
  /** The ids of the special tokens (added tokens marked special). */
  readonly specialTokenIds: ReadonlySet<number>;
  /**
   * 1 + the highest token id, added tokens included. A model's embedding may have more rows
   * (Qwen2 pads its vocab_size to a multiple of 128).
   */
  readonly vocabSize: number;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Whether the folder has a chat template. */
  readonly hasChatTemplate: boolean;
  /** The conversation rendered with the model's chat template (text, not ids: encode it). */
  applyChatTemplate(messages: ChatMessage[], options: ChatTemplateOptions): string;
}

type Json = Record<string, unknown>;

/** A special token in tokenizer_config.json: a string, or an AddedToken object ({content, ...}). */
function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

function readJsonIfExists(file: string): Json | undefined {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as Json;
}

function idList(v: unknown): number[] {
  if (typeof v === 'number' && Number.isInteger(v)) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number' && Number.isInteger(x));
  return [];
}

/** Loads dir/tokenizer.json and dir/tokenizer_config.json (see the file comment). */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const tokenizerFile = join(dir, 'tokenizer.json');
  if (!existsSync(tokenizerFile)) {
    throw new Error(`${tokenizerFile} not found: oeld needs a model's tokenizer.json (the fast-tokenizer format); nothing is downloaded`);
  }
  let tokenizerJson: Json;
  try {
    tokenizerJson = JSON.parse(await readFile(tokenizerFile, 'utf8')) as Json;
  } catch (err) {
    throw new Error(`${tokenizerFile}: ${(err as Error).message}`);
  }
  const config = readJsonIfExists(join(dir, 'tokenizer_config.json')) ?? {};
  const hf = new HfTokenizer(tokenizerJson, config);
  const cleansSpaces = config.clean_up_tokenization_spaces === true;

  const vocab = hf.get_vocab(true);
  let maxId = -1;
  for (const id of vocab.values()) if (id > maxId) maxId = id;
  const specialTokenIds = new Set<number>();
  for (const [id, t] of hf.get_added_tokens_decoder()) if (t.special) specialTokenIds.add(id);

  const idOf = (field: string): number | null => {
    const s = tokenString(config[field]);
    if (s === undefined) return null;
    const id = hf.token_to_id(s);
    if (id === undefined) throw new Error(`${join(dir, 'tokenizer_config.json')}: ${field} ${JSON.stringify(s)} is not in the vocabulary`);
    return id;
  };
  const eos = idOf('eos_token');
  const eosTokenIds = [...new Set([
    ...(eos === null ? [] : [eos]),
    ...idList(readJsonIfExists(join(dir, 'generation_config.json'))?.eos_token_id),
    ...idList(readJsonIfExists(join(dir, 'config.json'))?.eos_token_id),
  ])];

  const special: SpecialTokenStrings = {};
  for (const field of ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const) {
    const s = tokenString(config[field]);
    if (s !== undefined) special[field] = s;
  }
  if (Array.isArray(config.additional_special_tokens)) {
    special.additional_special_tokens = config.additional_special_tokens.map(tokenString).filter((s): s is string => s !== undefined);
  }
  const source = findChatTemplate(config, dir);
  const template = source === undefined ? undefined : new ChatTemplate(source, special);

  return {
    encode: (text, options) => hf.encode(text, { add_special_tokens: options?.addSpecialTokens ?? false }).ids,
    // @huggingface/tokenizers throws on an empty list; an empty generation decodes to ''.
    decode: (ids, skipSpecial = false) => (ids.length === 0 ? '' : hf.decode(ids, { skip_special_tokens: skipSpecial, clean_up_tokenization_spaces: cleansSpaces })),
    cleansSpaces,
    eosTokenIds,
    bosTokenId: idOf('bos_token'),
    padTokenId: idOf('pad_token'),
    specialTokenIds,
    vocabSize: maxId + 1,
    tokenToId: (token) => hf.token_to_id(token),
    idToToken: (id) => hf.id_to_token(id),
    hasChatTemplate: template !== undefined,
    applyChatTemplate: (messages, options) => {
      if (!template) throw new Error(`${dir} has no chat template (tokenizer_config.json has no chat_template, and there is no chat_template.jinja)`);
      return template.render(messages, options);
    },
  };
}

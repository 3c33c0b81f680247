/**
 * Chat templates: the Jinja template a Hugging Face model ships (tokenizer_config.json's
 * `chat_template`, or chat_template.jinja beside it), rendered with @huggingface/jinja the way
 * transformers' apply_chat_template renders it (trim_blocks and lstrip_blocks on; the special
 * tokens, `messages` and `add_generation_prompt` in scope; raise_exception and strftime_now
 * built in).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: string;
  content: string;
  /** Anything else a template may read (tool_calls, name, ...). */
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the prompt that opens the assistant's turn (ChatML: "<|im_start|>assistant\n"). */
  addGenerationPrompt: boolean;
  /** Tool definitions, for templates that render them. */
  tools?: unknown[];
  /** More variables for the template (e.g. enable_thinking for Qwen3). */
  variables?: Record<string, unknown>;
}

/** The special tokens a template may use: bos_token, eos_token, pad_token, unk_token. */
export type SpecialTokenStrings = Partial<Record<'bos_token' | 'eos_token' | 'pad_token' | 'unk_token', string>> & {
  additional_special_tokens?: string[];
};

export class ChatTemplate {
  private readonly template: Template;

  constructor(readonly source: string, private readonly specialTokens: SpecialTokenStrings = {}) {
    this.template = new Template(source);
  }

  render(messages: ChatMessage[], options: ChatTemplateOptions): string {
    const items: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.specialTokens)) if (v !== undefined) items[k] = v;
    items.messages = messages;
    items.add_generation_prompt = options.addGenerationPrompt;
    if (options.tools !== undefined) items.tools = options.tools;
    Object.assign(items, options.variables);
    return this.template.render(items);
  }
}

/**
 * The template source: tokenizer_config.json's `chat_template` (a string, or a list of
 * {name, template} from which `name`, default "default", is taken), else `dir/chat_template.jinja`
 * (where recent transformers versions save it). undefined if there is none.
 */
export function findChatTemplate(config: Record<string, unknown>, dir?: string, name = 'default'): string | undefined {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t as { name?: unknown; template?: unknown }[];
    const hit = named.find((e) => e.name === name);
    if (hit && typeof hit.template === 'string') return hit.template;
    throw new Error(`tokenizer_config.json has no chat template named ${JSON.stringify(name)} (it has ${named.map((e) => JSON.stringify(e.name)).join(', ')})`);
  }
  if (dir !== undefined) {
    const file = join(dir, 'chat_template.jinja');
    if (existsSync(file)) return readFileSync(file, 'utf8');
  }
  return undefined;
}

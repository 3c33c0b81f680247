/**
 * The tokenizer (src/model/formats/tokenizer.ts) and chat template (src/model/formats/chat-template.ts) on the
 * byte-level BPE fixture in test/fixtures/tokenizer (made by make-tokenizer.ts, Qwen2's format),
 * checked against expected.json: the Hugging Face Rust tokenizers library's ids and real Jinja2's
 * renderings (make-expected.py).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer, type ChatMessage, type Tokenizer } from '../src/model/formats/tokenizer.ts';

const FIXTURE = new URL('./fixtures/tokenizer/', import.meta.url).pathname;
const expected = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as {
  vocab_size: number;
  encodings: { text: string; ids: number[] }[];
  chat: { messages: ChatMessage[]; add_generation_prompt: boolean; text: string }[];
};

let tok: Tokenizer;
before(async () => { tok = await loadTokenizer(FIXTURE); });

describe('tokenizer', () => {
  it('round-trips ASCII, multi-byte UTF-8 and emoji text', () => {
    for (const text of [
      'Hello world',
      'The model learns the training loop.',
      'naïve café — 日本語テキスト, Ελληνικά, русский',
      'emoji: 👋🏽 🎉 👨‍👩‍👧 and a flag 🇫🇷',
      '  leading and trailing spaces, tabs\tand\r\nnewlines\n\n',
      '',
    ]) {
      const ids = tok.encode(text);
      assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize));
      assert.equal(tok.decode(ids), text);
    }
  });

  it('byte-level: a character outside the merges becomes its UTF-8 bytes (ids 0-255 are the bytes)', () => {
    assert.deepEqual(tok.encode('é'), [0xc3, 0xa9]);
    assert.deepEqual(tok.encode('👋'), [0xf0, 0x9f, 0x91, 0x8b]);
    // A cut in the middle of a character decodes to U+FFFD, as in transformers (errors="replace").
    assert.equal(tok.decode([0xf0, 0x9f]), '\uFFFD');
  });

  it('merges apply: frequent words of the sample text are single tokens', () => {
    const the = tok.encode(' the');
    assert.equal(the.length, 1);
    assert.equal(tok.idToToken(the[0]!), 'Ġthe');
    assert.ok(tok.encode('The model learns the training loop.').length < 'The model learns the training loop.'.length / 2);
  });

  it('encodes exactly as the Hugging Face Rust tokenizers library does', () => {
    for (const { text, ids } of expected.encodings) {
      assert.deepEqual(tok.encode(text), ids, JSON.stringify(text));
      assert.equal(tok.decode(ids), text);
    }
  });

  it('special tokens in the text are single ids, and skipSpecial drops them', () => {
    const imStart = tok.tokenToId('<|im_start|>')!;
    const imEnd = tok.tokenToId('<|im_end|>')!;
    const eot = tok.tokenToId('<|endoftext|>')!;
    assert.deepEqual([imStart, imEnd, eot], [320 + 1, 320 + 2, 320]);
    assert.deepEqual(tok.encode('<|im_start|>'), [imStart]);
    assert.deepEqual(tok.encode('<|im_end|>'), [imEnd]);
    assert.deepEqual(tok.encode('<|endoftext|>'), [eot]);
    const ids = tok.encode('<|im_start|>user\nhi<|im_end|>\n');
    assert.equal(ids[0], imStart);
    assert.equal(ids.filter((id) => id === imEnd).length, 1);
    assert.equal(tok.decode(ids), '<|im_start|>user\nhi<|im_end|>\n');
    assert.equal(tok.decode(ids, true), 'user\nhi\n');
    // The same characters without the special token's exact spelling are ordinary text.
    assert.ok(!tok.encode('<|im_end |>').includes(imEnd));
    assert.deepEqual([...tok.specialTokenIds].sort(), [eot, imStart, imEnd].sort());
  });

  it('reports the vocabulary size and the ids that end a generation', () => {
    assert.equal(tok.vocabSize, expected.vocab_size);
    assert.equal(tok.vocabSize, 256 + 64 + 3);
    // tokenizer_config.json's eos_token first, then generation_config.json's list.
    assert.deepEqual(tok.eosTokenIds, [tok.tokenToId('<|im_end|>'), tok.tokenToId('<|endoftext|>')]);
    assert.equal(tok.padTokenId, tok.tokenToId('<|endoftext|>'));
    assert.equal(tok.bosTokenId, null);
  });

  it('fails clearly when the folder has no tokenizer.json', async () => {
    await assert.rejects(loadTokenizer(join(FIXTURE, 'nope')), /tokenizer\.json not found: .*nothing is downloaded/);
  });
});

describe('chat template', () => {
  const conversation: ChatMessage[] = [
    { role: 'system', content: 'You answer briefly.' },
    { role: 'user', content: 'What is 2+2?' },
    { role: 'assistant', content: '4' },
    { role: 'user', content: 'And 3+3? 🤔' },
  ];
  const chatml = '<|im_start|>system\nYou answer briefly.<|im_end|>\n'
    + '<|im_start|>user\nWhat is 2+2?<|im_end|>\n'
    + '<|im_start|>assistant\n4<|im_end|>\n'
    + '<|im_start|>user\nAnd 3+3? 🤔<|im_end|>\n';

  it('renders ChatML without the generation prompt', () => {
    assert.ok(tok.hasChatTemplate);
    assert.equal(tok.applyChatTemplate(conversation, { addGenerationPrompt: false }), chatml);
  });

  it('renders ChatML with the generation prompt', () => {
    assert.equal(tok.applyChatTemplate(conversation, { addGenerationPrompt: true }), `${chatml}<|im_start|>assistant\n`);
  });

  it("adds Qwen2's default system prompt when the conversation has none", () => {
    assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }),
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('renders exactly as Jinja2 does (transformers apply_chat_template)', () => {
    for (const c of expected.chat) {
      assert.equal(tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt }), c.text);
    }
  });

  it('the rendered prompt encodes with each special token as one id', () => {
    const ids = tok.encode(tok.applyChatTemplate(conversation, { addGenerationPrompt: true }));
    const imStart = tok.tokenToId('<|im_start|>')!;
    const imEnd = tok.tokenToId('<|im_end|>')!;
    assert.equal(ids.filter((id) => id === imStart).length, 5);
    assert.equal(ids.filter((id) => id === imEnd).length, 4);
    assert.equal(ids[0], imStart);
  });

  it('reads chat_template.jinja when tokenizer_config.json has none, and says so when neither exists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oeld-tok-'));
    try {
      cpSync(join(FIXTURE, 'tokenizer.json'), join(dir, 'tokenizer.json'));
      const config = JSON.parse(readFileSync(join(FIXTURE, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
      const template = config.chat_template as string;
      delete config.chat_template;
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
      const bare = await loadTokenizer(dir);
      assert.equal(bare.hasChatTemplate, false);
      assert.throws(() => bare.applyChatTemplate(conversation, { addGenerationPrompt: true }), /has no chat template/);
      writeFileSync(join(dir, 'chat_template.jinja'), template);
      const withFile = await loadTokenizer(dir);
      assert.equal(withFile.applyChatTemplate(conversation, { addGenerationPrompt: false }), chatml);
      // No generation_config.json here: the eos ids come from tokenizer_config.json alone.
      assert.deepEqual(withFile.eosTokenIds, [withFile.tokenToId('<|im_end|>')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

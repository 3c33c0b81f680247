import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { pretokenize, WORD_SPLIT_PATTERN } from '../src/basemodel/bpe-trainer.ts';
import { goalItem, holeItem } from '../src/basemodel/experience-items.ts';
import { fixedLines, trainWordTokenizer, writeWordTokenizer } from '../src/basemodel/word-tokenizer.ts';
import { customerReply } from '../src/envs/support-desk/customer.ts';
import { FACTS, factValues } from '../src/envs/support-desk/facts.ts';
import { ITEM_MARKER } from '../src/projections/knowledge/knowledge-base.ts';
import { loadTokenizer, type Tokenizer } from '../src/model/formats/tokenizer.ts';
import { seededRandom } from '../src/model/network/rng.ts';

/** A small word tokenizer (the recipe's sample, smaller), loaded as the runtime loads a model's. */
const SMALL = { vocab: 1024, examples: 3000, seed: 7 };

describe('the word tokenizer (merges that never span words)', () => {
  let tok: Tokenizer;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oeld-words-'));
    writeWordTokenizer(dir, SMALL);
    tok = await loadTokenizer(dir);
  });

  const pieces = (text: string): string[] => tok.encode(text).map((id) => tok.decode([id]));
  /** Whether `needle`'s tokens stand in `hay`'s tokens as a run. */
  const holds = (hay: number[], needle: number[]): boolean => {
    for (let i = 0; i + needle.length <= hay.length; i++) if (needle.every((x, k) => hay[i + k] === x)) return true;
    return false;
  };

  it('spells every value of every fact with the same tokens in a customer\'s correction, an item and an answer', () => {
    const random = seededRandom(3);
    let checked = 0;
    for (const fact of FACTS) {
      const values = factValues(fact);
      for (const [i, value] of values.entries()) {
        const said = values[(i + 1) % values.length]!;
        // The value's tokens as a sentence has them after a space.
        const own = tok.encode(`x ${value}.`).slice(1, -1);
        const spelled = JSON.stringify(own.map((t) => tok.decode([t])));
        assert.ok(holds(tok.encode(`${ITEM_MARKER}${fact.item(value)}`), own), `${fact.id}: the item of "${value}": ${JSON.stringify(pieces(fact.item(value)))} against ${spelled}`);
        for (let k = 0; k < 6; k++) {
          const reply = customerReply(random, fact, value, { right: false, stated: [said] }, 1).text;
          assert.ok(holds(tok.encode(reply), own), `${fact.id}: "${value}" in "${reply}": ${JSON.stringify(pieces(reply))} against ${spelled}`);
          checked++;
        }
      }
    }
    assert.ok(checked > 1500, `${checked} corrections`);
  });

  it('is what the lake tokenizer grown for English (models/oeld-desk) is not: there a value\'s tokens can depend on the word before it', async () => {
    const grown = await loadTokenizer('models/oeld-desk');
    const spell = (t: Tokenizer, text: string) => t.encode(text).map((id) => t.decode([id]));
    const values = ['the EU only', 'the US and Canada', 'the Nordic countries'];
    // "It's the EU only": the grown tokenizer fuses the customer's "s " with "the"; the item has " the ".
    for (const [t, alike] of [[grown, false], [tok, true]] as const) {
      for (const v of values) {
        const item = spell(t, `${ITEM_MARKER}We ship to ${v}.`);
        const reply = spell(t, `That's not right. It's ${v}.`);
        const the = (ps: string[]) => ps.find((p) => p.includes('the'));
        assert.equal(the(item) === the(reply), alike, `${v}: ${JSON.stringify(item)} / ${JSON.stringify(reply)}`);
      }
    }
  });

  it('keeps what the lake worlds need: a cell is three pieces, a letter on the board is the letter of an item, the marker is one piece', () => {
    const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
    const lengths = [row(['H', '.', 'G']), row(['.', '.', '.']), row(['P', 'X', 'O']), row(['.', 'T', '.'])].map((r) => tok.encode(r).length);
    assert.equal(new Set(lengths).size, 1, `every row the same length: ${lengths.join(', ')}`);
    const board = tok.encode(row(['H', '.', 'G']));
    for (const letter of ['H', 'G']) {
      const id = tok.encode(letter);
      assert.equal(id.length, 1);
      assert.ok(board.includes(id[0]!), `${letter} on the board is its own token`);
      assert.ok(tok.encode(`${ITEM_MARKER}${holeItem(letter)}`).includes(id[0]!), `${letter} in a hole item is the same token`);
      assert.ok(tok.encode(`${ITEM_MARKER}${goalItem(letter)}`).includes(id[0]!), `${letter} in a goal item is the same token`);
    }
    const marker = tok.encode(ITEM_MARKER);
    assert.equal(marker.length, 1, 'the marker is one token');
    assert.equal(tok.encode(`${ITEM_MARKER}The refund window is 30 days.`)[0], marker[0]);
    assert.deepEqual(tok.encode(`${ITEM_MARKER}The refund window is 30 days.`).slice(1), tok.encode('The refund window is 30 days.'), 'an item\'s sentence is the answer\'s tokens');
    for (const text of ["Wrong, it's chief@help.desk. Please check.", `${ITEM_MARKER}We ship to South America.`]) assert.equal(tok.decode(tok.encode(text)), text);
  });

  it('cuts fixed instruction text whole, never what carries state, a value or the item marker', () => {
    const texts = [
      ...Array.from({ length: 50 }, (_, i) => `Each turn, answer with one action in square brackets: [up], [down], [left] or [right].\nYou are playing a game on a grid board. You are ${'PQ'[i % 2]}.\n${ITEM_MARKER}The refund window is ${i} days.`),
      'A line that stands only once and is long enough to be fixed otherwise.',
    ];
    const fixed = fixedLines(texts, 0.1, 40);
    assert.deepEqual(fixed, ['Each turn, answer with one action in square brackets: ', 'You are playing a game on a grid board. You are '], 'longest first; the item\'s sentence and the line seen once are not fixed');
    const pattern = [...fixed.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), WORD_SPLIT_PATTERN].join('|');
    assert.deepEqual(pretokenize('You are playing a game on a grid board. You are P.', pattern), ['You are playing a game on a grid board. You are ', 'P', '.']);
    assert.deepEqual(pretokenize('We ship to South America.', WORD_SPLIT_PATTERN), ['We', ' ship', ' to', ' South', ' America', '.']);
    assert.deepEqual(pretokenize("it's 15%, not 10%", WORD_SPLIT_PATTERN), ['it', "'", 's', ' ', '1', '5', '%', ',', ' not', ' ', '1', '0', '%']);
  });

  it('merges within fixed instruction text, so the instructions of a prompt stay short', () => {
    const extraction = 'You are reviewing one of your own past attempts at a task, in order to learn from experience.';
    assert.ok(tok.encode(extraction).length <= 3, `${tok.encode(extraction).length} tokens for the extraction prompt's first line`);
  });

  it('is deterministic for its options', () => {
    const a = trainWordTokenizer(SMALL);
    const b = trainWordTokenizer(SMALL);
    assert.deepEqual(a.merges, b.merges);
    assert.equal(a.pattern, b.pattern);
    assert.equal(JSON.stringify(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).model.merges), JSON.stringify(a.merges));
  });
});

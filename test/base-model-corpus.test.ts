import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { continueBpe, pretokenize, SPECIAL_TOKENS, trainBpe } from '../src/basemodel/bpe-trainer.ts';
import { trainCorpusTokenizer } from '../src/basemodel/base-model-recipe.ts';
import { DEFAULT_CORPUS_OPTIONS, drawExample, drawExampleOfKind, FAMILIAR_WORLDS, firstLetterIsGoal, goalDirection, isHeldOutPair, NOTHING_NEW, playResponse, promptText } from '../src/basemodel/corpus.ts';
import { BUDGET_ITEM, EDGE_ITEM, goalItem, holeItem, itemsTaught, newItems } from '../src/basemodel/experience-items.ts';
import { writeTokenizerFolder } from '../src/basemodel/tokenizer-folder.ts';
import { extendEmbedding, wordMerge } from '../src/basemodel/vocabulary-extension.ts';
import { parseAction } from '../src/envs/environment.ts';
import { FrozenLake } from '../src/envs/frozenlake.ts';
import { bestMove, FROZENLAKE_SYMBOLS, frozenLakeAsLake, frozenLakeLikeLayout, goalDistances, LakeWorld, randomLakeLayout } from '../src/envs/lake-world.ts';
import { CORPUS_KINDS, packCorpus, unpackCorpus } from '../src/basemodel/corpus-file.ts';
import { parseExperienceItems } from '../src/extraction/parse-items.ts';
import { seededRandom } from '../src/model/network/rng.ts';
import { loadTokenizer } from '../src/model/formats/tokenizer.ts';

describe('lake worlds (the base model\'s pretraining worlds)', () => {
  it('draw FrozenLake exactly as FrozenLake draws itself, move for move', () => {
    for (let seed = 0; seed < 50; seed++) {
      const lake = new FrozenLake(seed);
      const world = new LakeWorld('w', frozenLakeAsLake(seed), FROZENLAKE_SYMBOLS);
      assert.equal(world.board(), lake.board());
      for (const a of ['right', 'down', 'left', 'down', 'right']) {
        if (lake.done) break;
        const x = lake.step(`[${a}]`);
        const y = world.step(`[${a}]`);
        assert.deepEqual(y, x);
        assert.equal(world.observation(), lake.observation());
      }
    }
  });

  it('random layouts always have a reachable goal, and the best move shortens the distance', () => {
    const random = seededRandom(3);
    for (let i = 0; i < 300; i++) {
      const layout = randomLakeLayout(random);
      const dist = goalDistances(layout);
      const from = layout.start;
      const d0 = dist[from[0] * 3 + from[1]]!;
      assert.ok(Number.isFinite(d0) && d0 >= 1);
      const move = bestMove(layout, from)!;
      const world = new LakeWorld('w', layout, { hole: 'A', goal: 'B' });
      const step = world.step(`[${move}]`);
      assert.ok(step.valid && (step.success || dist[world.player[0] * 3 + world.player[1]] === d0 - 1));
    }
  });
});

describe('corner-start lakes (FrozenLake-shaped pretraining worlds)', () => {
  it('start in the corner with three marked cells, a reachable goal, and no fixed goal cell or count to guess from', () => {
    const random = seededRandom(8);
    const goalCells = new Set<string>();
    const counts = { oneGoal: 0, twoGoals: 0 };
    for (let i = 0; i < 400; i++) {
      const l = frozenLakeLikeLayout(random);
      assert.deepEqual(l.start, [0, 0]);
      assert.equal(l.goals.length + l.holes.length, 3);
      assert.ok(Number.isFinite(goalDistances(l)[0]!));
      for (const g of l.goals) goalCells.add(`${g[0]},${g[1]}`);
      if (l.goals.length === 1) counts.oneGoal++; else counts.twoGoals++;
    }
    assert.equal(goalCells.size, 8, 'a goal appears on every cell but the start');
    assert.ok(counts.oneGoal > 150 && counts.twoGoals > 150, JSON.stringify(counts));
  });
});

describe('exported corpus format', () => {
  it('round-trips examples, and refuses ids that do not fit or an index that runs past the tokens', () => {
    const examples = [
      { kind: 'guess' as const, prompt: [2, 10, 11], response: [40, 1] },
      { kind: 'extract' as const, prompt: [2, 65535], response: [1] },
    ];
    const { tokens, index } = packCorpus(examples);
    assert.deepEqual([...index], [0, 3, 2, CORPUS_KINDS.indexOf('guess'), 5, 2, 1, CORPUS_KINDS.indexOf('extract')]);
    assert.deepEqual(unpackCorpus(tokens, index), examples);
    assert.throws(() => packCorpus([{ kind: 'guess', prompt: [70000], response: [1] }]), /70000 does not fit in uint16/);
    assert.throws(() => unpackCorpus(tokens.subarray(0, 6), index), /example 1 runs past the tokens/);
  });
});

/** The letters on a prompt's board other than the player's, in reading order. */
const boardLetters = (prompt: string): string[] => prompt.split('\n').filter((l) => l.startsWith('| '))
  .flatMap((l) => [...l.matchAll(/\| ([A-Z]) /g)].map((m) => m[1]!)).filter((x) => x !== 'P');

describe('pretraining corpus', () => {
  it('is still the corpus the shipped model was trained on (the first 2,000 examples of its seed, by hash)', () => {
    // The recipe of models/oeld-base: drawExample's stream from seed 20261127 with DEFAULT_MIX and
    // DEFAULT_CORPUS_OPTIONS (its GPU stage's exported corpus is pinned by the sha256 in its
    // pretraining-corpus.json; models/README.md says which options each stage used). A change to
    // the corpus changes this hash: retrain the model with it.
    const random = seededRandom(20261127);
    const hash = createHash('sha256');
    for (let i = 0; i < 2000; i++) { const e = drawExample(random); hash.update(`${e.kind}\0${e.prompt}\0${e.response}\0`); }
    assert.equal(hash.digest('hex'), 'f82c710e3d8dcebdd1ffc84a4a6d2a0b148c5e6bb309ccfdfb79cb7d9d8a1f65');
  });

  it('lets extraction episodes follow the stated belief less, so that "what I said, and whether I won" predicts the items less', () => {
    // The shortcut: a win means the letter I last called the goal is the goal, a loss that it is a
    // hole. The share of extraction examples whose letter items all agree with it:
    const shortcutRight = (extractionRandomMoves: number) => {
      const random = seededRandom(21);
      let right = 0;
      let n = 0;
      for (let i = 0; i < 1000; i++) {
        const e = drawExampleOfKind(random, 'extract', { ...DEFAULT_CORPUS_OPTIONS, extractionRandomMoves });
        const said = [...e.prompt.matchAll(/output: Goal ([A-Z])/g)].at(-1)?.[1];
        const won = e.prompt.includes('Final result: success');
        const items = [...e.response.matchAll(/([A-Z]) is (the goal|a hole)/g)];
        if (!said || items.length === 0) continue;
        n++;
        if (items.every((m) => (m[1] === said) === ((m[2] === 'the goal') === won))) right++;
      }
      return right / n;
    };
    const followed = shortcutRight(0);
    const quarter = shortcutRight(0.25);
    const shipped = shortcutRight(DEFAULT_CORPUS_OPTIONS.extractionRandomMoves);
    assert.ok(followed > 0.95, `a player that always follows its belief: the shortcut is right ${followed}`);
    assert.ok(quarter > 0.85, `a quarter of the moves random (the first GPU model's corpus): ${quarter}; the shortcut works there, and that model learned it`);
    assert.ok(shipped < 0.6, `the shipped recipe (every move random): the shortcut is right only ${shipped}, about chance`);
  });

  it('does not let the letter seen fewer times on the board give the goal away (balancedCounts)', () => {
    // An informed example's board has the goal letter and the hole letter (its answer follows the
    // real rules); where their counts differ, the share of examples whose goal is the rarer letter.
    // Unbalanced random lakes have more holes than goals: "the letter seen once is the goal" would
    // answer FrozenLake (one G, two H) without experience.
    const rarerIsGoal = (balancedCounts: boolean) => {
      const random = seededRandom(5);
      let rarer = 0;
      let n = 0;
      for (let i = 0; i < 3000; i++) {
        const e = drawExampleOfKind(random, 'informed', { ...DEFAULT_CORPUS_OPTIONS, balancedCounts });
        const goal = /^Goal ([A-Z])/.exec(e.response)![1]!;
        const counts = new Map<string, number>();
        for (const letter of boardLetters(e.prompt)) counts.set(letter, (counts.get(letter) ?? 0) + 1);
        assert.ok(counts.has(goal) && counts.size === 2, `two letters on the board, the goal among them: ${[...counts]} in\n${e.prompt}`);
        const [[a, na], [b, nb]] = [...counts] as [[string, number], [string, number]];
        if (na === nb) continue;
        n++;
        if (goal === (na < nb ? a : b)) rarer++;
      }
      return rarer / n;
    };
    const balanced = rarerIsGoal(true);
    const unbalanced = rarerIsGoal(false);
    assert.ok(Math.abs(balanced - 0.5) < 0.05, `balanced counts: the rarer letter is the goal in ${balanced} (chance is 0.5)`);
    assert.ok(unbalanced > 0.58, `unbalanced counts: the rarer letter is the goal in ${unbalanced}`);
  });

  it('answers a guess (no knowledge) by the convention "the first letter in reading order is the goal"', () => {
    const random = seededRandom(8);
    const stated = { first: 0, other: 0 };
    for (let i = 0; i < 500; i++) {
      const e = drawExampleOfKind(random, 'guess');
      const letters = boardLetters(e.prompt);
      const goal = /^Goal ([A-Z]) at/.exec(e.response)![1];
      if (goal === letters[0]) stated.first++; else stated.other++;
      assert.notEqual(parseAction(e.response), null, e.response);
    }
    assert.deepEqual(stated, { first: 500, other: 0 });
    // The convention is right only when the first letter happens to be a goal.
    const layout = { size: 3, start: [0, 0] as const, goals: [[2, 2] as const], holes: [[0, 2] as const, [2, 0] as const] };
    assert.equal(firstLetterIsGoal(layout), false);
    assert.equal(firstLetterIsGoal({ ...layout, goals: [[0, 1] as const] }), true);
  });

  it('never shows the deployment world (hole H, goal G) in either role assignment', () => {
    const random = seededRandom(11);
    for (let i = 0; i < 3000; i++) {
      const e = drawExample(random);
      const m = /^Goal ([A-Z])(?: at \d,\d from \d,\d)? is [a-z-]+, avoid ([A-Z])/.exec(e.response);
      assert.ok(m || e.kind === 'extract', `a play answer in the expected format: ${e.response}`);
      if (m) assert.ok(!isHeldOutPair({ goal: m[1]!, hole: m[2]! }), e.response);
      const texts = `${e.prompt}\n${e.response}`;
      const holes = [...texts.matchAll(/([A-Z]) is a hole/g)].map((x) => x[1]);
      const goals = [...texts.matchAll(/([A-Z]) is the goal/g)].map((x) => x[1]);
      assert.ok(!(holes.includes('H') && goals.includes('G')) && !(holes.includes('G') && goals.includes('H')), texts);
    }
  });

  it('answers play examples with the best move and extraction examples with new marked items', () => {
    const random = seededRandom(5);
    for (let i = 0; i < 200; i++) {
      const play = drawExampleOfKind(random, 'informed');
      assert.ok(parseAction(play.response) !== null);
      const familiar = drawExampleOfKind(random, 'familiar');
      assert.ok(FAMILIAR_WORLDS.some((w) => new RegExp(`^Goal ${w.goal} at \\d,\\d from \\d,\\d is [a-z-]+, avoid ${w.hole}[ .]`).test(familiar.response)), familiar.response);
      const ex = drawExampleOfKind(random, 'extract');
      const items = parseExperienceItems(ex.response);
      assert.ok(items.length <= 2);
      if (items.length === 0) assert.equal(ex.response, NOTHING_NEW);
      for (const item of items) assert.ok(!ex.prompt.includes(`. ${item}\n`), `"${item}" repeats the knowledge so far`);
    }
  });

  it('states where the nearest goal lies and which neighbours are holes before the move', () => {
    const layout = { size: 3, start: [0, 0] as const, goals: [[2, 2] as const, [0, 2] as const], holes: [[1, 0] as const, [0, 1] as const] };
    // Both goals are 2 away as the crow flies from (1,1); only (2,2) is reachable without a hole in 2 moves.
    assert.equal(playResponse({ hole: 'Q', goal: 'K' }, layout, [1, 1], 'down'), 'Goal K is down-right, avoid Q (up, left). [down]');
    assert.equal(goalDirection(layout, [2, 2]), 'here');
    assert.equal(goalDirection({ ...layout, goals: [[0, 2]] }, [2, 1]), 'up-right');
    assert.equal(playResponse({ hole: 'Q', goal: 'K' }, { ...layout, holes: [] }, [2, 0], 'right'), 'Goal K is right, avoid Q. [right]');
    // With statePositions the answer names the goal's cell it heads for and the player's (row,column from 1).
    assert.equal(playResponse({ hole: 'Q', goal: 'K' }, layout, [1, 1], 'down', true), 'Goal K at 3,3 from 2,2 is down-right, avoid Q (up, left). [down]');
    assert.equal(playResponse({ hole: 'Q', goal: 'K' }, { ...layout, goals: [] }, [1, 2], 'left', true), 'Goal K at 2,3 from 2,3 is here, avoid Q. [left]');
  });

  it('teaches the letter an episode ended on first, then the other by elimination, then general rules', () => {
    assert.deepEqual(itemsTaught({ kind: 'hole', letter: 'Q', otherLetter: 'K' }).slice(0, 2), [holeItem('Q'), goalItem('K')]);
    assert.deepEqual(newItems(itemsTaught({ kind: 'goal', letter: 'K', otherLetter: 'Q' }), [goalItem('K')]), [holeItem('Q'), BUDGET_ITEM]);
    assert.deepEqual(newItems(itemsTaught({ kind: 'edge' }), [EDGE_ITEM.toUpperCase()]), [BUDGET_ITEM]);
  });
});

describe('the base model tokenizer (BPE trained here, loaded by @huggingface/tokenizers)', () => {
  it('round-trips the corpus, keeps board letters and actions as their own tokens, and renders the chat template', async () => {
    const random = seededRandom(2);
    const sample = Array.from({ length: 600 }, () => drawExample(random)).map((e) => ({ prompt: promptText(e), response: e.response }));
    const bpe = trainBpe(sample.flatMap((e) => [e.prompt, e.response]), 900, Object.values(SPECIAL_TOKENS));
    assert.deepEqual(trainBpe(sample.flatMap((e) => [e.prompt, e.response]), 900, Object.values(SPECIAL_TOKENS)).merges, bpe.merges, 'deterministic');
    const dir = mkdtempSync(join(tmpdir(), 'oeld-tok-'));
    writeTokenizerFolder(dir, bpe);
    const tok = await loadTokenizer(dir);
    for (const e of sample.slice(0, 100)) {
      assert.equal(tok.decode(tok.encode(e.prompt)), e.prompt);
      assert.equal(tok.decode(tok.encode(e.response)), e.response);
    }
    const ids = tok.encode('Goal K is down, avoid Q. [down]');
    const pieces = ids.map((id) => tok.decode([id]));
    assert.ok(pieces.includes('K') && pieces.includes('Q') && pieces.includes('[down]'), pieces.join('|'));
    assert.deepEqual(pretokenize('| P | H |   |\nK is a hole'), ['| ', 'P', ' ', '| ', 'H', ' ', '| ', ' ', ' |', '\n', 'K', ' is a hole'], 'a cell is its opening, its content and a space; a letter standing alone is a piece');
    // The letter on the board is the same token as the letter in an item, and every row has the same length.
    const row = (cells: string) => tok.encode(`| ${[...cells].join(' | ')} |`);
    assert.equal(row('KP ').length, row('   ').length);
    assert.equal(tok.decode([row('K  ')[1]!]), 'K');
    assert.ok(tok.encode('K is a hole').includes(row('K  ')[1]!), 'the board letter K and the item letter K are one token');
    const chat = tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
    assert.equal(chat, '<|user|>\nhi<|end|>\n<|assistant|>\n');
    assert.deepEqual(tok.eosTokenIds, [tok.tokenToId('<|end|>')]);
    assert.equal(tok.encode(chat).filter((id) => tok.specialTokenIds.has(id)).length, 3);
  });

  /** A small lake-world tokenizer (700 tokens) and support-desk text of one kind to grow it on. */
  async function lakeTokenizerAndDeskText(seed: number, kind: 'desk-informed' | 'desk-extract') {
    const random = seededRandom(seed);
    const lake = Array.from({ length: 300 }, () => drawExample(random)).map((e) => ({ prompt: promptText(e), response: e.response }));
    const base = trainBpe(lake.flatMap((e) => [e.prompt, e.response]), 700, Object.values(SPECIAL_TOKENS));
    const dir = mkdtempSync(join(tmpdir(), 'oeld-tok-'));
    writeTokenizerFolder(dir, base);
    const old = await loadTokenizer(dir);
    const desk = Array.from({ length: 200 }, () => drawExampleOfKind(random, kind)).flatMap((e) => [promptText(e), e.response]);
    return { base, old, desk };
  }

  it('grows by continuing its merges: old tokens keep their ids and merges their ranks, the new text gets shorter', async () => {
    const { base, old, desk } = await lakeTokenizerAndDeskText(4, 'desk-informed');
    const wide = continueBpe(base, desk, (piece) => old.encode(piece), 1024);
    assert.equal(wide.vocab.size, 1024);
    for (const [token, id] of base.vocab) assert.equal(wide.vocab.get(token), id, `${token} keeps its id`);
    assert.deepEqual(wide.merges.slice(0, base.merges.length), base.merges, 'old merges keep their ranks');
    assert.deepEqual(continueBpe(base, desk, (piece) => old.encode(piece), 1024).merges, wide.merges, 'deterministic');
    const wideDir = mkdtempSync(join(tmpdir(), 'oeld-tok-'));
    writeTokenizerFolder(wideDir, wide);
    const grown = await loadTokenizer(wideDir);
    const length = (t: typeof old) => desk.slice(0, 50).reduce((n, x) => n + t.encode(x).length, 0);
    assert.ok(length(grown) < 0.7 * length(old), `desk text shorter: ${length(grown)} vs ${length(old)} tokens`);
    for (const x of desk.slice(0, 20)) assert.equal(grown.decode(grown.encode(x)), x);
    // A new token's embedding row starts as the mean of its old pieces' rows; old rows stay.
    const embed = { shape: [704, 2], data: Float32Array.from({ length: 704 * 2 }, (_, i) => i) };
    const grownEmbed = extendEmbedding(embed, 1024, base.vocab.size, wide.vocab.size - 1, old, grown);
    assert.deepEqual([...grownEmbed.data.subarray(0, 700 * 2)], [...embed.data.subarray(0, 700 * 2)]);
    const id = base.vocab.size + 5;
    const pieces = old.encode(grown.decode([id]));
    assert.ok(pieces.length >= 2);
    assert.ok(Math.abs(grownEmbed.data[id * 2]! - pieces.reduce((n, p) => n + embed.data[p * 2]!, 0) / pieces.length) < 1e-3);
  });

  it('grows by whole words under the word rule: a value is the same tokens in an item, an answer and a correction', async () => {
    const { base, old, desk } = await lakeTokenizerAndDeskText(5, 'desk-extract');
    const grow = (rule?: typeof wordMerge) => {
      const wide = continueBpe(base, desk, (piece) => old.encode(piece), 1024, undefined, rule);
      const wideDir = mkdtempSync(join(tmpdir(), 'oeld-tok-'));
      writeTokenizerFolder(wideDir, wide);
      return { wide, tokenizer: loadTokenizer(wideDir) };
    };
    const words = grow(wordMerge);
    const added = [...words.wide.vocab.keys()].filter((t) => !base.vocab.has(t));
    assert.ok(added.length > 100, `${added.length} new tokens`);
    for (const t of added) assert.match(t, /^Ġ?[A-Za-z]+Ġ?$|^Ġ+$/, `a new token is a word with a space at most at either end: ${t}`);
    /** The tokens of `text` from the one where `part` starts (none when no token starts there). */
    const spelled = async (t: Promise<typeof old>, text: string, part: string) => {
      const tok = await t;
      const pieces = tok.encode(text).map((id) => tok.decode([id]));
      const start = pieces.findIndex((_, i) => pieces.slice(i).join('').startsWith(part));
      return start < 0 ? [] : pieces.slice(start);
    };
    // The value starts a token and its digits are single tokens wherever it stands (the unit word
    // may end differently before punctuation: old merges such as "s." keep their ranks).
    for (const text of ['The refund window is 30 days.', "No, it's 30 days, not 14.", 'Actually the refund window is 30 days, I just read it on your site.']) {
      assert.deepEqual((await spelled(words.tokenizer, text, '30 d')).slice(0, 3).map((t, i) => (i === 2 ? t.slice(0, 2) : t)), ['3', '0', ' d'], text);
    }
    // Plain BPE (the rule off) fuses digits with the words around them: the rule is what separates them.
    const plain = grow();
    assert.ok([...plain.wide.vocab.keys()].some((t) => !base.vocab.has(t) && /\d/.test(t)), 'plain BPE learns tokens with digits');
  });

  it('is reproduced byte for byte by trainCorpusTokenizer from the seed (the shipped tokenizer.json)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oeld-tok-'));
    trainCorpusTokenizer(dir, 20261127);
    assert.equal(readFileSync(join(dir, 'tokenizer.json'), 'utf8'), readFileSync('models/oeld-base/tokenizer.json', 'utf8'));
    // The answer format's position note is made of its own tokens: letters, digits, " at ", " from ".
    const tok = await loadTokenizer(dir);
    const pieces = tok.encode('Goal K at 3,3 from 2,2 is down-right, avoid Q. [down]').map((id) => tok.decode([id]));
    assert.deepEqual(pieces.slice(0, 10), ['Goal ', 'K', ' at ', '3', ',', '3', ' from ', '2', ',', '2']);
  });
});

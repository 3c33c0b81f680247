import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pretokenize, SPECIAL_TOKENS, trainBpe } from '../src/basemodel/bpe-trainer.ts';
import { DEFAULT_CORPUS_OPTIONS, drawExample, drawExampleOfKind, FAMILIAR_WORLDS, goalDirection, isHeldOutPair, NOTHING_NEW, playResponse } from '../src/basemodel/corpus.ts';
import { BUDGET_ITEM, EDGE_ITEM, goalItem, holeItem, itemsTaught, newItems } from '../src/basemodel/experience-items.ts';
import { writeTokenizerFolder } from '../src/basemodel/tokenizer-folder.ts';
import { parseAction } from '../src/envs/environment.ts';
import { FrozenLake } from '../src/envs/frozenlake.ts';
import { bestMove, FROZENLAKE_SYMBOLS, frozenLakeAsLake, frozenLakeLikeLayout, goalDistances, LakeWorld, randomLakeLayout } from '../src/envs/lake-world.ts';
import { CORPUS_KINDS, packCorpus, unpackCorpus } from '../src/basemodel/corpus-file.ts';
import { parseExperienceItems } from '../src/extraction/parse-items.ts';
import { seededRandom } from '../src/model/rng.ts';
import { loadTokenizer } from '../src/model/tokenizer.ts';

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

describe('pretraining corpus', () => {
  it('is still the corpus the shipped model was trained on (the first 2,000 examples of its seed, by hash)', () => {
    // models/oeld-base was trained on drawExample's stream from seed 20261127 with the defaults.
    // A change to the corpus changes this hash: retrain the model with it (models/README.md).
    const random = seededRandom(20261127);
    const hash = createHash('sha256');
    for (let i = 0; i < 2000; i++) { const e = drawExample(random); hash.update(`${e.kind}\0${e.prompt}\0${e.response}\0`); }
    assert.equal(hash.digest('hex'), '32b77e64d2742813672b6c12d311d63af63b3ee08c96e5e7c207358961357388');
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
    const shipped = shortcutRight(DEFAULT_CORPUS_OPTIONS.extractionRandomMoves);
    const random = shortcutRight(1);
    assert.ok(followed > 0.95, `a player that always follows its belief: the shortcut is right ${followed}`);
    assert.ok(shipped > 0.85, `the shipped corpus (a quarter of the moves random): ${shipped}; the shortcut works there, and the model learned it`);
    assert.ok(random < 0.6, `a random player: the shortcut is right only ${random}, about chance`);
  });

  it('never shows the deployment world (hole H, goal G) in either role assignment', () => {
    const random = seededRandom(11);
    for (let i = 0; i < 3000; i++) {
      const e = drawExample(random);
      const m = /^Goal ([A-Z]) is [a-z-]+, avoid ([A-Z])/.exec(e.response);
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
      assert.ok(FAMILIAR_WORLDS.some((w) => new RegExp(`^Goal ${w.goal} is [a-z-]+, avoid ${w.hole}[ .]`).test(familiar.response)), familiar.response);
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
    const sample = Array.from({ length: 600 }, () => drawExample(random));
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
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MAX_CALLS, GENERIC_INSTRUCTION, parseAction, renderPrompt, type TextGame } from '../src/envs/environment.ts';
import { FrozenLake, frozenLakeSpec, generateFrozenLake, type FrozenLakeLayout } from '../src/envs/frozenlake.ts';
import { assertDisjointSeedRanges, DEPLOYMENT_SEEDS, EXTRACTION_SEEDS, inSeedRange, SEED_RANGES, seedsOf, TEST_SEEDS, VALIDATION_SEEDS } from '../src/envs/seed-ranges.ts';
import { generateSokoban, parseSokobanBoard, Sokoban, sokobanSpec, type SokobanLayout } from '../src/envs/sokoban.ts';

// ---------------------------------------------------------------------------------------------
// Independent solvers (written here, not taken from src)

type Dir = 'up' | 'down' | 'left' | 'right';
const STEPS: [Dir, number, number][] = [
  ['up', -1, 0],
  ['down', 1, 0],
  ['left', 0, -1],
  ['right', 0, 1],
];

/** Shortest action list from start to goal on a FrozenLake layout, or null. */
function solveLake(layout: FrozenLakeLayout): Dir[] | null {
  const n = layout.size;
  const hole = (r: number, c: number): boolean => layout.holes.some(([hr, hc]) => hr === r && hc === c);
  const seen = new Map<number, Dir[]>([[layout.start[0] * n + layout.start[1], []]]);
  const queue: [number, number][] = [[layout.start[0], layout.start[1]]];
  while (queue.length > 0) {
    const [r, c] = queue.shift()!;
    const path = seen.get(r * n + c)!;
    if (r === layout.goal[0] && c === layout.goal[1]) return path;
    for (const [d, dr, dc] of STEPS) {
      const nr = r + dr;
      const nc = c + dc;
      if (nr < 0 || nc < 0 || nr >= n || nc >= n || hole(nr, nc) || seen.has(nr * n + nc)) continue;
      seen.set(nr * n + nc, [...path, d]);
      queue.push([nr, nc]);
    }
  }
  return null;
}

/** Shortest push/move sequence putting the single box on the single target, or null. */
function solveSokoban(layout: SokobanLayout): Dir[] | null {
  assert.equal(layout.boxes.length, 1);
  assert.equal(layout.targets.length, 1);
  const wall = (r: number, c: number): boolean => layout.walls[r]?.[c] ?? true;
  const [tr, tc] = layout.targets[0]!;
  const key = (pr: number, pc: number, br: number, bc: number): string => `${pr},${pc},${br},${bc}`;
  const start: [number, number, number, number] = [layout.player[0], layout.player[1], layout.boxes[0]![0], layout.boxes[0]![1]];
  const seen = new Map<string, Dir[]>([[key(...start), []]]);
  const queue = [start];
  while (queue.length > 0) {
    const [pr, pc, br, bc] = queue.shift()!;
    const path = seen.get(key(pr, pc, br, bc))!;
    if (br === tr && bc === tc) return path;
    for (const [d, dr, dc] of STEPS) {
      const nr = pr + dr;
      const nc = pc + dc;
      if (wall(nr, nc)) continue;
      let nbr = br;
      let nbc = bc;
      if (nr === br && nc === bc) {
        nbr = br + dr;
        nbc = bc + dc;
        if (wall(nbr, nbc)) continue;
      }
      const k = key(nr, nc, nbr, nbc);
      if (seen.has(k)) continue;
      seen.set(k, [...path, d]);
      queue.push([nr, nc, nbr, nbc]);
    }
  }
  return null;
}

const seedRange = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);
const lakeSeedWhere = (pred: (l: FrozenLakeLayout) => boolean): number => {
  for (let s = 0; s < 10_000; s++) if (pred(generateFrozenLake(s))) return s;
  throw new Error('no such seed');
};
const hasHole = (l: FrozenLakeLayout, r: number, c: number): boolean => l.holes.some(([hr, hc]) => hr === r && hc === c);
const FORBIDDEN = /hole|goal|box|target/i;

// ---------------------------------------------------------------------------------------------

describe('parseAction', () => {
  it('takes the last bracketed action anywhere in the response', () => {
    assert.equal(parseAction('I think [left] ... no, [down]'), 'down');
    assert.equal(parseAction('[up]'), 'up');
    assert.equal(parseAction('Going [RIGHT] now'), 'right');
    assert.equal(parseAction('[Left] then [jump]'), 'left');
    assert.equal(parseAction('first [down]\n\nfinal answer: [up].'), 'up');
  });

  it('returns null when there is no bracketed action among the four', () => {
    assert.equal(parseAction('[jump]'), null);
    assert.equal(parseAction('down'), null);
    assert.equal(parseAction('(down) {left}'), null);
    assert.equal(parseAction(''), null);
    assert.equal(parseAction('[upward]'), null);
  });
});

describe('FrozenLake', () => {
  it('is deterministic per seed and varies across seeds', () => {
    for (const seed of [0, 1, 42, 1_000_000]) {
      const a = new FrozenLake(seed);
      const b = new FrozenLake(seed);
      assert.deepEqual(a.layout, b.layout);
      assert.equal(a.observation(), b.observation());
      assert.equal(a.id, `frozenlake-${seed}`);
    }
    const boards = new Set(seedRange(0, 200).map((s) => new FrozenLake(s).observation()));
    assert.ok(boards.size > 10, `only ${boards.size} distinct boards`);
  });

  it('always has exactly 2 holes, off start and goal, and a path (shortest = 4 moves)', () => {
    for (const seed of seedRange(0, 1000)) {
      const l = generateFrozenLake(seed);
      assert.deepEqual(l.start, [0, 0]);
      assert.deepEqual(l.goal, [2, 2]);
      assert.equal(l.holes.length, 2);
      assert.notDeepEqual(l.holes[0], l.holes[1]);
      for (const [r, c] of l.holes) {
        assert.ok(r >= 0 && r < 3 && c >= 0 && c < 3);
        assert.ok(!(r === 0 && c === 0) && !(r === 2 && c === 2), `seed ${seed}: hole on start or goal`);
      }
      const path = solveLake(l);
      assert.ok(path !== null, `seed ${seed}: no path`);
      assert.equal(path.length, 4);
      const board = new FrozenLake(seed).observation();
      assert.equal((board.match(/H/g) ?? []).length, 2);
      assert.equal((board.match(/G/g) ?? []).length, 1);
      assert.equal((board.match(/P/g) ?? []).length, 1);
    }
  });

  it('renders a framed board with P at the start', () => {
    const seed = lakeSeedWhere((l) => hasHole(l, 1, 1) && hasHole(l, 0, 2));
    assert.equal(
      new FrozenLake(seed).observation(),
      ['+---+---+---+', '| P |   | H |', '+---+---+---+', '|   | H |   |', '+---+---+---+', '|   |   | G |', '+---+---+---+'].join('\n'),
    );
  });

  it('reaching G is success with reward exactly 1.0', () => {
    for (const seed of seedRange(0, 50)) {
      const game = new FrozenLake(seed);
      const path = solveLake(game.layout)!;
      path.forEach((d, i) => {
        const res = game.step(`Let me think. [${d}]`);
        assert.equal(res.action, d);
        assert.equal(res.valid, true);
        const last = i === path.length - 1;
        assert.equal(res.done, last);
        assert.equal(res.success, last);
        assert.equal(res.reward, last ? 1.0 : 0);
      });
      assert.equal(game.calls, 4);
      assert.equal(game.done, true);
      assert.throws(() => game.step('[up]'), /over/);
    }
  });

  it('falling into a hole ends the game in failure', () => {
    const seed = lakeSeedWhere((l) => hasHole(l, 0, 1));
    const game = new FrozenLake(seed);
    const res = game.step('[right]');
    assert.deepEqual({ ...res, feedback: undefined }, { action: 'right', valid: true, done: true, success: false, reward: 0, feedback: undefined });
    assert.match(res.feedback, /fell into a hole/);
    assert.equal(game.done, true);
    assert.equal(game.success, false);
  });

  it('warns the first invalid move and ends the game on the second in a row', () => {
    const game = new FrozenLake(3);
    const first = game.step('[up]'); // wall at the top edge
    assert.equal(first.valid, false);
    assert.equal(first.done, false);
    assert.equal(first.action, 'up');
    assert.match(first.feedback, /invalid/i);
    assert.match(first.feedback, /one more invalid move/i);
    assert.match(game.observation(), /one more invalid move/i, 'the warning is shown with the board');
    assert.match(game.observation(), /^\+---/);
    const second = game.step('[jump]');
    assert.equal(second.action, null);
    assert.equal(second.valid, false);
    assert.equal(second.done, true);
    assert.equal(second.success, false);
    assert.equal(second.reward, 0);
    assert.match(second.feedback, /game over/i);
    assert.equal(game.calls, 2);
  });

  it('a valid move resets the invalid-move run', () => {
    const seed = lakeSeedWhere((l) => !hasHole(l, 1, 0) && !hasHole(l, 2, 0));
    const game = new FrozenLake(seed);
    assert.equal(game.step('[left]').done, false); // invalid 1
    const ok = game.step('[down]');
    assert.equal(ok.valid, true);
    assert.doesNotMatch(game.observation(), /invalid/i, 'the warning goes away after a valid move');
    assert.equal(game.step('no idea').done, false); // invalid 1 again, not 2
    assert.equal(game.step('[down]').done, false);
  });

  it('ends in failure after 5 model calls (invalid moves count)', () => {
    const seed = lakeSeedWhere((l) => !hasHole(l, 0, 1));
    const game = new FrozenLake(seed);
    const moves = ['[right]', '[left]', '[up]', '[right]'];
    for (const m of moves) assert.equal(game.step(m).done, false);
    assert.equal(game.calls, 4);
    const last = game.step('[left]');
    assert.equal(game.calls, DEFAULT_MAX_CALLS);
    assert.equal(last.valid, true);
    assert.equal(last.done, true);
    assert.equal(last.success, false);
    assert.equal(last.reward, 0);
    assert.match(last.feedback, /out of moves/i);
    assert.throws(() => game.step('[down]'));
  });

  it('a win on the last allowed call still counts; the budget is configurable', () => {
    const seed = lakeSeedWhere(() => true);
    const path = solveLake(generateFrozenLake(seed))!;
    const game = new FrozenLake(seed);
    game.step('[up]'); // invalid, warned
    let res;
    for (const d of path) res = game.step(`[${d}]`);
    assert.equal(game.calls, 5);
    assert.equal(res!.success, true);
    assert.equal(res!.reward, 1.0);

    const short = frozenLakeSpec({ maxCalls: 3 }).create(seed);
    for (const d of path.slice(0, 2)) assert.equal(short.step(`[${d}]`).done, false);
    const end = short.step(`[${path[2]}]`);
    assert.equal(end.done, true);
    assert.equal(end.success, false);
    assert.throws(() => new FrozenLake(1, { maxCalls: 0 }), RangeError);
  });
});

describe('Sokoban', () => {
  it('is deterministic per seed and varies across seeds', () => {
    for (const seed of [0, 7, 1_000_127]) {
      assert.deepEqual(generateSokoban(seed), generateSokoban(seed));
      assert.equal(new Sokoban(seed).observation(), new Sokoban(seed).observation());
    }
    const boards = new Set(seedRange(0, 200).map((s) => new Sokoban(s).observation()));
    assert.ok(boards.size > 50, `only ${boards.size} distinct boards`);
  });

  it('every generated puzzle is a walled 6x6 room, box off target, solvable within the call budget', () => {
    const lengths = new Map<number, number>();
    for (const seed of seedRange(0, 500)) {
      const layout = generateSokoban(seed);
      assert.equal(layout.size, 6);
      for (let r = 0; r < 6; r++) {
        for (let c = 0; c < 6; c++) assert.equal(layout.walls[r]![c], r === 0 || c === 0 || r === 5 || c === 5);
      }
      const [box] = layout.boxes;
      const [target] = layout.targets;
      assert.notDeepEqual(box, target, `seed ${seed}: box already on target`);
      assert.notDeepEqual(layout.player, box);
      assert.equal(layout.walls[layout.player[0]]![layout.player[1]], false);
      const solution = solveSokoban(layout);
      assert.ok(solution !== null, `seed ${seed}: unsolvable`);
      assert.ok(solution.length >= 1 && solution.length <= 4, `seed ${seed}: solution of ${solution.length} moves`);
      lengths.set(solution.length, (lengths.get(solution.length) ?? 0) + 1);

      const game = new Sokoban(seed);
      const board = game.observation();
      assert.equal(board.split('\n').length, 6);
      assert.equal((board.match(/[XS√P]/g) ?? []).length, 2); // one player, one box
      solution.forEach((d, i) => {
        const res = game.step(`[${d}]`);
        assert.equal(res.valid, true);
        assert.equal(res.done, i === solution.length - 1);
      });
      assert.equal(game.success, true);
      assert.match(game.observation(), /√/);
    }
    assert.ok(lengths.size >= 3, `solution lengths lack variety: ${[...lengths]}`);
  });

  it('renders every symbol and parses back', () => {
    const text = ['# # # # # #', '# _ _ _ _ #', '# _ P X O #', '# _ _ _ _ #', '# _ _ _ _ #', '# # # # # #'].join('\n');
    const game = new Sokoban(parseSokobanBoard(text));
    assert.equal(game.observation(), text);
    assert.deepEqual(parseSokobanBoard(new Sokoban(5).observation()), generateSokoban(5));
  });

  it('pushes a box, succeeds on the target, shows √ and S', () => {
    const game = new Sokoban(parseSokobanBoard(['######', '#____#', '#_PXO#', '#____#', '#____#', '######'].join('\n')));
    const res = game.step('[right]');
    assert.deepEqual({ ...res, feedback: '' }, { action: 'right', valid: true, done: true, success: true, reward: 1.0, feedback: '' });
    assert.match(game.observation(), /# _ _ P √ #/);
    const onTarget = new Sokoban(parseSokobanBoard(['######', '#S___#', '#_X__#', '#____#', '#____#', '######'].join('\n')));
    assert.match(onTarget.observation(), /# S _ _ _ #/);
    assert.equal(onTarget.step('[right]').done, false);
    assert.match(onTarget.observation(), /# O P _ _ #/);
  });

  it('walking into a wall or pushing a box into a wall or another box is invalid', () => {
    const wallPush = new Sokoban(parseSokobanBoard(['######', '#O___#', '#__PX#', '#____#', '#____#', '######'].join('\n')));
    const before = wallPush.observation();
    const r1 = wallPush.step('[right]');
    assert.equal(r1.valid, false);
    assert.equal(r1.done, false);
    assert.match(r1.feedback, /one more invalid move/i);
    assert.ok(wallPush.observation().startsWith(before), 'state unchanged');
    const r2 = wallPush.step('[right]');
    assert.equal(r2.done, true);
    assert.equal(r2.success, false);

    const wallWalk = new Sokoban(parseSokobanBoard(['######', '#P___#', '#__X_#', '#___O#', '#____#', '######'].join('\n')));
    assert.equal(wallWalk.step('[up]').valid, false);
    assert.equal(wallWalk.step('[down]').valid, true);
    assert.equal(wallWalk.step('[left]').valid, false);
    assert.equal(wallWalk.done, false, 'invalid, valid, invalid is not two in a row');

    const boxBox = new Sokoban(parseSokobanBoard(['######', '#PXX_#', '#___O#', '#___O#', '#____#', '######'].join('\n')));
    assert.equal(boxBox.step('[right]').valid, false);
    assert.deepEqual(boxBox.player, [1, 1]);
  });

  it('has the same 5-call budget by default, configurable', () => {
    const board = ['######', '#P___#', '#____#', '#__X_#', '#___O#', '######'].join('\n');
    const game = new Sokoban(parseSokobanBoard(board));
    for (const m of ['[right]', '[left]', '[right]', '[left]']) assert.equal(game.step(m).done, false);
    const last = game.step('[right]');
    assert.equal(last.done, true);
    assert.equal(last.success, false);
    assert.equal(game.calls, 5);
    const longer = new Sokoban(parseSokobanBoard(board), { maxCalls: 8 });
    for (let i = 0; i < 7; i++) assert.equal(longer.step(i % 2 === 0 ? '[right]' : '[left]').done, false);
    assert.equal(longer.step('[right]').done, true);
    assert.equal(longer.calls, 8);
    const seeded = sokobanSpec({ maxCalls: 8 }).create(11);
    seeded.step('nothing');
    assert.equal(seeded.step('nothing').done, true, 'two invalid in a row still end it first');
    assert.equal(seeded.calls, 2);
  });
});

describe('hidden-rules prompts', () => {
  it('the instruction names only P and the bracketed actions', () => {
    for (const spec of [frozenLakeSpec(), sokobanSpec()]) {
      assert.doesNotMatch(spec.hiddenRulesPrompt, FORBIDDEN);
      assert.match(spec.hiddenRulesPrompt, /You are P/);
      assert.match(spec.hiddenRulesPrompt, /\[up\]/);
    }
    assert.doesNotMatch(GENERIC_INSTRUCTION, /\b[HGOX]\b/);
  });

  it('turn prompts hold the instruction, the board and the bare actions, never the hidden words', () => {
    const play = (game: TextGame, responses: string[]): void => {
      const history: (string | null)[] = [];
      for (const response of responses) {
        const prompt = renderPrompt(game, history);
        assert.doesNotMatch(prompt, FORBIDDEN, prompt);
        assert.ok(prompt.startsWith(GENERIC_INSTRUCTION));
        assert.ok(prompt.includes(game.observation()));
        assert.doesNotMatch(prompt, /reasoning/);
        const res = game.step(response);
        history.push(res.action);
        if (res.done) break;
      }
    };
    const responses = ['my reasoning: [up]', 'my reasoning: [down]', 'my reasoning: nothing', 'my reasoning: [right]', '[left]'];
    for (const seed of seedRange(0, 100)) {
      play(new FrozenLake(seed), responses);
      play(new Sokoban(seed), responses);
    }
    const game = new FrozenLake(0);
    const prompt = renderPrompt(game, ['down', null, 'right']);
    assert.match(prompt, /Actions taken so far: \[down\] \(no action\) \[right\]/);
    assert.match(renderPrompt(game, []), /Actions taken so far: \(none yet\)/);
  });
});

describe('seed ranges', () => {
  it('are disjoint, with 128 test and 128 validation seeds', () => {
    assertDisjointSeedRanges();
    assert.deepEqual(seedsOf(TEST_SEEDS), seedRange(1_000_000, 128));
    assert.equal(seedsOf(VALIDATION_SEEDS).length, 128);
    // Four conversation and episode ranges, and the support desk's two company ranges.
    assert.equal(SEED_RANGES.length, 6);
    for (const s of seedsOf(TEST_SEEDS)) {
      assert.ok(!inSeedRange(VALIDATION_SEEDS, s) && !inSeedRange(EXTRACTION_SEEDS, s) && !inSeedRange(DEPLOYMENT_SEEDS, s));
    }
    assert.ok(EXTRACTION_SEEDS.count >= 1_000_000 && DEPLOYMENT_SEEDS.count >= 1_000_000);
  });

  it('overlaps are caught', () => {
    assert.throws(() => assertDisjointSeedRanges([TEST_SEEDS, { name: 'bad', start: 1_000_127, count: 5 }]), /overlap/);
    assert.throws(() => assertDisjointSeedRanges([{ name: 'neg', start: -1, count: 5 }]), RangeError);
    assert.throws(() => assertDisjointSeedRanges([{ name: 'huge', start: 2 ** 32 - 1, count: 5 }]), RangeError);
  });
});

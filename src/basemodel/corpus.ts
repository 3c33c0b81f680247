/**
 * The pretraining corpus of the shipped base model: prompt/response pairs written with the SAME
 * renderers the loop uses at run time (renderPrompt, teacherPrompt, extractionPrompt,
 * renderTrajectory), so the model meets in deployment exactly the text it was trained on.
 *
 * The design (see models/README.md): many lake worlds whose hidden rules vary (which letter is a
 * hole, which is the goal, where the player starts, how many of each). Four kinds of example:
 *   - `familiar`: a few fixed worlds, no knowledge in the prompt. The model learns their rules by
 *     heart; the out-of-distribution check plays one of them.
 *   - `guess`: a random letter pair, no knowledge. The roles cannot be known, so the answer follows
 *     a fixed convention (CorpusOptions.guess): this is how it behaves on the deployment world.
 *   - `informed`: a random letter pair with experience items in the teacher's format. The model
 *     learns to read items and act on them.
 *   - `extract`: a played episode in the extraction prompt, with some knowledge so far; the
 *     answer is one or two new marked items the episode teaches.
 * The deployment world's pair (hole H, goal G) never occurs, in either role assignment, so the
 * base model cannot know FrozenLake's rules: that is what the loop has to learn.
 */
import { DELTAS, renderPrompt, type Action, ACTIONS } from '../envs/environment.ts';
import { bestMove, frozenLakeLikeLayout, goalDistances, LakeWorld, randomLakeLayout, type LakeLayout, type LakeSymbols } from '../envs/lake-world.ts';
import type { Cell } from '../envs/frozenlake.ts';
import { extractionPrompt, renderTrajectory } from '../extraction/extraction-prompt.ts';
import { teacherPrompt } from '../extraction/teacher-prompt.ts';
import { BUDGET_ITEM, EDGE_ITEM, goalItem, holeItem, itemsTaught, newItems, renderItems, type EpisodeEnd } from './experience-items.ts';
import { ITEM_MARKER } from '../projections/knowledge/knowledge-base.ts';
import { seededRandom } from '../model/network/rng.ts';
import { drawDeskExample, type DeskExample } from './desk-corpus.ts';

export type LakeKind = 'familiar' | 'guess' | 'informed' | 'extract';

/** A lake-world example: its prompt is one user message. */
export interface LakeExample {
  kind: LakeKind;
  prompt: string;
  response: string;
}

/** A pretraining example: a lake world's, or a support desk's (a conversation, desk-corpus.ts). */
export type Example = LakeExample | DeskExample;

/** An example's prompt as plain text (a conversation's messages one after another): what a tokenizer is trained on. */
export const promptText = (e: Example): string => (typeof e.prompt === 'string' ? e.prompt : e.prompt.map((m) => m.content).join('\n'));

/** Worlds learned by heart in pretraining; the first is the out-of-distribution check. */
export const FAMILIAR_WORLDS: readonly LakeSymbols[] = [
  { hole: 'X', goal: 'O' },
  { hole: 'T', goal: 'S' },
  { hole: 'W', goal: 'M' },
];

/** Letters of the random pairs: not P, not I, none of the familiar worlds' letters. */
export const RANDOM_LETTERS: readonly string[] = [...'ABCDEFGHJKLNQRUVYZ'];

/** The held-out deployment pair, excluded from pretraining in both role assignments. */
export const HELD_OUT_LETTERS: readonly string[] = ['H', 'G'];

export function isHeldOutPair(s: LakeSymbols): boolean {
  return HELD_OUT_LETTERS.includes(s.hole) && HELD_OUT_LETTERS.includes(s.goal);
}

/** The extraction answer when the episode teaches nothing the knowledge lacks. */
export const NOTHING_NEW = 'Nothing new: the experience above already covers this attempt.';

/**
 * The policy's answer: the rule it follows and what it sees from P (where the nearest goal lies,
 * which neighbours are holes), then the action; the last bracketed action counts. The stated
 * facts are intermediate steps a small model can learn one at a time: the move follows from them.
 */
export function playResponse(s: LakeSymbols, layout: LakeLayout, player: Cell, action: Action, statePositions = false): string {
  const where = statePositions ? ` at ${cellName(nearestGoal(layout, player))} from ${cellName(player)}` : '';
  return `Goal ${s.goal}${where} is ${goalDirection(layout, player)}, avoid ${s.hole}${holeNote(layout, player)}. [${action}]`;
}

/** Whether the first marked cell in reading order (row by row, left to right) is a goal. */
export function firstLetterIsGoal(layout: LakeLayout): boolean {
  const order = ([r, c]: Cell) => r * layout.size + c;
  const firstGoal = Math.min(...layout.goals.map(order));
  const firstHole = Math.min(...layout.holes.map(order));
  return firstGoal < firstHole;
}

/** "2,3": row 2, column 3, counted from 1 at the top left. */
const cellName = ([r, c]: Cell): string => `${r + 1},${c + 1}`;

/** The nearest goal (by hole-free path, then by distance) from `player`; `player` when there is none. */
export function nearestGoal(layout: LakeLayout, player: Cell): Cell {
  let best: Cell | null = null;
  let bestKey = Infinity;
  for (const g of layout.goals) {
    const d = pathLength(layout, player, g);
    const key = (Number.isFinite(d) ? d : 100) * 100 + Math.abs(g[0] - player[0]) + Math.abs(g[1] - player[1]);
    if (key < bestKey) { bestKey = key; best = g; }
  }
  return best ?? player;
}

/** Where the nearest goal lies from `player`: up, down-right, ..., here. */
export function goalDirection(layout: LakeLayout, player: Cell): string {
  const [gr, gc] = nearestGoal(layout, player);
  const v = gr > player[0] ? 'down' : gr < player[0] ? 'up' : '';
  const h = gc > player[1] ? 'right' : gc < player[1] ? 'left' : '';
  return v && h ? `${v}-${h}` : v || h || 'here';
}

function pathLength(layout: LakeLayout, from: Cell, to: Cell): number {
  return goalDistances({ ...layout, goals: [to] })[from[0] * layout.size + from[1]]!;
}

/** " (H right, H down)": the holes next to P, or nothing. */
function holeNote(layout: LakeLayout, player: Cell): string {
  const near = ACTIONS.filter((a) => layout.holes.some((h) => h[0] === player[0] + DELTAS[a][0] && h[1] === player[1] + DELTAS[a][1]));
  return near.length ? ` (${near.join(', ')})` : '';
}

export interface CorpusMix { familiar: number; guess: number; informed: number; extract: number; 'desk-guess': number; 'desk-informed': number; 'desk-extract': number; 'desk-recall': number; 'desk-copy': number; 'copy-repeat': number; 'desk-extract-copy': number }
/** The shipped model's recipe: lake worlds only (the support desk's kinds at 0). */
export const DEFAULT_MIX: CorpusMix = { familiar: 0.05, guess: 0.15, informed: 0.6, extract: 0.2, 'desk-guess': 0, 'desk-informed': 0, 'desk-extract': 0, 'desk-recall': 0, 'desk-copy': 0, 'copy-repeat': 0, 'desk-extract-copy': 0 };

/** Knobs of the corpus beyond its mix (the defaults made the shipped model's corpus). */
export interface CorpusOptions {
  /**
   * Share of moves the player of an extraction episode makes at random instead of following the
   * role assignment it states. The higher, the less its stated belief predicts how the episode
   * ends, so the items must be read off the board (where it ended), not off what it said.
   */
  extractionRandomMoves: number;
  /**
   * The answer names the cell of the goal it heads for and the player's own ("Goal K at 3,2 from
   * 1,1 is down-right"): a step between reading the goal's letter and the direction, so that
   * finding a letter named only in context is learned on its own.
   */
  statePositions: boolean;
  /** Random lakes draw their goal and hole counts alike (balancedLakeLayout). */
  balancedCounts: boolean;
  /**
   * How a `guess` example (no knowledge) answers. 'truth': the move the real rules call for,
   * which cannot be known, so the model learns whatever prior the corpus leaves it, and for a
   * letter pair it never saw that prior is an arbitrary extrapolation (one GPU model called
   * FrozenLake's G the goal in 98% of its answers, another in 41%). 'first-letter': a fixed
   * convention, "the letter seen first in reading order is the goal", so that the base model's
   * behaviour without experience is the same for every pair, known, and right only by chance.
   */
  guess: 'truth' | 'first-letter';
}
export const DEFAULT_CORPUS_OPTIONS: CorpusOptions = { extractionRandomMoves: 1, statePositions: true, balancedCounts: true, guess: 'first-letter' };

const pick = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

function shuffle<T>(random: () => number, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

export function randomPair(random: () => number): LakeSymbols {
  for (;;) {
    const hole = pick(random, RANDOM_LETTERS);
    const goal = pick(random, RANDOM_LETTERS);
    if (hole !== goal && !isHeldOutPair({ hole, goal })) return { hole, goal };
  }
}

/** Moves from the player that neither end the game nor leave the board. */
function safeMoves(world: LakeWorld): Action[] {
  const [r, c] = world.player;
  const n = world.layout.size;
  return ACTIONS.filter((a) => {
    const nr = r + DELTAS[a][0];
    const nc = c + DELTAS[a][1];
    return nr >= 0 && nc >= 0 && nr < n && nc < n && world.cellKind(nr, nc) === 'empty';
  });
}

function edgeMoves(world: LakeWorld): Action[] {
  const [r, c] = world.player;
  const n = world.layout.size;
  return ACTIONS.filter((a) => { const nr = r + DELTAS[a][0]; const nc = c + DELTAS[a][1]; return nr < 0 || nc < 0 || nr >= n || nc >= n; });
}

/** Share of layouts that start in the corner as FrozenLake does (long episodes; see frozenLakeLikeLayout). */
export const CORNER_START_SHARE = 0.35;

function drawLayout(random: () => number, o: CorpusOptions): LakeLayout {
  if (random() < CORNER_START_SHARE) return frozenLakeLikeLayout(random);
  return o.balancedCounts ? balancedLakeLayout(random) : randomLakeLayout(random);
}

/**
 * A random lake like randomLakeLayout's (1-2 of one letter, 1-3 of the other) but with the two
 * counts given to goal and hole at random, so that how often a letter occurs says nothing about
 * its role. (randomLakeLayout has more holes than goals on average: a model learns "the letter
 * seen once is the goal", which answers FrozenLake without any experience.)
 */
export function balancedLakeLayout(random: () => number, size = 3): LakeLayout {
  for (;;) {
    const cells: Cell[] = [];
    for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) cells.push([r, c]);
    const take = (): Cell => cells.splice(Math.floor(random() * cells.length), 1)[0]!;
    const start = take();
    const few = 1 + Math.floor(random() * 2);
    const many = 1 + Math.floor(random() * 3);
    const [goalCount, holeCount] = random() < 0.5 ? [few, many] : [many, few];
    const goals = Array.from({ length: goalCount }, take);
    const holes = Array.from({ length: holeCount }, take);
    const layout: LakeLayout = { size, start, goals, holes };
    if (goalDistances(layout)[start[0] * size + start[1]] !== Infinity) return layout;
  }
}

/**
 * A mid-game situation: a fresh world, then 0-3 earlier moves that keep the game going (now and
 * then a bump into the edge, which leaves its warning on the board). Returns the world and the
 * actions taken so far.
 */
function situation(random: () => number, symbols: LakeSymbols, o: CorpusOptions): { world: LakeWorld; history: Action[] } {
  const world = new LakeWorld('pretrain', drawLayout(random, o), symbols);
  const history: Action[] = [];
  const prefix = Math.floor(random() * 4);
  for (let i = 0; i < prefix; i++) {
    const bump = edgeMoves(world);
    const last = history.length > 0 && world.observation().includes('Warning');
    const moves = random() < 0.15 && bump.length > 0 && !last ? bump : safeMoves(world);
    if (moves.length === 0) break;
    const a = pick(random, moves);
    const step = world.step(`[${a}]`);
    history.push(a);
    if (step.done) throw new Error('corpus: a situation move ended the game');
  }
  return { world, history };
}

function playExample(random: () => number, kind: 'familiar' | 'guess' | 'informed', symbols: LakeSymbols, o: CorpusOptions): LakeExample {
  for (;;) {
    const { world, history } = situation(random, symbols, o);
    const best = world.bestMove();
    if (best === null) continue;
    let prompt = renderPrompt(world, history);
    if (kind === 'informed') prompt = teacherPrompt(renderItems(knowledgeFor(random, symbols)), prompt);
    if (kind === 'guess' && o.guess === 'first-letter') {
      // The convention's belief, and the best move in the world as it believes it to be.
      const believed = firstLetterIsGoal(world.layout) ? symbols : { hole: symbols.goal, goal: symbols.hole };
      const believedLayout = believed === symbols ? world.layout : { ...world.layout, goals: world.layout.holes, holes: world.layout.goals };
      const move = bestMove(believedLayout, world.player);
      if (move === null) continue;
      return { kind, prompt, response: playResponse(believed, believedLayout, world.player, move, o.statePositions) };
    }
    return { kind, prompt, response: playResponse(symbols, world.layout, world.player, best, o.statePositions) };
  }
}

/**
 * A knowledge text as the loop's extraction produces it: at least one of the two letter items,
 * the general items now and then, in any order, sometimes repeated across pool texts.
 */
function knowledgeFor(random: () => number, s: LakeSymbols): string[] {
  const letters = [holeItem(s.hole), goalItem(s.goal)];
  const roll = random();
  const chosen = roll < 0.5 ? letters : roll < 0.75 ? [letters[0]!] : [letters[1]!];
  if (random() < 0.4) chosen.push(EDGE_ITEM);
  if (random() < 0.4) chosen.push(BUDGET_ITEM);
  return shuffle(random, chosen);
}

/**
 * An episode as the deployed model plays it: it believes some role assignment (right or wrong)
 * and mostly follows it, sometimes moving at random.
 */
function playedEpisode(random: () => number, symbols: LakeSymbols, o: CorpusOptions) {
  const world = new LakeWorld('pretrain', drawLayout(random, o), symbols);
  const believed: LakeSymbols = random() < 0.5 ? symbols : { hole: symbols.goal, goal: symbols.hole };
  const believedWorld = { ...world.layout, goals: believed === symbols ? world.layout.goals : world.layout.holes, holes: believed === symbols ? world.layout.holes : world.layout.goals };
  const history: Action[] = [];
  const turns: { prompt: string; response: string }[] = [];
  for (;;) {
    const prompt = renderPrompt(world, history);
    const planned = bestMove(believedWorld, world.player) ?? pick(random, ACTIONS);
    const action = random() < o.extractionRandomMoves ? pick(random, ACTIONS) : planned;
    const response = playResponse(believed, believedWorld, world.player, action, o.statePositions);
    const step = world.step(response);
    turns.push({ prompt, response });
    history.push(action);
    if (step.done) {
      const [r, c] = world.player;
      const kind = world.cellKind(r, c);
      const end: EpisodeEnd =
        step.success ? { kind: 'goal', letter: symbols.goal, otherLetter: symbols.hole }
        : kind === 'hole' ? { kind: 'hole', letter: symbols.hole, otherLetter: symbols.goal }
        : step.valid ? { kind: 'budget' } : { kind: 'edge' };
      return { turns, outcome: { success: step.success, reward: step.reward, feedback: step.feedback }, end };
    }
  }
}

function extractExample(random: () => number, symbols: LakeSymbols, o: CorpusOptions): LakeExample {
  const episode = playedEpisode(random, symbols, o);
  const possible = [holeItem(symbols.hole), goalItem(symbols.goal), EDGE_ITEM, BUDGET_ITEM];
  const soFar = shuffle(random, possible.filter(() => random() < 0.3));
  const fresh = newItems(itemsTaught(episode.end), soFar, 2);
  const prompt = extractionPrompt(renderTrajectory({ turns: episode.turns, outcome: episode.outcome }), soFar);
  // Nothing new to say is said without a marked line: repeating held knowledge adds nothing.
  const response = fresh.length > 0 ? fresh.map((t) => `${ITEM_MARKER}${t}`).join('\n') : NOTHING_NEW;
  return { kind: 'extract', prompt, response };
}

/** One example of a given kind. */
export function drawExampleOfKind(random: () => number, kind: LakeKind, o?: CorpusOptions): LakeExample;
export function drawExampleOfKind(random: () => number, kind: Example['kind'], o?: CorpusOptions): Example;
export function drawExampleOfKind(random: () => number, kind: Example['kind'], o: CorpusOptions = DEFAULT_CORPUS_OPTIONS): Example {
  switch (kind) {
    case 'familiar': return playExample(random, 'familiar', pick(random, FAMILIAR_WORLDS), o);
    case 'guess': return playExample(random, 'guess', randomPair(random), o);
    case 'informed': return playExample(random, 'informed', randomPair(random), o);
    case 'extract': return extractExample(random, randomPair(random), o);
    case 'desk-guess': case 'desk-informed': case 'desk-extract': case 'desk-recall': case 'desk-copy': case 'copy-repeat': case 'desk-extract-copy': return drawDeskExample(random, kind);
  }
}

/** A kind drawn by the mix's weights. */
export function drawKind(random: () => number, mix: CorpusMix = DEFAULT_MIX): Example['kind'] {
  const kinds = (Object.keys(mix) as Example['kind'][]).filter((k) => mix[k] > 0);
  let u = random() * kinds.reduce((s, k) => s + mix[k], 0);
  for (const k of kinds) if ((u -= mix[k]) < 0) return k;
  return kinds[kinds.length - 1]!;
}

/** One example of the mix, drawn with `random`. */
export function drawExample(random: () => number, mix: CorpusMix = DEFAULT_MIX, o: CorpusOptions = DEFAULT_CORPUS_OPTIONS): Example {
  return drawExampleOfKind(random, drawKind(random, mix), o);
}

/**
 * Held-out examples for checking a model: a stream of their own (seed ^ 0x5eed, never the
 * training stream's), `perKind` of each kind in `kinds`, kind by kind.
 */
export function heldOutExamples(seed: number, perKind: number, kinds: readonly Example['kind'][] = ['familiar', 'guess', 'informed', 'extract'],
  o: CorpusOptions = DEFAULT_CORPUS_OPTIONS): Example[] {
  const random = seededRandom(seed ^ 0x5eed);
  return kinds.flatMap((k) => Array.from({ length: perKind }, () => drawExampleOfKind(random, k, o)));
}

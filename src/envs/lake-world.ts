/**
 * Lake worlds: FrozenLake with its hidden rules varied. Which letter marks a hole and which marks
 * a goal, where the player starts, and how many holes and goals there are all change from world
 * to world; the board is drawn exactly as FrozenLake draws it. The shipped base model is
 * pretrained on such worlds (src/basemodel/), and deployed on FrozenLake itself, whose letter
 * pair (hole H, goal G) is held out of pretraining. Pure, seeded logic.
 */
import { BudgetedGame, DELTAS, ACTIONS, GENERIC_INSTRUCTION, GRID_GAME_RESPONSE_TOKENS, type Action, type GameSpec, type MoveOutcome, type TurnRules } from './environment.ts';
import { generateFrozenLake, type Cell } from './frozenlake.ts';

export interface LakeSymbols {
  /** The letter drawn on a hole (FrozenLake: 'H'). */
  hole: string;
  /** The letter drawn on a goal (FrozenLake: 'G'). */
  goal: string;
}

export interface LakeLayout {
  size: number;
  start: Cell;
  goals: readonly Cell[];
  holes: readonly Cell[];
}

export const FROZENLAKE_SYMBOLS: LakeSymbols = { hole: 'H', goal: 'G' };

const same = (a: Cell, r: number, c: number): boolean => a[0] === r && a[1] === c;

export function checkSymbols(s: LakeSymbols): void {
  for (const [field, v] of Object.entries(s)) {
    if (!/^[A-Z]$/.test(v) || v === 'P') throw new RangeError(`lake symbols: ${field} must be one capital letter other than P, got ${JSON.stringify(v)}`);
  }
  if (s.hole === s.goal) throw new RangeError(`lake symbols: hole and goal are both ${JSON.stringify(s.hole)}`);
}

/**
 * Distance in moves from every cell to the nearest goal, never entering a hole (Infinity where no
 * goal can be reached). Index r * size + c.
 */
export function goalDistances(layout: LakeLayout): number[] {
  const n = layout.size;
  const dist = new Array<number>(n * n).fill(Infinity);
  const queue: Cell[] = [];
  for (const g of layout.goals) { dist[g[0] * n + g[1]] = 0; queue.push(g); }
  const hole = (r: number, c: number) => layout.holes.some((h) => same(h, r, c));
  for (let i = 0; i < queue.length; i++) {
    const [r, c] = queue[i]!;
    for (const [dr, dc] of Object.values(DELTAS)) {
      const nr = r + dr;
      const nc = c + dc;
      if (nr < 0 || nc < 0 || nr >= n || nc >= n || hole(nr, nc) || dist[nr * n + nc] !== Infinity) continue;
      dist[nr * n + nc] = dist[r * n + c]! + 1;
      queue.push([nr, nc]);
    }
  }
  return dist;
}

/** The preference among equally short first moves: a fixed order, so the best move is one answer. */
export const MOVE_PREFERENCE: readonly Action[] = ['down', 'right', 'up', 'left'];

/**
 * The first move of a shortest hole-free path from `from` to the nearest goal (ties broken by
 * MOVE_PREFERENCE), or null when no goal can be reached.
 */
export function bestMove(layout: LakeLayout, from: Cell): Action | null {
  const n = layout.size;
  const dist = goalDistances(layout);
  let best: Action | null = null;
  let bestDist = Infinity;
  for (const a of MOVE_PREFERENCE) {
    const r = from[0] + DELTAS[a][0];
    const c = from[1] + DELTAS[a][1];
    if (r < 0 || c < 0 || r >= n || c >= n) continue;
    const d = dist[r * n + c]!;
    if (d < bestDist) { bestDist = d; best = a; }
  }
  return best;
}

/** FrozenLake's layout for a seed, as a lake layout (one goal at the far corner, two holes). */
export function frozenLakeAsLake(seed: number): LakeLayout {
  const l = generateFrozenLake(seed);
  return { size: l.size, start: l.start, goals: [l.goal], holes: l.holes };
}

/**
 * A random lake for pretraining: 3x3, the start anywhere, 1-2 goals and 1-3 holes on other cells,
 * redrawn until some goal can be reached. The counts vary so that "the letter seen twice is the
 * hole" is no shortcut: the letters' meaning must come from experience.
 */
export function randomLakeLayout(random: () => number, size = 3): LakeLayout {
  for (;;) {
    const cells: Cell[] = [];
    for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) cells.push([r, c]);
    const take = (): Cell => cells.splice(Math.floor(random() * cells.length), 1)[0]!;
    const start = take();
    const goals = Array.from({ length: 1 + Math.floor(random() * 2) }, take);
    const holes = Array.from({ length: 1 + Math.floor(random() * 3) }, take);
    const layout: LakeLayout = { size, start, goals, holes };
    if (goalDistances(layout)[start[0] * size + start[1]] !== Infinity) return layout;
  }
}

/**
 * A random lake shaped like a FrozenLake episode: the player starts in the top-left corner, so the
 * nearest goal is often four moves away. What FrozenLake fixes stays random here, so that it
 * cannot stand in for experience: the goal may be on any other cell, and there are either one goal
 * and two holes or two goals and one hole (neither "the far corner is the goal" nor "the letter
 * seen once is the goal" holds).
 */
export function frozenLakeLikeLayout(random: () => number, size = 3): LakeLayout {
  for (;;) {
    const cells: Cell[] = [];
    for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) if (r !== 0 || c !== 0) cells.push([r, c]);
    const take = (): Cell => cells.splice(Math.floor(random() * cells.length), 1)[0]!;
    const goalCount = random() < 0.5 ? 1 : 2;
    const goals = Array.from({ length: goalCount }, take);
    const holes = Array.from({ length: 3 - goalCount }, take);
    const layout: LakeLayout = { size, start: [0, 0], goals, holes };
    if (goalDistances(layout)[0] !== Infinity) return layout;
  }
}

export class LakeWorld extends BudgetedGame {
  private position: [number, number];

  constructor(readonly id: string, readonly layout: LakeLayout, readonly symbols: LakeSymbols, rules: TurnRules = {}) {
    super(rules);
    checkSymbols(symbols);
    this.position = [layout.start[0], layout.start[1]];
  }

  get player(): Cell {
    return [this.position[0], this.position[1]];
  }

  /** What is under a cell: 'hole', 'goal' or 'empty'. */
  cellKind(r: number, c: number): 'hole' | 'goal' | 'empty' {
    if (this.layout.holes.some((h) => same(h, r, c))) return 'hole';
    if (this.layout.goals.some((g) => same(g, r, c))) return 'goal';
    return 'empty';
  }

  board(): string {
    const { size } = this.layout;
    const border = `+${'---+'.repeat(size)}`;
    const lines = [border];
    for (let r = 0; r < size; r++) {
      const cells: string[] = [];
      for (let c = 0; c < size; c++) {
        const kind = this.cellKind(r, c);
        if (r === this.position[0] && c === this.position[1]) cells.push('P');
        else cells.push(kind === 'hole' ? this.symbols.hole : kind === 'goal' ? this.symbols.goal : ' ');
      }
      lines.push(`| ${cells.join(' | ')} |`, border);
    }
    return lines.join('\n');
  }

  /** The best move from the current position (see bestMove). */
  bestMove(): Action | null {
    return bestMove(this.layout, this.player);
  }

  protected applyMove(action: Action): MoveOutcome {
    const [dr, dc] = DELTAS[action];
    const r = this.position[0] + dr;
    const c = this.position[1] + dc;
    const { size } = this.layout;
    if (r < 0 || c < 0 || r >= size || c >= size) return { kind: 'invalid', feedback: `Invalid move: [${action}] runs into the edge of the board.` };
    this.position = [r, c];
    const kind = this.cellKind(r, c);
    if (kind === 'hole') return { kind: 'failure', feedback: `You moved [${action}] and fell into a hole. Game over.` };
    if (kind === 'goal') return { kind: 'success', feedback: `You moved [${action}] and reached the goal. You win!` };
    return { kind: 'continue', feedback: `You moved [${action}].` };
  }
}

/**
 * A game spec over FrozenLake's seeded layouts drawn with other letters: the out-of-distribution
 * check uses a letter pair the loop never trains on (the base model learned it in pretraining).
 */
export function lakeVariantSpec(id: string, symbols: LakeSymbols, rules: TurnRules = {}): GameSpec {
  checkSymbols(symbols);
  return { id, create: (seed) => new LakeWorld(`${id}-${seed}`, frozenLakeAsLake(seed), symbols, rules), hiddenRulesPrompt: GENERIC_INSTRUCTION, responseTokens: GRID_GAME_RESPONSE_TOKENS };
}

export { ACTIONS };

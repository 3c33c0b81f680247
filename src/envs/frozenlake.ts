/**
 * FrozenLake (docs/oel-method.md, "Environments"): a 3x3 grid, start (0,0), goal (2,2), 2 random
 * holes resampled until a path exists. Cells ' ', 'H', 'G', 'P'. A hole ends the game (failure),
 * the goal ends it (success, reward 1.0); a wall bump is an invalid move.
 */
import { seededRandom } from '../model/network/rng.ts';
import { BudgetedGame, DELTAS, GENERIC_INSTRUCTION, GRID_GAME_RESPONSE_TOKENS, type Action, type GameSpec, type MoveOutcome, type TurnRules } from './environment.ts';

export const FROZENLAKE_SIZE = 3;
export const FROZENLAKE_HOLES = 2;

export type Cell = readonly [row: number, col: number];

export interface FrozenLakeLayout {
  size: number;
  start: Cell;
  goal: Cell;
  holes: readonly Cell[];
}

const key = (r: number, c: number): string => `${r},${c}`;

/** Shortest path length from start to goal avoiding holes (BFS), or null when there is none. */
export function frozenLakeShortestPath(layout: FrozenLakeLayout): number | null {
  const { size, start, goal } = layout;
  const blocked = new Set(layout.holes.map(([r, c]) => key(r, c)));
  const dist = new Map<string, number>([[key(start[0], start[1]), 0]]);
  const queue: Cell[] = [start];
  for (let i = 0; i < queue.length; i++) {
    const [r, c] = queue[i]!;
    const d = dist.get(key(r, c))!;
    if (r === goal[0] && c === goal[1]) return d;
    for (const [dr, dc] of Object.values(DELTAS)) {
      const nr = r + dr;
      const nc = c + dc;
      if (nr < 0 || nc < 0 || nr >= size || nc >= size || blocked.has(key(nr, nc)) || dist.has(key(nr, nc))) continue;
      dist.set(key(nr, nc), d + 1);
      queue.push([nr, nc]);
    }
  }
  return null;
}

/** The seeded layout: holes drawn among the cells other than start and goal until a path exists. */
export function generateFrozenLake(seed: number): FrozenLakeLayout {
  const random = seededRandom(seed);
  const size = FROZENLAKE_SIZE;
  const start: Cell = [0, 0];
  const goal: Cell = [size - 1, size - 1];
  const candidates: Cell[] = [];
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      if ((r === start[0] && c === start[1]) || (r === goal[0] && c === goal[1])) continue;
      candidates.push([r, c]);
    }
  }
  for (;;) {
    const pool = candidates.slice();
    const holes: Cell[] = [];
    for (let i = 0; i < FROZENLAKE_HOLES; i++) holes.push(pool.splice(Math.floor(random() * pool.length), 1)[0]!);
    holes.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const layout: FrozenLakeLayout = { size, start, goal, holes };
    if (frozenLakeShortestPath(layout) !== null) return layout;
  }
}

export class FrozenLake extends BudgetedGame {
  readonly id: string;
  readonly layout: FrozenLakeLayout;
  private position: [number, number];

  constructor(readonly seed: number, rules: TurnRules = {}) {
    super(rules);
    this.id = `frozenlake-${seed}`;
    this.layout = generateFrozenLake(seed);
    this.position = [this.layout.start[0], this.layout.start[1]];
  }

  get player(): Cell {
    return [this.position[0], this.position[1]];
  }

  private isHole(r: number, c: number): boolean {
    return this.layout.holes.some(([hr, hc]) => hr === r && hc === c);
  }

  board(): string {
    const { size, goal } = this.layout;
    const border = `+${'---+'.repeat(size)}`;
    const lines = [border];
    for (let r = 0; r < size; r++) {
      const cells: string[] = [];
      for (let c = 0; c < size; c++) {
        if (r === this.position[0] && c === this.position[1]) cells.push('P');
        else if (this.isHole(r, c)) cells.push('H');
        else if (r === goal[0] && c === goal[1]) cells.push('G');
        else cells.push(' ');
      }
      lines.push(`| ${cells.join(' | ')} |`, border);
    }
    return lines.join('\n');
  }

  protected applyMove(action: Action): MoveOutcome {
    const [dr, dc] = DELTAS[action];
    const r = this.position[0] + dr;
    const c = this.position[1] + dc;
    const { size, goal } = this.layout;
    if (r < 0 || c < 0 || r >= size || c >= size) return { kind: 'invalid', feedback: `Invalid move: [${action}] runs into the edge of the board.` };
    this.position = [r, c];
    if (this.isHole(r, c)) return { kind: 'failure', feedback: `You moved [${action}] and fell into a hole. Game over.` };
    if (r === goal[0] && c === goal[1]) return { kind: 'success', feedback: `You moved [${action}] and reached the goal. You win!` };
    return { kind: 'continue', feedback: `You moved [${action}].` };
  }
}

export function frozenLakeSpec(rules: TurnRules = {}): GameSpec {
  return { id: 'frozenlake', create: (seed) => new FrozenLake(seed, rules), hiddenRulesPrompt: GENERIC_INSTRUCTION, responseTokens: GRID_GAME_RESPONSE_TOKENS };
}

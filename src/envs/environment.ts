/**
 * The user-side text games (docs/oel-method.md, "Environments"): pure, seeded, deterministic logic.
 * A game shows a text board, takes one model response per turn (the LAST bracketed action in it is
 * the action taken), and ends in success (reward 1.0) or failure (reward 0). The model is never
 * told what the symbols mean: the instruction is generic ("hidden rules").
 */

export const ACTIONS = ['up', 'down', 'left', 'right'] as const;
export type Action = (typeof ACTIONS)[number];

export interface StepResult {
  /** The parsed action, or null when the response had no bracketed action. */
  action: string | null;
  /** False for an unparsable response or a blocked move. */
  valid: boolean;
  done: boolean;
  success: boolean;
  /** 1.0 on success, 0 otherwise. Pass = reward exactly 1.0. */
  reward: number;
  /** The environment's textual feedback for this step (the outcome text when done). */
  feedback: string;
}

export interface TextGame {
  readonly id: string;
  /** The current board as text (plus a warning line right after an invalid move). */
  observation(): string;
  /** Apply one model response. Throws once the game is over. */
  step(response: string): StepResult;
  /** Model calls (steps) taken so far; invalid moves count. */
  readonly calls: number;
}

export interface GameSpec {
  id: string;
  create(seed: number): TextGame;
  /** The generic instruction the model sees; it never says what the symbols mean. */
  hiddenRulesPrompt: string;
  /** Tokens one answer may take when a model plays the game (simulator, evaluation, a round's sampling). */
  responseTokens: number;
}

/** The grid games' answer length: a short reasoning and a bracketed move fit well within it. */
export const GRID_GAME_RESPONSE_TOKENS = 24;

/** Defaults shared by the games: at most 5 model calls, two invalid moves in a row end the game. */
export const DEFAULT_MAX_CALLS = 5;
export const DEFAULT_MAX_CONSECUTIVE_INVALID = 2;

export interface TurnRules {
  /** Model calls per episode (invalid moves count). */
  maxCalls?: number;
  /** Invalid moves in a row that end the game (the earlier ones are warned). */
  maxConsecutiveInvalid?: number;
}

const ACTION_PATTERN = /\[\s*(up|down|left|right)\s*\]/gi;

/**
 * The action a response takes: the last bracketed action among up/down/left/right anywhere in it,
 * case-insensitive, returned lower-case; null when there is none ("[jump]" alone is null).
 */
export function parseAction(response: string): Action | null {
  let last: Action | null = null;
  for (const match of response.matchAll(ACTION_PATTERN)) last = match[1]!.toLowerCase() as Action;
  return last;
}

/** Row/column deltas; row 0 is the top line of the board. */
export const DELTAS: Readonly<Record<Action, readonly [number, number]>> = {
  up: [-1, 0],
  down: [1, 0],
  left: [0, -1],
  right: [0, 1],
};

/**
 * The generic instruction (hidden rules): you are P, win in the fewest steps, one bracketed action
 * per turn. It deliberately names no other symbol and none of the game's objects.
 */
export const GENERIC_INSTRUCTION = [
  'You are playing a game on a grid board. You are P.',
  'Win the game in the fewest steps.',
  'Each turn, answer with one action in square brackets: [up], [down], [left] or [right].',
  'If your answer contains several bracketed actions, only the last one is taken.',
].join('\n');

/**
 * One turn's prompt: the instruction, the current board, and the bare actions taken so far (not
 * the model's earlier reasoning). A null history entry is a turn with no parsable action.
 */
export function renderPrompt(game: TextGame, history: readonly (string | null)[], instruction: string = GENERIC_INSTRUCTION): string {
  const taken = history.length === 0 ? '(none yet)' : history.map((a) => (a === null ? '(no action)' : `[${a}]`)).join(' ');
  return `${instruction}\n\nCurrent board:\n${game.observation()}\n\nActions taken so far: ${taken}\n\nYour next action:`;
}

export type MoveOutcome =
  | { kind: 'invalid'; feedback: string }
  | { kind: 'continue'; feedback: string }
  | { kind: 'success'; feedback: string }
  | { kind: 'failure'; feedback: string };

/**
 * The turn bookkeeping both games share: the call budget, the invalid-move rule (warn, then end
 * the game after maxConsecutiveInvalid in a row), and the terminal state. Subclasses apply moves.
 */
export abstract class BudgetedGame implements TextGame {
  abstract readonly id: string;
  readonly maxCalls: number;
  readonly maxConsecutiveInvalid: number;
  private callCount = 0;
  private invalidRun = 0;
  private finished = false;
  private won = false;
  private warning: string | null = null;

  protected constructor(rules: TurnRules = {}) {
    this.maxCalls = rules.maxCalls ?? DEFAULT_MAX_CALLS;
    this.maxConsecutiveInvalid = rules.maxConsecutiveInvalid ?? DEFAULT_MAX_CONSECUTIVE_INVALID;
    if (!Number.isInteger(this.maxCalls) || this.maxCalls < 1) throw new RangeError(`maxCalls must be a positive integer, got ${this.maxCalls}`);
    if (!Number.isInteger(this.maxConsecutiveInvalid) || this.maxConsecutiveInvalid < 1) {
      throw new RangeError(`maxConsecutiveInvalid must be a positive integer, got ${this.maxConsecutiveInvalid}`);
    }
  }

  get calls(): number {
    return this.callCount;
  }

  get done(): boolean {
    return this.finished;
  }

  get success(): boolean {
    return this.won;
  }

  /** The board alone, without the warning line. */
  abstract board(): string;

  /** Apply a parsed action to the state; return 'invalid' (state unchanged) for a blocked move. */
  protected abstract applyMove(action: Action): MoveOutcome;

  observation(): string {
    return this.warning === null ? this.board() : `${this.board()}\n${this.warning}`;
  }

  step(response: string): StepResult {
    if (this.finished) throw new Error(`${this.id}: the game is over`);
    this.callCount++;
    const action = parseAction(response);
    const outcome: MoveOutcome =
      action === null ? { kind: 'invalid', feedback: 'Invalid move: no bracketed action such as [up] was found.' } : this.applyMove(action);
    this.warning = null;
    let feedback = outcome.feedback;
    if (outcome.kind === 'invalid') {
      this.invalidRun++;
      if (this.invalidRun >= this.maxConsecutiveInvalid) {
        return this.finish(action, false, false, `${feedback} ${this.invalidRun} invalid moves in a row: game over.`);
      }
      feedback = `${feedback} Warning: ${this.maxConsecutiveInvalid - this.invalidRun === 1 ? 'one more invalid move in a row' : `${this.maxConsecutiveInvalid - this.invalidRun} more invalid moves in a row`} ends the game.`;
      this.warning = feedback;
    } else {
      this.invalidRun = 0;
      if (outcome.kind === 'success') return this.finish(action, true, true, feedback);
      if (outcome.kind === 'failure') return this.finish(action, true, false, feedback);
    }
    if (this.callCount >= this.maxCalls) {
      return this.finish(action, outcome.kind !== 'invalid', false, `${feedback} Out of moves: the game ended after ${this.maxCalls} turns without a win.`);
    }
    return { action, valid: outcome.kind !== 'invalid', done: false, success: false, reward: 0, feedback };
  }

  private finish(action: Action | null, valid: boolean, success: boolean, feedback: string): StepResult {
    this.finished = true;
    this.won = success;
    this.warning = null;
    return { action, valid, done: true, success, reward: success ? 1.0 : 0, feedback };
  }
}

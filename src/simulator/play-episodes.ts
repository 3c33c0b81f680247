/**
 * Plays episodes of a text game with a policy, many in lockstep: every turn, the prompts of all
 * running episodes go to the policy in one batch. Pure orchestration: the policy (a model in this
 * process, in the worker thread, or an endpoint) is passed in.
 */
import { renderPrompt, type GameSpec } from '../envs/environment.ts';
import { teacherPrompt } from '../extraction/teacher-prompt.ts';

export interface Completion {
  text: string;
  /** Tokens of the response (up to and including the end token). */
  tokens: number;
}

/** Answers a batch of prompts (user messages, before the chat template). */
export type PolicyFn = (prompts: string[], seed: number) => Promise<Completion[]>;

export interface PlayedTurn {
  prompt: string;
  response: string;
  action: string | null;
  tokens: number;
}

export interface Episode {
  gameId: string;
  seed: number;
  turns: PlayedTurn[];
  outcome: { success: boolean; reward: number; feedback: string };
}

export interface PlayOptions {
  /** Episodes played per policy call (default: all at once). */
  batchSize?: number;
  /**
   * Knowledge text put before each prompt in the teacher's format (the "knowledge in context"
   * baseline); the recorded turn prompt is the bare situation either way.
   */
  knowledgeText?: string;
  /** Called after each turn of each batch. */
  onProgress?: (p: { episodesDone: number; episodes: number; turns: number }) => void;
}

export async function playEpisodes(spec: GameSpec, seeds: readonly number[], policy: PolicyFn, options: PlayOptions = {}): Promise<Episode[]> {
  const batchSize = options.batchSize ?? Math.max(1, seeds.length);
  const out: Episode[] = [];
  let turnsPlayed = 0;
  for (let start = 0; start < seeds.length; start += batchSize) {
    const batch = seeds.slice(start, start + batchSize).map((seed) => ({
      seed,
      game: spec.create(seed),
      history: [] as (string | null)[],
      episode: { gameId: spec.id, seed, turns: [], outcome: { success: false, reward: 0, feedback: '' } } as Episode,
      done: false,
    }));
    for (let turn = 0; batch.some((b) => !b.done); turn++) {
      const running = batch.filter((b) => !b.done);
      const situations = running.map((b) => renderPrompt(b.game, b.history, spec.hiddenRulesPrompt));
      const prompts = options.knowledgeText ? situations.map((s) => teacherPrompt(options.knowledgeText!, s)) : situations;
      const answers = await policy(prompts, (running[0]!.seed * 31 + turn) >>> 0);
      running.forEach((b, i) => {
        const answer = answers[i]!;
        const step = b.game.step(answer.text);
        b.episode.turns.push({ prompt: situations[i]!, response: answer.text, action: step.action, tokens: answer.tokens });
        b.history.push(step.action);
        turnsPlayed++;
        if (step.done) {
          b.done = true;
          b.episode.outcome = { success: step.success, reward: step.reward, feedback: step.feedback };
          out.push(b.episode);
        }
      });
      options.onProgress?.({ episodesDone: out.length, episodes: seeds.length, turns: turnsPlayed });
    }
  }
  const order = new Map(seeds.map((s, i) => [s, i]));
  return out.sort((a, b) => order.get(a.seed)! - order.get(b.seed)!);
}

export interface EpisodeStats {
  episodes: number;
  /** Share of episodes with reward exactly 1.0. */
  passRate: number;
  /** Mean tokens per response over all turns. */
  meanResponseTokens: number;
  meanTurns: number;
}

export function episodeStats(episodes: readonly Episode[]): EpisodeStats {
  const turns = episodes.flatMap((e) => e.turns);
  return {
    episodes: episodes.length,
    passRate: episodes.length === 0 ? 0 : episodes.filter((e) => e.outcome.reward === 1).length / episodes.length,
    meanResponseTokens: turns.length === 0 ? 0 : turns.reduce((s, t) => s + t.tokens, 0) / turns.length,
    meanTurns: episodes.length === 0 ? 0 : turns.length / episodes.length,
  };
}

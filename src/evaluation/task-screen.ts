/** The pool screen a task's rounds use (OELD_POOL_SCREEN_EPISODES): a game's episodes (pool-screen.ts) or the support desk's questions (desk-pool-screen.ts). */
import type { Company } from '../envs/support-desk/company.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import type { Task } from '../tasks/task.ts';
import { deskPoolScreen } from './desk-pool-screen.ts';
import { screenPool, type PoolScreen } from './pool-screen.ts';

/**
 * `episodes` of a game's extraction seeds played by `engine`, or as many of the support desk's
 * questions against the company `deskCompany` says; none for a chat task of logs only, or 0.
 */
export function screenFor(engine: ModelEngine, task: Task, episodes: number, deskCompany?: () => Promise<Company>): PoolScreen | undefined {
  if (episodes <= 0) return undefined;
  if (task.kind === 'chat') return task.world && deskCompany ? deskPoolScreen(engine, task, deskCompany, episodes) : undefined;
  return (version, texts, onProgress) => screenPool(engine, version, task.game, texts, episodes, onProgress);
}

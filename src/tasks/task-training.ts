/**
 * The round training a task's rounds use: the daemon's (OELD_ROUND_STEPS, OELD_DISTILLATION, ...)
 * with what the task sets for itself (the tasks file, or a built-in world's defaults) over it.
 */
import type { RoundTrainingOptions } from '../trainer/opcd-round.ts';
import type { Task } from './task.ts';

export function trainingFor(task: Pick<Task, 'training'>, daemon: RoundTrainingOptions): RoundTrainingOptions {
  const own = task.training ?? {};
  return {
    ...daemon,
    ...(own.steps !== undefined ? { steps: own.steps } : {}),
    ...(own.method !== undefined ? { method: own.method } : {}),
    ...(own.readingShare !== undefined ? { readingShare: own.readingShare } : {}),
  };
}

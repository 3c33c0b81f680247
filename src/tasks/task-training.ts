/**
 * The round training a task's rounds use: the daemon's (OELD_ROUND_STEPS, OELD_DISTILLATION, ...)
 * with what the task sets for itself (the tasks file, or a built-in world's defaults) over it.
 * TaskTraining's fields are RoundTrainingOptions' own names; only the ones set apply.
 */
import type { RoundTrainingOptions } from '../trainer/opcd-round.ts';
import type { Task } from './task.ts';

export function trainingFor(task: Pick<Task, 'training'>, daemon: RoundTrainingOptions): RoundTrainingOptions {
  const own = Object.entries(task.training ?? {}).filter(([, v]) => v !== undefined);
  return { ...daemon, ...Object.fromEntries(own) };
}

/** What a round's progress shows: the stage gauge, the step metrics, and a log line. */
import type { Metrics } from '../http/metrics.ts';
import type { Logger } from '../log.ts';
import type { RoundProgress } from '../rounds/round-runner.ts';

export const ROUND_STAGES = ['collect', 'extract', 'train', 'evaluate', 'record'] as const;
/** The stages of oeld_round_seconds_total: the round's stages, and the training step's parts (train is their sum plus checkpointing). */
export const ROUND_SECONDS_STAGES = ['collect', 'extract', 'train', 'sampling', 'teacher', 'backward', 'evaluate', 'record'] as const;

export function reportRoundProgress(p: RoundProgress, metrics: Metrics, log: Logger): void {
  metrics.roundStage.set(ROUND_STAGES.indexOf(p.stage) + 1);
  if (p.step) {
    metrics.roundSteps.inc();
    metrics.roundLoss.set(p.step.loss);
    metrics.roundTokensPerSecond.set(p.step.trainedTokens / Math.max(1e-3, p.step.timings.backwardMs / 1000));
    log.info(`round: train step ${p.step.step}/${p.step.of} loss ${p.step.loss.toFixed(4)} grad norm ${p.step.gradNorm.toFixed(3)} response tokens ${p.step.responseTokens.toFixed(1)} (sampling ${(p.step.timings.samplingMs / 1000).toFixed(1)} s, teacher ${(p.step.timings.teacherMs / 1000).toFixed(1)} s, backward ${(p.step.timings.backwardMs / 1000).toFixed(1)} s)`);
  } else {
    log.info(`round: ${p.stage}${p.done !== undefined ? ` ${p.done}${p.of !== undefined ? `/${p.of}` : ''}` : ''}${p.message ? ` (${p.message})` : ''}`);
  }
}

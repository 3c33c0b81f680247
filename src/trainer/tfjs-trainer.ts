/** The `tfjs` trainer: the round runs on the model engine (the daemon's model worker; its TensorFlow.js backend). */
import type { ModelEngine } from '../engine/model-engine.ts';
import type { Trainer } from './trainer-port.ts';

export function tfjsTrainer(engine: Pick<ModelEngine, 'trainRound'>): Trainer {
  return {
    kind: 'tfjs',
    settings: {},
    async train(job, onStep) {
      const { version, dir: _dir, ...input } = job;
      return engine.trainRound(version, input, onStep);
    },
    // The engine belongs to the daemon, which closes it.
    async close() {},
  };
}

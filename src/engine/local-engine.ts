/** The ModelEngine in this thread (tests, scripts, benchmarks): the daemon uses the worker instead. */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelEngine } from './model-engine.ts';
import { PolicyHost } from './policy-host.ts';

export function localEngine(host: PolicyHost = new PolicyHost()): ModelEngine {
  return {
    load: (version, dir) => host.load(version, dir),
    unload: async (version) => host.unload(version),
    complete: async (version, prompts, sampling, maxNewTokens, seed, templateVariables) => host.complete(version, prompts, sampling, maxNewTokens, seed, templateVariables),
    serve: (version, dir, rows, seed, onDeltas, templateVariables) => host.serve(version, dir, rows, seed, onDeltas, templateVariables),
    measureKl: async (student, teacher, pairs, options) => host.measureKl(student, teacher, pairs, options),
    trainRound: async (version, input, onStep) => {
      const r = host.trainRound(version, input, onStep);
      return { sha256: r.sha256, report: r.report };
    },
    memory: async () => { const m = tf.memory(); return { tensors: m.numTensors, bytes: m.numBytes }; },
    close: async () => host.dispose(),
  };
}

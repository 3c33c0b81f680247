/** The ModelEngine in this thread (tests, scripts, benchmarks): the daemon uses the worker instead. */
import type { ModelEngine } from './model-engine.ts';
import { PolicyHost } from './policy-host.ts';

export function localEngine(host: PolicyHost = new PolicyHost()): ModelEngine {
  return {
    load: (version, dir) => host.load(version, dir),
    unload: async (version) => host.unload(version),
    complete: async (version, prompts, sampling, maxNewTokens, seed) => host.complete(version, prompts, sampling, maxNewTokens, seed),
    trainRound: async (version, input, onStep) => {
      const r = host.trainRound(version, input, onStep);
      return { sha256: r.sha256, report: r.report };
    },
    close: async () => host.dispose(),
  };
}

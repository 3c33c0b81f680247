/** The ModelEngine on the model worker thread: the daemon's thread stays free for Kafka and HTTP. */
import { ModelClient } from './model-client.ts';
import type { ModelEngine } from './model-engine.ts';

export function workerEngine(client: ModelClient = new ModelClient()): ModelEngine {
  const stepListeners = new Map<number, (s: NonNullable<Parameters<ModelClient['onProgress']>[0]['report']>) => void>();
  const deltaListeners = new Map<number, (d: NonNullable<Parameters<ModelClient['onProgress']>[0]['deltas']>) => void>();
  client.onProgress = (p) => {
    if (p.report) stepListeners.get(p.request)?.(p.report);
    if (p.deltas) deltaListeners.get(p.request)?.(p.deltas);
  };
  return {
    async load(version, dir) {
      const r = await client.request({ type: 'loadPolicy', key: version, dir });
      return { parameters: r.parameters, backend: r.backend, runtime: r.runtime };
    },
    async unload(version) { await client.request({ type: 'unloadPolicy', key: version }); },
    async complete(version, prompts, sampling, maxNewTokens, seed, templateVariables) {
      if (prompts.length === 0) return [];
      return (await client.request({ type: 'complete', key: version, prompts, sampling, maxNewTokens, seed, ...(templateVariables ? { templateVariables } : {}) })).completions;
    },
    async serve(version, dir, rows, seed, onDeltas, templateVariables) {
      const id = client.peekNextId();
      deltaListeners.set(id, onDeltas);
      try {
        const r = await client.request({ type: 'serve', key: version, dir, rows, seed, ...(templateVariables ? { templateVariables } : {}) });
        return { rows: r.rows, loadedNow: r.loadedNow };
      } finally {
        deltaListeners.delete(id);
      }
    },
    async measureKl(student, teacher, pairs, options) {
      return (await client.request({ type: 'measureKl', student, teacher, pairs, options })).measurement;
    },
    async trainRound(version, input, onStep) {
      // Request ids are assigned in order by the client; progress names the request it belongs to.
      const id = client.peekNextId();
      if (onStep) stepListeners.set(id, onStep);
      try {
        const r = await client.request({ type: 'trainRound', key: version, ...input });
        return { sha256: r.sha256, report: r.report };
      } finally {
        stepListeners.delete(id);
      }
    },
    async memory() { const m = await client.request({ type: 'memory' }); return { tensors: m.tensors, bytes: m.bytes }; },
    close: () => client.close(),
  };
}

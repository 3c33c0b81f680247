import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { PolicyHost } from './policy-host.ts';
import { WorkerLine } from './worker-line.ts';
import type { WorkerRequest, WorkerResponse, WorkerResult } from './worker-protocol.ts';

// The model thread: requests in line (worker-line.ts); progress goes out as it happens.
const host = new PolicyHost();
const port = parentPort!;
const send = (m: WorkerResponse) => port.postMessage(m);

async function handle(r: WorkerRequest, onBatch?: () => void): Promise<WorkerResult> {
  switch (r.type) {
    case 'loadPolicy': {
      const r2 = await host.load(r.key, r.dir);
      return { type: 'loadPolicy', parameters: r2.parameters, backend: r2.backend, runtime: r2.runtime };
    }
    case 'unloadPolicy':
      host.unload(r.key);
      return { type: 'unloadPolicy' };
    case 'complete':
      return { type: 'complete', completions: host.complete(r.key, r.prompts, r.sampling, r.maxNewTokens, r.seed, r.templateVariables) };
    case 'serve': {
      const r2 = await host.serve(r.key, r.dir, r.rows, r.seed, (deltas) => send({ id: -1, progress: { request: r.id, step: 0, of: 0, deltas } }), r.templateVariables, onBatch);
      return { type: 'serve', rows: r2.rows, loadedNow: r2.loadedNow };
    }
    case 'measureKl':
      return { type: 'measureKl', measurement: host.measureKl(r.student, r.teacher, r.pairs, r.options) };
    case 'trainRound': {
      const t = host.trainRound(r.key, r, (s) => send({ id: -1, progress: { request: r.id, step: s.step, of: s.of, loss: s.loss, report: s } }));
      return { type: 'trainRound', sha256: t.sha256, files: t.files, report: t.report };
    }
    case 'memory': {
      const mem = tf.memory();
      return { type: 'memory', tensors: mem.numTensors, bytes: mem.numBytes };
    }
  }
}

const answer = async (r: WorkerRequest, onBatch?: () => void) => {
  try {
    send({ id: r.id, ok: true, result: await handle(r, onBatch) });
  } catch (err) {
    send({ id: r.id, ok: false, error: (err as Error).message });
  }
};

const line = new WorkerLine<WorkerRequest>(answer, (key) => host.serving(key));
port.on('message', (r: WorkerRequest) => line.push(r));

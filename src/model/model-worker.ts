import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from './adamw.ts';
import { initBackend } from './backend.ts';
import { loadModel, saveModel, type LoadedModel } from './checkpoint.ts';
import { generate } from './generate.ts';
import { packBatch, responseLogits, scoreResponses } from './score.ts';
import { PolicyHost } from './policy-host.ts';
import { trainStep } from './train-step.ts';
import type { WorkerRequest, WorkerResponse, WorkerResult } from './worker-protocol.ts';

// The model thread: one request at a time, in arrival order; progress goes out as it happens.
let loaded: LoadedModel | undefined;
const host = new PolicyHost();
const port = parentPort!;
const send = (m: WorkerResponse) => port.postMessage(m);

function need(): LoadedModel {
  if (!loaded) throw new Error('no model loaded: send a load request first');
  return loaded;
}

async function handle(r: WorkerRequest): Promise<WorkerResult> {
  switch (r.type) {
    case 'init': {
      const b = await initBackend({ force: r.backend });
      return { type: 'init', backend: b.name };
    }
    case 'load': {
      loaded?.model.dispose();
      loaded = loadModel(r.dir, { trainable: r.trainable ?? true });
      return { type: 'load', parameters: loaded.model.parameterCount(), family: loaded.model.config.family };
    }
    case 'generate':
      return { type: 'generate', generation: generate(need().model, r.prompts, r.options) };
    case 'score':
      return { type: 'score', logprobs: scoreResponses(need().model, r.prompts, r.responses, r.temperature) };
    case 'trainCrossEntropy': {
      const { model } = need();
      const opt = new AdamW({ learningRate: r.learningRate });
      const batch = packBatch(r.prompts, r.responses);
      const targets = r.responses.flat();
      const losses: number[] = [];
      const gradNorms: number[] = [];
      try {
        for (let step = 1; step <= r.steps; step++) {
          const s = trainStep(model, opt, () => tf.tidy(() => {
            const logits = responseLogits(model, batch);
            const oneHot = tf.oneHot(tf.tensor1d(targets, 'int32'), model.config.vocabSize);
            return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), oneHot), 1))) as tf.Scalar;
          }), r.clipNorm ?? 1);
          losses.push(s.loss);
          gradNorms.push(s.gradNorm);
          send({ id: -1, progress: { request: r.id, step, of: r.steps, loss: s.loss } });
        }
      } finally {
        opt.dispose();
      }
      return { type: 'trainCrossEntropy', losses, gradNorms };
    }
    case 'loadPolicy': {
      const r2 = await host.load(r.key, r.dir);
      return { type: 'loadPolicy', parameters: r2.parameters, backend: r2.backend };
    }
    case 'unloadPolicy':
      host.unload(r.key);
      return { type: 'unloadPolicy' };
    case 'complete':
      return { type: 'complete', completions: host.complete(r.key, r.prompts, r.sampling, r.maxNewTokens, r.seed, r.templateVariables) };
    case 'measureKl':
      return { type: 'measureKl', measurement: host.measureKl(r.student, r.teacher, r.pairs, r.options) };
    case 'trainRound': {
      const t = host.trainRound(r.key, r, (s) => send({ id: -1, progress: { request: r.id, step: s.step, of: s.of, loss: s.loss, report: s } }));
      return { type: 'trainRound', sha256: t.sha256, files: t.files, report: t.report };
    }
    case 'save': {
      const m = need();
      return { type: 'save', files: saveModel(m.model, m.rawConfig, r.dir, m.dir).files };
    }
    case 'memory': {
      const mem = tf.memory();
      return { type: 'memory', tensors: mem.numTensors, bytes: mem.numBytes };
    }
  }
}

let queue: Promise<void> = Promise.resolve();
port.on('message', (r: WorkerRequest) => {
  queue = queue.then(async () => {
    try {
      send({ id: r.id, ok: true, result: await handle(r) });
    } catch (err) {
      send({ id: r.id, ok: false, error: (err as Error).message });
    }
  });
});

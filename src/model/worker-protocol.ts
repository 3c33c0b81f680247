import type { Generation, GenerateOptions } from './generate.ts';

/**
 * Messages between the daemon and the model worker thread. Generation and training block the
 * JavaScript thread for seconds, so they never run on the thread that heartbeats Kafka and serves
 * /metrics.
 */
export type WorkerRequest =
  | { id: number; type: 'init'; backend?: 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu' }
  | { id: number; type: 'load'; dir: string; trainable?: boolean }
  | { id: number; type: 'generate'; prompts: number[][]; options: GenerateOptions }
  | { id: number; type: 'score'; prompts: number[][]; responses: number[][]; temperature: number }
  | { id: number; type: 'trainCrossEntropy'; prompts: number[][]; responses: number[][]; steps: number; learningRate: number; clipNorm?: number }
  | { id: number; type: 'save'; dir: string }
  | { id: number; type: 'memory' };

export type WorkerResult =
  | { type: 'init'; backend: string }
  | { type: 'load'; parameters: number; family: string }
  | { type: 'generate'; generation: Generation }
  | { type: 'score'; logprobs: number[][] }
  | { type: 'trainCrossEntropy'; losses: number[]; gradNorms: number[] }
  | { type: 'save'; files: string[] }
  | { type: 'memory'; tensors: number; bytes: number };

export type WorkerResponse =
  | { id: number; ok: true; result: WorkerResult }
  | { id: number; ok: false; error: string }
  | { id: -1; progress: { request: number; step: number; of: number; loss?: number } };

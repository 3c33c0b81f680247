/**
 * Chat policies held in one thread, keyed by model version: load, answer, train a round. The
 * model worker serves these over messages; tests and benchmarks use them directly (local-engine).
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { measureKl, type KlMeasurement, type KlPair, type MeasureKlOptions } from '../trainer/measure-kl.ts';
import { checkRoundTrainingOptions, trainPlannedRound, type RoundTrainingReport, type StepReport } from '../trainer/opcd-round.ts';
import { planRound } from '../trainer/round-plan.ts';
import { initBackend } from '../model/kernels/backend.ts';
import { chatComplete } from '../model/inference/chat-policy.ts';
import { ContinuousBatch } from '../model/inference/continuous-batch.ts';
import { NativeDecoder } from '../model/inference/native-decoder.ts';
import { serveBatch, type ServedRow, type ServeRow, type TextDelta } from '../model/inference/serve-batch.ts';
import { loadModel, saveModel, type LoadedModel } from '../model/formats/checkpoint.ts';
import { modelFolderInfo } from '../model/formats/model-folder-info.ts';
import { weightsFolderOf } from '../model/formats/lora-adapter.ts';
import { memoryRefusal } from '../model/kernels/memory-fit.ts';
import * as tf from '@tensorflow/tfjs-core';
import type { Prompt, TemplateVariables } from '../model/inference/chat-prompt.ts';
import type { Completion, TrainRoundInput } from './model-engine.ts';
import type { SamplingOptions } from '../model/inference/sampling.ts';
import { loadTokenizer, type Tokenizer } from '../model/formats/tokenizer.ts';
import type { Transformer } from '../model/network/transformer.ts';

export class PolicyHost {
  private readonly policies = new Map<string, { model: LoadedModel; tokenizer: Tokenizer }>();
  /** The running batch of each version being served (continuous batching). */
  private readonly sessions = new Map<string, { batch: ContinuousBatch; ended: Promise<void> }>();
  private backendName = '';
  /** The backend as initBackend described it (its kernels and threads): what a round records as its runtime. */
  private backendDetail = '';

  private get(key: string) {
    const p = this.policies.get(key);
    if (!p) throw new Error(`model ${key} is not loaded (load it first)`);
    return p;
  }

  async load(key: string, dir: string): Promise<{ parameters: number; backend: string; runtime: string }> {
    if (this.backendName === '') { const info = await initBackend(); this.backendName = info.name; this.backendDetail = `${info.name}: ${info.detail}`; }
    const held = this.policies.get(key);
    // A version never changes: loading it again is a no-op unless it moved on disk.
    if (held && held.model.dir === dir) return { parameters: held.model.model.parameterCount(), backend: this.backendName, runtime: this.backendDetail };
    this.unload(key);
    // Refused with the figures before a byte of weights is read, rather than a crash after.
    const memory = modelFolderInfo(weightsFolderOf(dir)).memory;
    const refusal = memory && memoryRefusal(memory.inferenceBytes, this.backendName, tf.memory().numBytes, 'answer');
    if (refusal) throw new Error(`model ${key} (${dir}) ${refusal}`);
    const model = loadModel(dir, { trainable: false, id: key });
    const tokenizer = await loadTokenizer(model.weightsDir);
    this.policies.set(key, { model, tokenizer });
    return { parameters: model.model.parameterCount(), backend: this.backendName, runtime: this.backendDetail };
  }

  unload(key: string): void {
    // Requests still being answered by it end with an error rather than read freed weights.
    this.sessions.get(key)?.batch.failAll(new Error(`model ${key} was unloaded while answering`));
    const held = this.policies.get(key);
    if (held) NativeDecoder.release(held.model.model);
    held?.model.model.dispose();
    this.policies.delete(key);
  }

  complete(key: string, prompts: (string | Prompt)[], sampling: SamplingOptions, maxNewTokens: number, seed: number, templateVariables?: TemplateVariables): Completion[] {
    const p = this.get(key);
    return chatComplete(p.model.model, p.tokenizer, prompts, { ...sampling, maxNewTokens, seed }, templateVariables).map((c) => ({ text: c.text, tokens: c.tokens }));
  }

  /**
   * Served requests with version `key`, loaded from `dir` first when it is not held, answered when
   * their own rows end. On the native decoder they join the version's running batch
   * (continuous-batch.ts), or start one, which steps on its own until its last row ends, yielding
   * between steps so that requests arriving meanwhile join it; elsewhere they are answered as one
   * batch.
   */
  async serve(key: string, dir: string, rows: ServeRow[], seed: number, onDeltas: (d: TextDelta[]) => void, templateVariables?: TemplateVariables,
    /** Called once this request's batch runs: requests sent to serve() from here on join it. */
    onBatch?: () => void): Promise<{ rows: ServedRow[]; loadedNow: boolean }> {
    const running = this.sessions.get(key);
    if (running) return { rows: await running.batch.add(rows, seed, onDeltas, templateVariables), loadedNow: false };
    const loadedNow = !this.policies.has(key);
    if (loadedNow) await this.load(key, dir);
    const p = this.get(key);
    const decoder = NativeDecoder.for(p.model.model);
    if (!decoder) { onBatch?.(); return { rows: serveBatch(p.model.model, p.tokenizer, rows, seed, onDeltas, templateVariables), loadedNow }; }
    const batch = new ContinuousBatch(p.model.model, p.tokenizer, decoder);
    const answered = batch.add(rows, seed, onDeltas, templateVariables);
    const session = { batch, ended: Promise.resolve() };
    this.sessions.set(key, session);
    session.ended = this.stepUntilEmpty(key, batch);
    onBatch?.();
    return { rows: await answered, loadedNow };
  }

  private async stepUntilEmpty(key: string, batch: ContinuousBatch): Promise<void> {
    try {
      while (batch.size > 0) {
        batch.step();
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      if (this.sessions.get(key)?.batch === batch) this.sessions.delete(key);
      batch.failAll(new Error(`serving ${key} stopped`));
    }
  }

  /** The end of the batch running for `key` (requests for it would join it now), or null when none runs. */
  serving(key: string): Promise<void> | null { return this.sessions.get(key)?.ended ?? null; }

  measureKl(studentKey: string, teacherKey: string, pairs: KlPair[], options: MeasureKlOptions): KlMeasurement {
    const s = this.get(studentKey);
    return measureKl(s.model.model, this.get(teacherKey).model.model, s.tokenizer, pairs, options);
  }

  /** Trains a copy of `key` (left unchanged) and writes it to outDir; checkpoints go to checkpointDir. */
  trainRound(
    key: string,
    input: TrainRoundInput,
    onStep?: (s: StepReport) => void,
  ): { sha256: string; files: string[]; report: RoundTrainingReport } {
    const p = this.get(key);
    // The loaded version is held already: a round adds its student, gradients, AdamW's moments and the frozen teacher.
    const memory = modelFolderInfo(p.model.weightsDir).memory;
    const refusal = memory && memoryRefusal(memory.trainingBytes - memory.inferenceBytes, this.backendName, tf.memory().numBytes, 'train a round');
    if (refusal) throw new Error(`model ${key} ${refusal}`);
    const student = p.model.model.clone({ trainable: true, id: `${key}-student` });
    try {
      checkRoundTrainingOptions(input.options);
      const plan = planRound(p.tokenizer, student.config.maxPositions, input.situations, input.knowledgeTexts, input.options, input.reading ?? []);
      const special = { padTokenId: p.tokenizer.padTokenId ?? 0, eosTokenIds: [...p.tokenizer.eosTokenIds] };
      const report = trainPlannedRound(student, special, plan, input.options, {
        ...(onStep ? { onStep } : {}),
        onCheckpoint: (step, m) => writeCheckpoint(input.checkpointDir, step, m, p.model),
      }, input.replay);
      const saved = saveModel(student, p.model.rawConfig, input.outDir, p.model.dir);
      return { ...saved, report };
    } finally {
      student.dispose();
    }
  }

  dispose(): void {
    for (const k of [...this.policies.keys()]) this.unload(k);
  }
}

/** Keeps the newest checkpoint of a round on disk; older ones are removed once it is whole. */
function writeCheckpoint(dir: string, step: number, student: Transformer, from: LoadedModel): void {
  mkdirSync(dir, { recursive: true });
  const name = `step-${String(step).padStart(5, '0')}`;
  rmSync(join(dir, name), { recursive: true, force: true });
  saveModel(student, from.rawConfig, join(dir, name), from.dir);
  for (const old of readdirSync(dir)) if (old.startsWith('step-') && old !== name) rmSync(join(dir, old), { recursive: true, force: true });
}

/**
 * `oeld rederive <version>`: a round's version made again from the log (docs/retention.md,
 * "Re-deriving a version"). The round's events name everything that determined it (RoundStarted:
 * settings, training options with the seed, trainer and its settings; RoundCompleted.inputs: the
 * round-start weights' sha256, the trajectories' event ids, the extraction events, digests of
 * prompts and knowledge, the runtime). The round-start version's folder is used where it is kept,
 * else re-derived first (recursively, down to a kept version); the prompts and the teacher's pool
 * are rebuilt from the events and checked against their digests; the trainer runs into a fresh
 * folder, whose sha256 is compared with the one recorded at publication. `restore` then moves a
 * pruned version's re-derived files back into place and records ModelVersionRestored.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ModelEngine } from '../engine/model-engine.ts';
import { holdsWeights, weightsFileOf } from '../engine/verify-version.ts';
import { canonicalJson } from '../events/canonical-json.ts';
import { isType, type RecordedEvent } from '../events/envelope.ts';
import { newEventId } from '../events/ids.ts';
import type { EventDataMap } from '../events/schemas.ts';
import { STREAMS } from '../events/streams.ts';
import { renderTrajectory } from '../extraction/extraction-prompt.ts';
import { loadSafetensorsFile } from '../model/formats/safetensors.ts';
import { knowledgeDigest, poolTextsFromEvents, promptsDigest, type RoundInputs } from '../rounds/round-inputs.ts';
import { WrongExpectedVersionError } from '../store/errors.ts';
import type { EventStore } from '../store/event-store.ts';
import { readEventsByIds, readStream } from '../store/log-queries.ts';
import { trainingPrompts } from '../tasks/training-prompts.ts';
import type { RoundTrainingOptions } from '../trainer/opcd-round.ts';
import type { Trainer } from '../trainer/trainer-port.ts';
import { readingOf } from '../tasks/reading-prompts.ts';
import { folderBytes } from './prune-versions.ts';
import { foldRegistry, type RegistryVersion } from './retention-policy.ts';

export class RederiveError extends Error {
  constructor(message: string) { super(message); this.name = 'RederiveError'; }
}

export interface RederiveDeps {
  store: EventStore;
  /** Holds the round-start version while the tfjs trainer trains from it. */
  engine: Pick<ModelEngine, 'load' | 'unload'>;
  trainer: Trainer;
  artifactRoot: string;
  onProgress?: (message: string) => void;
}

export interface RederiveResult {
  version: string;
  roundId: string;
  recordedSha256: string;
  derivedSha256: string;
  matches: boolean;
  /** The re-derived folder (moved to the version's recorded path when restored). */
  folder: string;
  restored: boolean;
  /** The runtime recorded by the round, and the one that re-derived it. */
  runtime: { recorded: string; now: string };
  /** Versions re-derived first because their files were gone (round-start versions, oldest first). */
  through: string[];
  /**
   * Where the sha256 differs and the recorded version's files are still there: the largest absolute
   * difference over its weights, and the elements compared (null: not compared, or not comparable).
   */
  difference: { maxAbs: number; elements: number } | null;
  /** The same sha256, or (with a tolerance) weights within it. */
  accepted: boolean;
  seconds: number;
}

export interface RederiveOptions {
  restore?: boolean;
  outDir?: string;
  /** Folders re-derived before (version -> folder), used as round-start folders where the registry's are gone; checked by sha256 all the same. */
  known?: ReadonlyMap<string, string>;
  /** Accept weights within this largest absolute difference of the recorded ones (a GPU trainer is not bit-reproducible); they are still not restored. */
  tolerance?: number;
}

export async function rederiveVersion(d: RederiveDeps, version: string, o: RederiveOptions = {}): Promise<RederiveResult> {
  const t0 = performance.now();
  const registry = foldRegistry(await readStream(d.store.sql, STREAMS.models));
  const byName = new Map(registry.versions.map((v) => [v.version, v]));
  const target = byName.get(version);
  if (!target) throw new RederiveError(`version ${JSON.stringify(version)} was never published`);
  const through: string[] = [];
  const scratch: string[] = [];
  try {
    const derived = await derive({ ...d, known: o.known ?? new Map() }, byName, target, o.outDir ?? join(d.artifactRoot, 'rederived', `${version}-${randomUUID().slice(0, 8)}`), through, scratch, 0);
    const difference = derived.matches || target.pruned || !existsSync(weightsFileOf(target.path)) ? null : weightsDifference(weightsFileOf(target.path), weightsFileOf(derived.folder));
    const accepted = derived.matches || (o.tolerance !== undefined && difference !== null && difference.maxAbs <= o.tolerance);
    const result: RederiveResult = { ...derived, version, restored: false, through, difference, accepted, seconds: 0 };
    if (o.restore) result.restored = await restore(d.store, target, result);
    result.seconds = (performance.now() - t0) / 1000;
    return result;
  } finally {
    for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
  }
}

type Derived = Pick<RederiveResult, 'roundId' | 'recordedSha256' | 'derivedSha256' | 'matches' | 'folder' | 'runtime'>;

/** Re-runs the round that made `v` into `outDir`; a missing round-start folder is re-derived first into scratch. */
async function derive(d: RederiveDeps & { known: ReadonlyMap<string, string> }, byName: Map<string, RegistryVersion>, v: RegistryVersion, outDir: string, through: string[], scratch: string[], depth: number): Promise<Derived> {
  if (!v.roundId) throw new RederiveError(`version ${v.version} was not made by a round (a published base): there is nothing in the log to re-derive it from`);
  const events = await readStream(d.store.sql, STREAMS.round(v.roundId));
  const started = events.find((e): e is RecordedEvent<'RoundStarted'> => isType(e, 'RoundStarted'));
  const completed = events.find((e): e is RecordedEvent<'RoundCompleted'> => isType(e, 'RoundCompleted'));
  if (!started || !completed) throw new RederiveError(`round ${v.roundId} of version ${v.version} has no ${started ? 'RoundCompleted' : 'RoundStarted'} event`);
  const inputs = completed.data.inputs;
  if (!inputs) throw new RederiveError(`round ${v.roundId} of version ${v.version} ran before rounds recorded their inputs (RoundCompleted.inputs): it cannot be re-derived`);
  const config = started.data.config as { trainer?: string; trainerSettings?: Record<string, unknown>; training: RoundTrainingOptions; poolSlots: number; teacherContext?: string; task?: { world?: { kind: string } } };
  checkTrainer(d.trainer, config, v.version);

  const baseName = started.data.baseModelVersion;
  const base = byName.get(baseName);
  if (!base) throw new RederiveError(`version ${v.version}'s round-start version ${baseName} is not in the model registry`);
  const baseDir = await baseFolder(d, byName, base, inputs, through, scratch, depth);

  const prompts = await rebuildPrompts(d.store, inputs, v.roundId);
  const knowledgeTexts = await rebuildKnowledge(d.store, inputs, config, v.roundId);

  const checkpointDir = join(d.artifactRoot, 'rounds', `rederive-${randomUUID()}`);
  mkdirSync(dirname(outDir), { recursive: true });
  if (existsSync(outDir)) throw new RederiveError(`${outDir} exists: re-deriving writes a fresh folder`);
  d.onProgress?.(`re-deriving ${v.version}: round ${v.roundId} from ${baseName}, ${prompts.length} prompts, ${knowledgeTexts.length} knowledge texts, ${config.training.steps} steps on the ${d.trainer.kind} trainer`);
  // The tfjs trainer trains a version its engine holds (under a key of its own here); the torch trainer
  // reads the folder, and an adapter it writes names its full-weight version: the real name.
  const loadKey = d.trainer.kind === 'tfjs' ? `${baseName}@rederive-${randomUUID().slice(0, 8)}` : baseName;
  let runtimeNow: string = d.trainer.kind;
  try {
    if (d.trainer.kind === 'tfjs') {
      const loaded = await d.engine.load(loadKey, baseDir);
      runtimeNow = `tfjs trainer on ${loaded.runtime ?? loaded.backend}`;
    }
    const trained = await d.trainer.train(
      { version: loadKey, dir: baseDir, situations: prompts, knowledgeTexts, options: config.training, outDir, checkpointDir, ...readingOf(config.task ?? {}, config.training) },
      (s) => d.onProgress?.(`re-deriving ${v.version}: step ${s.step}/${s.of}, loss ${s.loss.toFixed(4)}`),
    );
    if (trained.runtime) runtimeNow = trained.runtime;
    const recorded = v.sha256;
    return { roundId: v.roundId, recordedSha256: recorded, derivedSha256: trained.sha256, matches: trained.sha256 === recorded, folder: outDir, runtime: { recorded: inputs.runtime, now: runtimeNow } };
  } catch (err) {
    rmSync(outDir, { recursive: true, force: true });
    throw err;
  } finally {
    rmSync(checkpointDir, { recursive: true, force: true });
    if (d.trainer.kind === 'tfjs') await d.engine.unload(loadKey).catch(() => {});
  }
}

/** The largest absolute difference between two weights files with the same tensors, or null when they differ in names or shapes. */
export function weightsDifference(a: string, b: string): { maxAbs: number; elements: number } | null {
  const x = loadSafetensorsFile(a).tensors;
  const y = loadSafetensorsFile(b).tensors;
  if (x.size !== y.size) return null;
  let maxAbs = 0;
  let elements = 0;
  for (const [name, t] of x) {
    const u = y.get(name);
    if (!u || u.data.length !== t.data.length || u.shape.join() !== t.shape.join()) return null;
    for (let i = 0; i < t.data.length; i++) {
      const d = Math.abs(t.data[i]! - u.data[i]!);
      if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    }
    elements += t.data.length;
  }
  return { maxAbs, elements };
}

/** The round must be re-run by the trainer that ran it, with the same settings (device, processes, adapter rank). */
function checkTrainer(trainer: Trainer, config: { trainer?: string; trainerSettings?: Record<string, unknown> }, version: string): void {
  const kind = config.trainer ?? 'tfjs';
  if (kind !== trainer.kind) throw new RederiveError(`version ${version} was trained by the ${kind} trainer; set OELD_TRAINER=${kind} to re-derive it (now ${trainer.kind})`);
  const recorded = config.trainerSettings ?? {};
  for (const key of new Set([...Object.keys(recorded), ...Object.keys(trainer.settings)])) {
    if (canonicalJson(recorded[key] ?? null) !== canonicalJson(trainer.settings[key] ?? null)) {
      throw new RederiveError(`version ${version} was trained with trainer setting ${key}=${canonicalJson(recorded[key] ?? null)}, the configured trainer has ${canonicalJson(trainer.settings[key] ?? null)}: configure the same to re-derive it`);
    }
  }
}

/** The round-start version's folder: as kept when its weights are still the ones recorded, else re-derived into scratch. */
async function baseFolder(d: RederiveDeps & { known: ReadonlyMap<string, string> }, byName: Map<string, RegistryVersion>, base: RegistryVersion, inputs: RoundInputs, through: string[], scratch: string[], depth: number): Promise<string> {
  if (base.sha256 !== inputs.baseSha256) throw new RederiveError(`the round started from ${base.version} with sha256 ${inputs.baseSha256}, but that version was published with ${base.sha256}`);
  if (!base.pruned && await holdsWeights(base.path, base.sha256)) return base.path;
  const known = d.known.get(base.version);
  if (known && await holdsWeights(known, base.sha256)) return known;
  if (depth >= 1000) throw new RederiveError('more than 1000 pruned versions in a row: re-derive the older ones first');
  const dir = join(d.artifactRoot, 'rederived', `${base.version}-${randomUUID().slice(0, 8)}`);
  scratch.push(dir);
  d.onProgress?.(`the round-start version ${base.version} has no files (${base.pruned ? 'pruned' : 'missing or changed'}): re-deriving it first`);
  const r = await derive(d, byName, base, dir, through, scratch, depth + 1);
  if (!r.matches) throw new RederiveError(`the round-start version ${base.version} re-derived to sha256 ${r.derivedSha256}, not the recorded ${r.recordedSha256}`);
  through.push(base.version);
  return dir;
}

async function eventsInOrder(store: EventStore, ids: readonly string[], what: string, roundId: string): Promise<RecordedEvent[]> {
  const byId = new Map((await readEventsByIds(store.sql, ids)).map((e) => [e.id, e]));
  return ids.map((id) => {
    const e = byId.get(id);
    if (!e) throw new RederiveError(`round ${roundId} names ${what} event ${id}, which is not in the log`);
    return e;
  });
}

async function rebuildPrompts(store: EventStore, inputs: RoundInputs, roundId: string) {
  const trajectories = await eventsInOrder(store, inputs.trajectoryEventIds, 'trajectory', roundId);
  const prompts = trajectories.flatMap((e) => trainingPrompts(e.data as EventDataMap['InteractionRecorded']));
  if (promptsDigest(prompts) !== inputs.promptsSha256) throw new RederiveError(`round ${roundId}: the training prompts rebuilt from its ${trajectories.length} trajectories differ from the ones it recorded (sha256 ${promptsDigest(prompts)}, recorded ${inputs.promptsSha256})`);
  return prompts;
}

async function rebuildKnowledge(store: EventStore, inputs: RoundInputs, config: { poolSlots: number; teacherContext?: string }, roundId: string): Promise<string[]> {
  let texts: string[];
  if (config.teacherContext === 'raw') {
    // The trajectories as the round read them (a failed one repeats in the trained list: failedRepeat).
    const trajectories = await eventsInOrder(store, [...new Set(inputs.trajectoryEventIds)], 'trajectory', roundId);
    texts = trajectories.slice(-config.poolSlots).map((e) => renderTrajectory(e.data as EventDataMap['InteractionRecorded']));
  } else {
    const extracted = await eventsInOrder(store, inputs.knowledgeEventIds, 'KnowledgeExtracted', roundId);
    texts = poolTextsFromEvents(extracted.map((e) => e.data as EventDataMap['KnowledgeExtracted']), config.poolSlots);
  }
  if (knowledgeDigest(texts) !== inputs.knowledgeSha256) {
    throw new RederiveError(`round ${roundId}: the knowledge rebuilt from the log differs from what its teacher read (sha256 ${knowledgeDigest(texts)}, recorded ${inputs.knowledgeSha256})${config.teacherContext === 'raw' ? '; with raw trajectories as the teacher\'s context, feedback recorded after the round changes them' : ''}`);
  }
  return texts;
}

/** Moves a pruned version's re-derived folder back to its recorded path and records it, unless the registry moved meanwhile. */
async function restore(store: EventStore, target: RegistryVersion, r: RederiveResult): Promise<boolean> {
  if (!r.matches) throw new RederiveError(`version ${target.version} re-derived to sha256 ${r.derivedSha256}, not the recorded ${r.recordedSha256}: not restored (the folder is kept at ${r.folder} for inspection)`);
  const registry = foldRegistry(await readStream(store.sql, STREAMS.models));
  const now = registry.versions.find((v) => v.version === target.version)!;
  if (!now.pruned) return false;
  if (existsSync(target.path)) throw new RederiveError(`${target.path} exists although version ${target.version} is recorded as pruned: move it away first`);
  mkdirSync(dirname(target.path), { recursive: true });
  renameSync(r.folder, target.path);
  try {
    await store.append([{ streamId: STREAMS.models, expectedVersion: registry.streamPosition, events: [{
      id: newEventId(), type: 'ModelVersionRestored', data: { version: target.version, sha256: r.derivedSha256, roundId: r.roundId, bytes: folderBytes(target.path) },
    }] }]);
  } catch (err) {
    renameSync(target.path, r.folder);
    if (err instanceof WrongExpectedVersionError) throw new RederiveError('the model registry changed meanwhile (a round or pruning); run it again');
    throw err;
  }
  r.folder = target.path;
  return true;
}

/**
 * The tasks a daemon learns from: OELD_TASKS names them (a built-in game's name makes a game task,
 * any other name a chat task), OELD_TASKS_FILE may set each one's numbers. Errors name the task,
 * the field and the value.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { gameByName } from '../envs/games.ts';
import { preview } from '../events/preview.ts';
import type { Task, TaskTraining } from './task.ts';
import { DEPLOYED_COMPANY_SEEDS } from '../envs/seed-ranges.ts';
import { FACTS } from '../envs/support-desk/facts.ts';
import { DISTILLATION_METHODS, MAX_FAILED_REPEAT, type DistillationMethod } from '../trainer/opcd-round.ts';

export const GAME_TASK_NAMES = ['frozenlake', 'sokoban'] as const;
/** The built-in chat world: a chat task whose customers the simulator plays (envs/support-desk/). */
export const DESK_TASK_NAME = 'support-desk';
/**
 * Support desk: a reply states one fact in one sentence; extraction writes one or two items. Its
 * rounds train longer than a game's and add the forward KL (opcd-forward): sixteen facts to learn
 * in a round instead of one, and facts that change. A quarter of each step keeps the model reading
 * facts from its context (readingShare) and writing items from other companies' corrected
 * conversations (readingExtraction), and the conversations customers corrected count three times
 * (failedRepeat): on five test seeds, two rounds after a change, 86% of the changed facts right
 * and 1% old values, against 70% and 7% without readingExtraction and 55% and 31% without all
 * three; one run each, and a second run with other round seeds gave 55% and 22% (docs/measured.md).
 */
export const DESK_TASK_DEFAULTS = {
  responseTokens: 32, extractionTokens: 64, heldOutPercent: 10, gatePrompts: 32, companySeed: DEPLOYED_COMPANY_SEEDS.start,
  roundSteps: 48, distillation: 'opcd-forward', readingShare: 0.25, readingExtraction: true, failedRepeat: 3,
} as const;
/**
 * The support desk's anchor prompts (scripts/make-desk-anchors.ts): FrozenLake situations and other
 * companies' conversations with their facts in context, what a round on the deployed company must
 * leave as it was. In the installation, like the other defaults.
 */
export const DESK_ANCHOR_PROMPTS_FILE = resolve(new URL('../..', import.meta.url).pathname, 'config/desk-anchor-prompts.jsonl');

/** The support desk's own round training, under what its entry in the tasks file sets. */
const DESK_TRAINING: TaskTraining = {
  steps: DESK_TASK_DEFAULTS.roundSteps, method: DESK_TASK_DEFAULTS.distillation,
  readingShare: DESK_TASK_DEFAULTS.readingShare, readingExtraction: DESK_TASK_DEFAULTS.readingExtraction, failedRepeat: DESK_TASK_DEFAULTS.failedRepeat,
};

/**
 * FrozenLake's own round training: a quarter of each step on boards of the other lake worlds the
 * base model knows (tasks/lake-reading-prompts.ts), so that a round keeps the worlds it does not
 * train on. On models/oeld-desk the watched world lake-XO fell 3-14 points in a round without them
 * and 1-9 with them (validation episodes, round seeds 1-3, two rounds each: the gate's 2 points met
 * on two seeds of three instead of none); on the shipped model, at 100% there, the rounds were as
 * good with as without (docs/measured.md).
 */
const FROZENLAKE_TRAINING: TaskTraining = { readingShare: 0.25 };

/** The built-in tasks' own round training, by task id; the tasks that have reading prompts set a readingShare here. */
const BUILT_IN_TRAINING: ReadonlyMap<string, TaskTraining> = new Map([[DESK_TASK_NAME, DESK_TRAINING], ['frozenlake', FROZENLAKE_TRAINING]]);

/** What a chat task uses where the tasks file says nothing. */
export const CHAT_TASK_DEFAULTS = {
  responseTokens: 64, extractionTokens: 128, heldOutPercent: 10, gatePrompts: 32,
} as const;
export const GAME_EXTRACTION_TOKENS = 64;

const taskFields = z.object({
  responseTokens: z.number().int().min(1).max(32_768).optional(),
  extractionTokens: z.number().int().min(1).max(32_768).optional(),
  templateVariables: z.record(z.string(), z.json()).optional(),
  minInteractions: z.number().int().min(1).optional(),
  roundSteps: z.number().int().min(1).max(100_000).optional(),
  distillation: z.enum(DISTILLATION_METHODS).optional(),
  readingShare: z.number().min(0).max(0.9).optional(),
  readingExtraction: z.boolean().optional(),
  failedRepeat: z.number().int().min(1).max(MAX_FAILED_REPEAT).optional(),
  heldOutPercent: z.number().int().min(1).max(50).optional(),
  gatePrompts: z.number().int().min(1).max(10_000).optional(),
  maxRetentionKl: z.number().finite().min(0).optional(),
  maxBaseRetentionKl: z.number().finite().min(0).optional(),
  anchorPromptsFile: z.string().min(1).optional(),
  companySeed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
  driftAfterConversations: z.number().int().min(0).optional(),
  driftFacts: z.number().int().min(0).max(FACTS.length).optional(),
  evaluator: z.union([
    z.object({ command: z.array(z.string().min(1)).min(1), timeoutMs: z.number().int().min(100).optional() }).strict(),
    z.object({ url: z.url({ protocol: /^https?$/ }), timeoutMs: z.number().int().min(100).optional(), bearerToken: z.string().min(1).optional() }).strict(),
  ]).optional(),
}).strict();
const tasksFile = z.record(z.string().regex(/^[A-Za-z0-9._:-]{1,200}$/, 'task ids use letters, digits and . _ : -'), taskFields);

export interface TaskDefaults {
  minInteractions: number;
  maxRetentionKl: number;
  /** The bound from the lineage's base (OELD_RETENTION_MAX_BASE_KL); absent: three times maxRetentionKl. */
  maxBaseRetentionKl?: number;
  anchorPromptsFile: string;
}

export function parseTaskIds(raw: string): string[] {
  const ids = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (ids.length === 0) throw new Error('expected one or more task ids, comma-separated');
  const bad = ids.find((id) => !/^[A-Za-z0-9._:-]{1,200}$/.test(id));
  if (bad !== undefined) throw new Error(`task id ${JSON.stringify(bad)}: use letters, digits and . _ : -`);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice !== undefined) throw new Error(`task ${JSON.stringify(twice)} is named twice`);
  return ids;
}

/** Builds the tasks; `file` is the tasks file's path (or undefined). */
export function loadTasks(ids: readonly string[], file: string | undefined, defaults: TaskDefaults): Task[] {
  let overrides: z.infer<typeof tasksFile> = {};
  if (file !== undefined) {
    let json: unknown;
    try { json = JSON.parse(readFileSync(file, 'utf8')); } catch (err) { throw new Error(`OELD_TASKS_FILE=${JSON.stringify(file)}: ${(err as Error).message}`); }
    const parsed = tasksFile.safeParse(json, { reportInput: true });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const got = 'input' in issue && issue.input !== undefined ? ` (got ${preview(issue.input)})` : '';
      throw new Error(`OELD_TASKS_FILE=${JSON.stringify(file)}: ${issue.path.join('.') || '(top level)'}: ${issue.message}${got}`);
    }
    overrides = parsed.data;
    const unknown = Object.keys(overrides).filter((id) => !ids.includes(id));
    if (unknown.length) throw new Error(`OELD_TASKS_FILE=${JSON.stringify(file)} sets tasks that OELD_TASKS does not name: ${unknown.join(', ')}`);
  }
  return ids.map((id) => {
    const o = overrides[id] ?? {};
    // Reading prompts exist for the support desk and FrozenLake only (tasks/reading-prompts.ts): elsewhere the setting would do nothing.
    if (o.readingShare !== undefined && BUILT_IN_TRAINING.get(id)?.readingShare === undefined) throw new Error(`OELD_TASKS_FILE: ${id}.readingShare (${preview(o.readingShare)}): applies to the tasks ${DESK_TASK_NAME} and frozenlake only (their reading prompts are other companies' conversations and other lake worlds' boards)`);
    if (o.readingExtraction !== undefined && id !== DESK_TASK_NAME) throw new Error(`OELD_TASKS_FILE: ${id}.readingExtraction (${preview(o.readingExtraction)}): applies to the task ${DESK_TASK_NAME} only (its reading prompts are other companies' conversations)`);
    const common = {
      id,
      templateVariables: o.templateVariables ?? {},
      minInteractions: o.minInteractions ?? defaults.minInteractions,
      ...trainingOf(o, BUILT_IN_TRAINING.get(id) ?? {}),
    };
    // Asked for in the file without reading prompts: it would do nothing. (The desk's default with readingShare 0 is simply off.)
    if (o.readingExtraction && !((common.training?.readingShare ?? 0) > 0)) throw new Error(`OELD_TASKS_FILE: ${id}.readingExtraction (true): adds to the reading prompts, which a round trains on only with readingShare above 0 (it is ${common.training?.readingShare ?? 0})`);
    if ((GAME_TASK_NAMES as readonly string[]).includes(id)) {
      // The simulator and the game's gate play with the game's own prompts: a round must train on what they serve.
      const chatOnly = (['heldOutPercent', 'gatePrompts', 'maxRetentionKl', 'maxBaseRetentionKl', 'anchorPromptsFile', 'evaluator', 'templateVariables'] as const).find((k) => o[k] !== undefined);
      if (chatOnly) throw new Error(`OELD_TASKS_FILE: ${id}.${chatOnly} (${preview(o[chatOnly])}): task ${id} is a game; ${chatOnly} applies to chat tasks only`);
      const game = gameByName(id);
      return {
        ...common, kind: 'game' as const, game,
        responseTokens: o.responseTokens ?? game.responseTokens,
        extractionTokens: o.extractionTokens ?? GAME_EXTRACTION_TOKENS,
        knowledgePlacement: 'user' as const,
      };
    }
    const desk = id === DESK_TASK_NAME;
    const worldOnly = (['companySeed', 'driftAfterConversations', 'driftFacts'] as const).find((k) => o[k] !== undefined);
    if (worldOnly && !desk) throw new Error(`OELD_TASKS_FILE: ${id}.${worldOnly} (${preview(o[worldOnly])}): applies to the task ${DESK_TASK_NAME} only`);
    const chatDefaults = desk ? DESK_TASK_DEFAULTS : CHAT_TASK_DEFAULTS;
    const drift = o.driftAfterConversations !== undefined && (o.driftFacts ?? 4) > 0 ? { afterConversations: o.driftAfterConversations, facts: o.driftFacts ?? 4 } : undefined;
    return {
      ...common, kind: 'chat' as const,
      responseTokens: o.responseTokens ?? chatDefaults.responseTokens,
      extractionTokens: o.extractionTokens ?? chatDefaults.extractionTokens,
      // A logged prompt may end with a tool message: the system message is where knowledge always fits.
      knowledgePlacement: 'system' as const,
      heldOutPercent: o.heldOutPercent ?? chatDefaults.heldOutPercent,
      gatePrompts: o.gatePrompts ?? chatDefaults.gatePrompts,
      maxRetentionKl: o.maxRetentionKl ?? defaults.maxRetentionKl,
      maxBaseRetentionKl: o.maxBaseRetentionKl ?? defaults.maxBaseRetentionKl ?? 3 * (o.maxRetentionKl ?? defaults.maxRetentionKl),
      anchorPromptsFile: o.anchorPromptsFile ?? (desk ? DESK_ANCHOR_PROMPTS_FILE : defaults.anchorPromptsFile),
      ...(o.evaluator ? { evaluator: o.evaluator } : {}),
      ...(desk ? { world: { kind: 'support-desk' as const, companySeed: o.companySeed ?? DESK_TASK_DEFAULTS.companySeed, ...(drift ? { drift } : {}) } } : {}),
    };
  });
}

/** A task's own round training: the tasks file's roundSteps and distillation over a built-in world's defaults; nothing set: absent (the daemon's settings apply). */
function trainingOf(o: { roundSteps?: number; distillation?: DistillationMethod; readingShare?: number; readingExtraction?: boolean; failedRepeat?: number }, builtIn: TaskTraining): { training?: TaskTraining } {
  const training: TaskTraining = {
    ...builtIn,
    ...(o.roundSteps !== undefined ? { steps: o.roundSteps } : {}),
    ...(o.distillation !== undefined ? { method: o.distillation } : {}),
    ...(o.readingShare !== undefined ? { readingShare: o.readingShare } : {}),
    ...(o.readingExtraction !== undefined ? { readingExtraction: o.readingExtraction } : {}),
    ...(o.failedRepeat !== undefined ? { failedRepeat: o.failedRepeat } : {}),
  };
  return Object.keys(training).length ? { training } : {};
}

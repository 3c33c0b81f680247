import { z } from 'zod';

/**
 * Every event type oeld records, each at a schema version. A new version of a type is added
 * beside the old one (the log keeps old events forever); readers upcast when they need to.
 */
const id = z.string().min(1).max(200);
const modelVersion = z.string().min(1).max(100).regex(/^[A-Za-z0-9._:-]+$/, 'model versions use letters, digits and . _ : -');
const text = z.string().max(1_000_000);

const turn = z.object({
  prompt: text,
  response: text,
  action: z.string().max(200).nullable().optional(),
});
const chatMessage = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: text,
  name: z.string().max(200).optional(),
});
const outcome = z.object({
  success: z.boolean().optional(),
  reward: z.number().finite().optional(),
  feedback: text.optional(),
});
const source = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('kafka'), topic: z.string().min(1), partition: z.number().int().min(0), offset: z.string().regex(/^\d+$/) }),
  z.object({ kind: z.literal('http') }),
  z.object({ kind: z.literal('file'), file: z.string().min(1), line: z.number().int().min(1) }),
  z.object({ kind: z.literal('simulator'), episodeSeed: z.number().int().optional() }),
]);

export const InteractionRecordedV1 = z.object({
  interactionId: id,
  /** Where oeld's intake got it (set by the intake, never by the input). */
  source,
  /** A `source` field the input itself carried: its own claim, kept apart from the intake's. */
  claimedSource: z.json().optional(),
  modelVersion,
  taskId: z.string().min(1).max(200),
  turns: z.array(turn).min(1).max(1000).optional(),
  messages: z.array(chatMessage).min(1).max(10_000).optional(),
  outcome: outcome.optional(),
}).refine((d) => (d.turns === undefined) !== (d.messages === undefined), {
  message: 'exactly one of turns (a trajectory) or messages (a chat) must be given',
  path: ['turns'],
});

/**
 * Version 2: chat logs as OpenAI-style APIs and gateways write them, kept whole. A message may
 * carry null content (an assistant turn that only calls tools), content parts (text; other parts
 * are kept and counted in `unsupportedContent`, since training reads text), the developer and
 * function roles, reasoning content, tool calls and tool call ids, and fields of its own (kept as
 * given). The model may be any name a serving stack writes (`Qwen/Qwen3-8B@rev3`); the version
 * registry resolves it (aliases). The record's other fields are kept in `extra`, and `mapped`
 * says where a field of the record was moved to (`messages[3]` from `response.choices[0].message`),
 * so that the record as logged can be rebuilt. A version-1 interaction is a version-2 one.
 */
const loggedName = z.string().min(1).max(200).refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters');
const contentPart = z.looseObject({ type: z.string().min(1).max(100), text: text.optional() })
  .refine((p) => p.type !== 'text' || typeof p.text === 'string', { message: 'a text part needs a text string', path: ['text'] });
export const loggedMessage = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([text, z.array(contentPart).max(10_000)]).nullable().optional(),
  name: z.string().max(200).optional(),
  reasoning_content: text.nullable().optional(),
  tool_calls: z.array(z.json()).max(10_000).nullable().optional(),
  tool_call_id: z.string().max(200).optional(),
});
/** Version 2's intakes add `served`: an exchange oeld's own OpenAI-compatible endpoint answered. */
const sourceV2 = z.discriminatedUnion('kind', [...source.options, z.object({ kind: z.literal('served'), responseId: z.string().min(1).max(200) })]);
export const InteractionRecordedV2 = z.object({
  interactionId: id,
  source: sourceV2,
  claimedSource: z.json().optional(),
  /** The model as the log names it: an oeld version, or a serving stack's name that an alias maps to one. */
  modelVersion: loggedName,
  taskId: z.string().min(1).max(200),
  turns: z.array(turn).min(1).max(1000).optional(),
  messages: z.array(loggedMessage).min(1).max(10_000).optional(),
  outcome: outcome.optional(),
  /** Content part types training cannot read, and how many of each (the parts stay in the messages). */
  unsupportedContent: z.record(z.string(), z.number().int().min(1)).optional(),
  /** The record's fields oeld does not read, as given. */
  extra: z.record(z.string(), z.json()).optional(),
  /** Where a field was taken from in the record (event field -> record path), when not from itself. */
  mapped: z.record(z.string(), z.string()).optional(),
}).refine((d) => (d.turns === undefined) !== (d.messages === undefined), {
  message: 'exactly one of turns (a trajectory) or messages (a chat) must be given',
  path: ['turns'],
});

/**
 * The outcome of an interaction, given after it was recorded (POST /v1/feedback on a served
 * answer): rounds read it as the interaction's outcome (its fields over the recorded ones).
 */
export const InteractionFeedbackRecordedV1 = z.object({
  interactionId: id,
  outcome,
});

export const KnowledgeExtractedV1 = z.object({
  extractingModelVersion: modelVersion,
  /** The task whose trajectories were read: each task has its own pools (absent in extractions from before tasks). */
  taskId: id.optional(),
  poolSlot: z.number().int().min(0).max(1023),
  seed: z.number().int().optional(),
  tokenBudget: z.number().int().min(1).max(1_000_000),
  sourceInteractionIds: z.array(id).max(10_000),
  items: z.array(z.object({
    id: id,
    text: z.string().min(1).max(100_000).refine((s) => !s.includes('\n'), 'an experience item is one line'),
    tokens: z.number().int().min(1).optional(),
  })).min(1).max(100),
});

export const KnowledgeItemRetractedV1 = z.object({ itemId: id, reason: z.string().min(1).max(2000) });

export const KnowledgeBaseRolledBackV1 = z.object({
  toVersion: z.number().int().min(0),
  reason: z.string().max(2000).optional(),
});

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256');
const roundInputs = z.object({
  baseSha256: sha256Hex,
  trajectoryEventIds: z.array(id).max(100_000),
  knowledgeEventIds: z.array(id).max(100_000),
  knowledgeSha256: sha256Hex,
  promptsSha256: sha256Hex,
  runtime: z.string().min(1).max(2000),
}).strict();

export const RoundStartedV1 = z.object({
  roundId: id,
  trigger: z.enum(['threshold', 'cron', 'manual']),
  /** The task the round learns (absent in rounds from before tasks: they learned from every interaction). */
  taskId: id.optional(),
  baseModelVersion: modelVersion,
  knowledgeVersion: z.number().int().min(0),
  config: z.record(z.string(), z.unknown()),
});

export const RoundCompletedV1 = z.object({
  roundId: id,
  newModelVersion: modelVersion.optional(),
  steps: z.number().int().min(0),
  lossSummary: z.object({ first: z.number().finite(), last: z.number().finite(), mean: z.number().finite() }).optional(),
  evaluation: z.record(z.string(), z.unknown()).optional(),
  /** Per optimiser step: loss (the token-mean KL), grad norm before clipping, mean sampled response tokens. */
  curve: z.array(z.object({
    step: z.number().int().min(1),
    loss: z.number().finite(),
    gradNorm: z.number().finite().optional(),
    responseTokens: z.number().finite().optional(),
  })).max(100_000).optional(),
  /** Where the round's time went, in seconds, by stage (extraction, sampling, teacher scoring, backward, evaluation). */
  seconds: z.record(z.string(), z.number().finite().min(0)).optional(),
  /** What determined the new version besides RoundStarted's settings (src/rounds/round-inputs.ts): what `oeld rederive` re-runs from. */
  inputs: roundInputs.optional(),
  /** Game tasks: the pool's slots played in context before training, and which were kept (src/evaluation/pool-screen.ts). */
  screening: z.object({
    episodes: z.number().int().min(1),
    withoutKnowledge: z.number().min(0).max(1),
    slots: z.array(z.object({ slot: z.number().int().min(0), passRate: z.number().min(0).max(1), kept: z.boolean() })).max(1024),
  }).optional(),
});

/** A round that could not improve anything (src/rounds/round-skip.ts): nothing trained or published, the reason recorded. */
export const RoundSkippedV1 = z.object({
  roundId: id,
  reason: z.string().min(1).max(2000),
  /** Items the round's extraction produced (not recorded as knowledge: the active version was trained on all of them). */
  knowledgeItems: z.number().int().min(0),
});

export const RoundFailedV1 = z.object({
  roundId: id,
  stage: z.string().min(1).max(100),
  error: z.string().max(10_000),
});

export const ModelVersionPublishedV1 = z.object({
  version: modelVersion,
  path: z.string().min(1).max(4096),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256'),
  baseVersion: modelVersion.optional(),
  roundId: id.optional(),
  /** A LoRA adapter version (src/model/formats/lora-adapter.ts): the full-weight version it applies to and that version's sha256; `sha256` is then the adapter's. */
  adapterOf: z.object({ version: modelVersion, sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256') }).strict().optional(),
});

export const ModelVersionActivatedV1 = z.object({
  version: modelVersion,
  reason: z.enum(['initial', 'promoted', 'rollback', 'published']),
  previousVersion: modelVersion.optional(),
});

/**
 * A name a serving stack writes into its logs (`Qwen/Qwen3-8B@rev3`, a served-model name, a LoRA
 * adapter name) mapped to an oeld version: fixed (`version`), or following whichever version is
 * active (`followsActive`: a served name that always answers with the active version). Set again,
 * the name maps anew from that point in the log; interactions logged under it before it was ever
 * mapped take its first mapping.
 */
export const ModelVersionAliasedV1 = z.object({
  alias: loggedName,
  version: modelVersion.optional(),
  followsActive: z.literal(true).optional(),
  setBy: z.enum(['operator', 'configuration']),
  reason: z.string().max(2000).optional(),
}).refine((d) => (d.version === undefined) !== (d.followsActive === undefined), { message: 'give exactly one of version or followsActive', path: ['version'] });

/**
 * A published version's weights were refused at a load: missing, or not the sha256 recorded at
 * publication. Recorded once per version and file state (the event id comes from both), so a
 * daemon that keeps trying does not flood the log. Nothing falls back by itself: an operator
 * decides (oeld rollback), and that decision is recorded too.
 */
export const ModelVersionLoadRefusedV1 = z.object({
  version: modelVersion,
  expectedSha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The file's sha256 now; absent: the file is missing. */
  actualSha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** Who tried to load it: the learning loop, a round, the serving endpoint. */
  by: z.enum(['learning-loop', 'round', 'serving']),
});

/** A version's files removed by the retention policy (its record stays: the log has how it was made). */
export const ModelVersionPrunedV1 = z.object({
  version: modelVersion,
  /** Which rule let it go, in words (e.g. "older than the newest 5 and not active within 24 h"). */
  reason: z.string().min(1).max(2000),
  bytes: z.number().int().min(0),
});

/** A pruned version's files brought back by `oeld rederive --restore`: re-derived from the log to the sha256 it was published with. */
export const ModelVersionRestoredV1 = z.object({
  version: modelVersion,
  sha256: sha256Hex,
  /** The round whose recorded inputs it was re-derived from. */
  roundId: id,
  bytes: z.number().int().min(0),
});

export const EvaluationRecordedV1 = z.object({
  evaluationId: id,
  modelVersion,
  /** The game and the seed split played (validation, test, or an out-of-distribution variant). */
  game: z.string().min(1).max(200),
  split: z.enum(['validation', 'test']),
  seeds: z.object({ start: z.number().int().min(0), count: z.number().int().min(1) }),
  /** Knowledge in the prompt (the in-context baseline): whose pool, which slot; absent: none. */
  knowledge: z.object({ modelVersion, slot: z.number().int().min(0) }).optional(),
  episodes: z.number().int().min(1),
  passRate: z.number().min(0).max(1),
  meanResponseTokens: z.number().finite().min(0),
  meanTurns: z.number().finite().min(0),
  roundId: id.optional(),
});

/**
 * Version 2: every evaluation names its task and kind. A game evaluation is version 1's record;
 * a chat task's gate records two measurements in KL (lower is better): the distillation gap on
 * held-out logs (the version without knowledge against the round-start teacher with the task's
 * knowledge) and retention on anchor prompts (the version against the round-start version).
 */
const klMeasurement = {
  evaluationId: id,
  modelVersion,
  taskId: id,
  /** Prompts measured on, and the reply tokens the token-mean KL is over. */
  prompts: z.number().int().min(1),
  tokens: z.number().int().min(0),
  /** The round's loss without training: reverse KL over the student's top-k, not renormalised, so it can be slightly below 0. */
  meanKl: z.number().finite(),
  roundId: id.optional(),
};
export const EvaluationRecordedV2 = z.discriminatedUnion('kind', [
  EvaluationRecordedV1.extend({ kind: z.literal('game'), taskId: id }),
  z.object({ kind: z.literal('distillation-gap'), ...klMeasurement, teacherVersion: modelVersion, knowledgeTexts: z.number().int().min(1) }),
  z.object({ kind: z.literal('retention'), ...klMeasurement, referenceVersion: modelVersion }),
  /** A team's own evaluator (a command or an endpoint) judged each held-out prompt's reply pass or fail. */
  z.object({
    kind: z.literal('external'), evaluationId: id, modelVersion, taskId: id, roundId: id.optional(),
    evaluator: z.string().min(1).max(2000),
    prompts: z.number().int().min(1),
    passed: z.number().int().min(0),
    passRate: z.number().min(0).max(1),
    /** The first failures' reasons, by prompt index. */
    failures: z.array(z.object({ prompt: z.number().int().min(0), reason: z.string().max(2000) })).max(20),
  }),
]);

/** A version-1 evaluation (a game's, before tasks) read as version 2. */
export function upcastEvaluation(schemaVersion: number, data: unknown): z.infer<typeof EvaluationRecordedV2> {
  if (schemaVersion >= 2) return data as z.infer<typeof EvaluationRecordedV2>;
  const v1 = data as z.infer<typeof EvaluationRecordedV1>;
  return { ...v1, kind: 'game', taskId: v1.game };
}

export const EVENT_SCHEMAS = {
  InteractionRecorded: { 1: InteractionRecordedV1, 2: InteractionRecordedV2 },
  InteractionFeedbackRecorded: { 1: InteractionFeedbackRecordedV1 },
  KnowledgeExtracted: { 1: KnowledgeExtractedV1 },
  KnowledgeItemRetracted: { 1: KnowledgeItemRetractedV1 },
  KnowledgeBaseRolledBack: { 1: KnowledgeBaseRolledBackV1 },
  RoundStarted: { 1: RoundStartedV1 },
  RoundCompleted: { 1: RoundCompletedV1 },
  RoundFailed: { 1: RoundFailedV1 },
  RoundSkipped: { 1: RoundSkippedV1 },
  ModelVersionPublished: { 1: ModelVersionPublishedV1 },
  ModelVersionActivated: { 1: ModelVersionActivatedV1 },
  ModelVersionAliased: { 1: ModelVersionAliasedV1 },
  ModelVersionPruned: { 1: ModelVersionPrunedV1 },
  ModelVersionRestored: { 1: ModelVersionRestoredV1 },
  ModelVersionLoadRefused: { 1: ModelVersionLoadRefusedV1 },
  EvaluationRecorded: { 1: EvaluationRecordedV1, 2: EvaluationRecordedV2 },
} as const;

export type EventType = keyof typeof EVENT_SCHEMAS;
export const EVENT_TYPES = Object.keys(EVENT_SCHEMAS) as EventType[];

export interface EventDataMap {
  InteractionRecorded: z.infer<typeof InteractionRecordedV2>;
  InteractionFeedbackRecorded: z.infer<typeof InteractionFeedbackRecordedV1>;
  KnowledgeExtracted: z.infer<typeof KnowledgeExtractedV1>;
  KnowledgeItemRetracted: z.infer<typeof KnowledgeItemRetractedV1>;
  KnowledgeBaseRolledBack: z.infer<typeof KnowledgeBaseRolledBackV1>;
  RoundStarted: z.infer<typeof RoundStartedV1>;
  RoundCompleted: z.infer<typeof RoundCompletedV1>;
  RoundFailed: z.infer<typeof RoundFailedV1>;
  RoundSkipped: z.infer<typeof RoundSkippedV1>;
  ModelVersionPublished: z.infer<typeof ModelVersionPublishedV1>;
  ModelVersionActivated: z.infer<typeof ModelVersionActivatedV1>;
  ModelVersionAliased: z.infer<typeof ModelVersionAliasedV1>;
  ModelVersionPruned: z.infer<typeof ModelVersionPrunedV1>;
  ModelVersionRestored: z.infer<typeof ModelVersionRestoredV1>;
  ModelVersionLoadRefused: z.infer<typeof ModelVersionLoadRefusedV1>;
  EvaluationRecorded: z.infer<typeof EvaluationRecordedV2>;
}

/** The current schema version written for each type. */
export const CURRENT_SCHEMA_VERSION: Record<EventType, number> = Object.fromEntries(
  EVENT_TYPES.map((t) => [t, Math.max(...Object.keys(EVENT_SCHEMAS[t]).map(Number))]),
) as Record<EventType, number>;

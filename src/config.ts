import { resolve } from 'node:path';
import { parseTaskIds } from './tasks/task-config.ts';

/**
 * Every setting oeld reads, from environment variables. This table is the single source: the
 * loader parses it and the README's configuration table is checked against it by a test.
 */
export interface Setting<T> {
  name: string;
  default: string | undefined;
  description: string;
  parse: (raw: string) => T;
}

class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}
export { ConfigError };

const int = (min: number, max: number) => (raw: string): number => {
  if (!/^-?\d+$/.test(raw.trim())) throw new Error(`expected an integer from ${min} to ${max}`);
  const n = Number(raw);
  if (n < min || n > max) throw new Error(`expected an integer from ${min} to ${max}`);
  return n;
};
const str = (raw: string): string => raw;
const float = (min: number, max: number) => (raw: string): number => {
  const n = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new Error(`expected a number from ${min} to ${max}`);
  return n;
};
/** A path; relative paths are taken from the oeld installation directory (where package.json is). */
const installPath = (raw: string): string => resolve(new URL('..', import.meta.url).pathname, raw);
const oneOf = <T extends string>(...values: T[]) => (raw: string): T => {
  if (!values.includes(raw as T)) throw new Error(`expected one of ${values.join(', ')}`);
  return raw as T;
};
const url = (protocols: string[]) => (raw: string): string => {
  let u: URL;
  try { u = new URL(raw); } catch { throw new Error('expected a URL such as postgres://user@host:5432/db'); }
  if (!protocols.includes(u.protocol)) throw new Error(`expected a URL with scheme ${protocols.join(' or ')}`);
  return raw;
};
const brokerList = (raw: string): string[] => {
  const list = raw.split(',').map((b) => b.trim()).filter(Boolean);
  const bad = list.find((b) => !/^[A-Za-z0-9._-]+:\d{1,5}$/.test(b) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(b));
  if (list.length === 0 || bad !== undefined) throw new Error(`expected host:port[,host:port...]${bad ? `; ${JSON.stringify(bad)} is not host:port` : ''}`);
  return list;
};
const torchDevice = (raw: string): string => {
  if (!/^(auto|cpu|cuda(:\d+)?)$/.test(raw)) throw new Error('expected auto, cpu, cuda or cuda:N');
  return raw;
};
const bool = (raw: string): boolean => {
  if (['true', '1', 'yes'].includes(raw.toLowerCase())) return true;
  if (['false', '0', 'no'].includes(raw.toLowerCase())) return false;
  throw new Error('expected true or false');
};
const topic = (raw: string): string => {
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(raw)) throw new Error('expected a Kafka topic name (letters, digits, . _ -; at most 249)');
  return raw;
};
const nameList = (raw: string): string[] => {
  const names = raw.split(',').map((n) => n.trim()).filter(Boolean);
  const bad = names.find((n) => n.length > 200 || /[\u0000-\u001f\u007f]/.test(n));
  if (bad !== undefined) throw new Error(`expected names of at most 200 characters without control characters, separated by commas; ${JSON.stringify(bad.slice(0, 40))} is not one`);
  return names;
};
const token = (raw: string): string => {
  if (raw.length < 16) throw new Error('expected at least 16 characters (a bearer token that is hard to guess)');
  return raw;
};

export const SETTINGS = {
  databaseUrl: { name: 'DATABASE_URL', default: undefined, description: 'PostgreSQL server to use. Unset: embedded PostgreSQL (PGlite) under OELD_DATA_DIR.', parse: url(['postgres:', 'postgresql:']) },
  dataDir: { name: 'OELD_DATA_DIR', default: './data', description: 'Directory for the embedded database and model artifacts.', parse: (raw: string) => resolve(raw) },
  httpHost: { name: 'OELD_HTTP_HOST', default: '127.0.0.1', description: 'Address the HTTP server (metrics, health, admin API) binds to.', parse: str },
  httpPort: { name: 'OELD_HTTP_PORT', default: '9820', description: 'Port of the HTTP server; 0 picks a free port.', parse: int(0, 65535) },
  adminToken: { name: 'OELD_ADMIN_TOKEN', default: undefined, description: 'Bearer token for the admin API (/admin/*). Unset: the admin API is off.', parse: token },
  apiToken: { name: 'OELD_API_TOKEN', default: undefined, description: 'Bearer token for the OpenAI-compatible API (/v1/*: models, chat completions, interactions, feedback). Unset: the API is open when OELD_HTTP_HOST is a loopback address and off otherwise.', parse: token },
  serve: { name: 'OELD_SERVE', default: 'true', description: 'Serve the active version at the OpenAI-compatible endpoint (/v1/models, /v1/chat/completions, /v1/feedback); every answer is recorded as an interaction.', parse: bool },
  serveRecord: { name: 'OELD_SERVE_RECORD', default: 'true', description: 'Record every answer of the OpenAI-compatible endpoint as an interaction of the version that answered (what rounds learn from). false: answers are not recorded, and feedback has nothing to attach to.', parse: bool },
  serveRecordFlushMs: { name: 'OELD_SERVE_RECORD_FLUSH_MS', default: '200', description: 'Answers are written to the log in batches, each at most this long after its first answer was given (sooner when 500 wait), milliseconds: larger batches cost the endpoint less CPU, and a crash of oeld (not a stop) loses at most this long of answers.', parse: int(1, 60_000) },
  serveMaxQueued: { name: 'OELD_SERVE_MAX_QUEUED', default: '256', description: 'Chat completions that may wait for the model; more are answered 429 with Retry-After.', parse: int(1, 100_000) },
  serveMaxBatch: { name: 'OELD_SERVE_MAX_BATCH', default: '32', description: 'Chat completions the model answers at once (continuous batching); more wait in the queue.', parse: int(1, 1024) },
  serveMaxTokens: { name: 'OELD_SERVE_MAX_TOKENS', default: '256', description: 'New tokens of an answer when the request gives no max_tokens.', parse: int(1, 1_000_000) },
  serveWorker: { name: 'OELD_SERVE_WORKER', default: 'own', description: 'own: the endpoint answers from a model engine of its own (a second model worker, or a second PyTorch process with OELD_ENGINE=torch), started at its first request, so answers keep coming while a round trains, evaluates or plays; it holds a second copy of the served version. shared: the learning loop\'s engine (one copy; requests wait while it does round work).', parse: oneOf('own', 'shared') },
  servedModelNames: { name: 'OELD_SERVED_MODEL_NAME', default: 'oeld', description: 'Model names (comma-separated) oeld\'s OpenAI-compatible endpoint answers to with the active version, besides the active version\'s own name (its answers are recorded under the version that wrote them). For logs written elsewhere under such a name, `oeld alias <name> --follows-active`. Empty: none.', parse: nameList },
  logFormat: { name: 'OELD_LOG_FORMAT', default: 'auto', description: 'The log\'s format on stderr: json (one JSON object a line), text (a sentence a line, as `npm start` shows it), or auto: text on a terminal, json otherwise.', parse: oneOf('auto', 'json', 'text') },
  logLevel: { name: 'OELD_LOG_LEVEL', default: 'info', description: 'Log level: fatal, error, warn, info, debug, trace.', parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace') },
  maxEventBytes: { name: 'OELD_MAX_EVENT_BYTES', default: '1048576', description: 'Largest accepted interaction (bytes of JSON); larger input is dead-lettered.', parse: int(1024, 64 * 1024 * 1024) },
  maxJsonDepth: { name: 'OELD_MAX_JSON_DEPTH', default: '64', description: 'Deepest nesting of arrays and objects an interaction may have; deeper input is dead-lettered before it is parsed.', parse: int(4, 512) },
  dbPoolMax: { name: 'OELD_DB_POOL_MAX', default: '10', description: 'Connections in the PostgreSQL pool.', parse: int(2, 1000) },
  dbConnectTimeoutMs: { name: 'OELD_DB_CONNECT_TIMEOUT_MS', default: '5000', description: 'Longest wait for a PostgreSQL connection (a new one, or a free one from the pool), milliseconds.', parse: int(100, 600_000) },
  dbStatementTimeoutMs: { name: 'OELD_DB_STATEMENT_TIMEOUT_MS', default: '60000', description: 'PostgreSQL statement_timeout and idle_in_transaction_session_timeout of oeld\'s connections, milliseconds (0: none). Migrations run without it.', parse: int(0, 86_400_000) },
  dbQueryTimeoutMs: { name: 'OELD_DB_QUERY_TIMEOUT_MS', default: '65000', description: 'A query with no answer from PostgreSQL after this long fails and its connection is dropped (a silent network), milliseconds (0: never).', parse: int(0, 86_400_000) },
  readinessTimeoutMs: { name: 'OELD_READINESS_TIMEOUT_MS', default: '900', description: '/readyz answers 503 when the database has not answered its probe within this long, milliseconds.', parse: int(50, 60_000) },
  projectionBatch: { name: 'OELD_PROJECTION_BATCH', default: '1000', description: 'Events a projection folds per transaction.', parse: int(1, 100_000) },
  projectionPollMs: { name: 'OELD_PROJECTION_POLL_MS', default: '200', description: 'How often caught-up projections look for new events (milliseconds).', parse: int(5, 60_000) },
  leaderRetryMs: { name: 'OELD_LEADER_RETRY_MS', default: '2000', description: 'How often a follower tries to become the leader (milliseconds).', parse: int(50, 600_000) },
  shutdownTimeoutMs: { name: 'OELD_SHUTDOWN_TIMEOUT_MS', default: '10000', description: 'Longest wait for in-flight work at shutdown before it is abandoned uncommitted.', parse: int(0, 600_000) },
  tfBackend: { name: 'OELD_TF_BACKEND', default: undefined, description: 'Force a TensorFlow.js backend: tensorflow-gpu, tensorflow, wasm or cpu. Unset: the first that works, in that order (read by the model runtime).', parse: oneOf('tensorflow-gpu', 'tensorflow', 'wasm', 'cpu') },
  wasmMatmul: { name: 'OELD_WASM_MATMUL', default: 'auto', description: 'Matmuls on the WebAssembly backend: auto (native where its addon is built, else wasm), native (oeld\'s native CPU matmul, AVX-512/AVX2/generic vectors on its own threads; fails at start where the addon, built at npm ci by scripts/build-cpu-addon.mjs, is missing), wasm (oeld\'s WebAssembly SIMD kernel, with relaxed SIMD\'s fused multiply-add where the runtime has it), wasm-simd128 (the same without it: no fused multiply-add, so no rounding that depends on the CPU), tfjs (tfjs\'s own kernels; training 15-18x slower than wasm, 29-39x slower than native). Read by the model runtime.', parse: oneOf('auto', 'native', 'wasm', 'wasm-simd128', 'tfjs') },
  kafkaBrokers: { name: 'KAFKA_BROKERS', default: undefined, description: 'Kafka bootstrap brokers, host:port[,host:port...]. Unset: no Kafka (interactions come from `oeld ingest`).', parse: brokerList },
  kafkaClientId: { name: 'KAFKA_CLIENT_ID', default: 'oeld', description: 'Kafka client id.', parse: str },
  kafkaGroupId: { name: 'KAFKA_GROUP_ID', default: 'oeld', description: 'Consumer group of the interactions consumer.', parse: str },
  kafkaInteractionsTopic: { name: 'KAFKA_INTERACTIONS_TOPIC', default: 'oel.interactions', description: 'Topic the interactions are consumed from.', parse: topic },
  kafkaDeadLetterTopic: { name: 'KAFKA_DEAD_LETTER_TOPIC', default: 'oel.interactions.dlq', description: 'Topic bad interaction messages are copied to, with origin and reason headers.', parse: topic },
  deadLetterCopyMaxBytes: { name: 'OELD_DEAD_LETTER_COPY_MAX_BYTES', default: '262144', description: 'Bytes of a rejected message a dead-letter topic copy keeps (the rest is cut; a header says so). A copy the broker still refuses is recorded with the dead letter, and intake goes on.', parse: int(0, 64 * 1024 * 1024) },
  kafkaModelVersionsTopic: { name: 'KAFKA_MODEL_VERSIONS_TOPIC', default: 'oel.model-versions', description: 'Topic model-version and knowledge-version events are published to.', parse: topic },
  kafkaSaslMechanism: { name: 'KAFKA_SASL_MECHANISM', default: undefined, description: 'SASL mechanism: plain, scram-sha-256 or scram-sha-512. Unset: no SASL.', parse: oneOf('plain', 'scram-sha-256', 'scram-sha-512') },
  kafkaSaslUsername: { name: 'KAFKA_SASL_USERNAME', default: undefined, description: 'SASL user name.', parse: str },
  kafkaSaslPassword: { name: 'KAFKA_SASL_PASSWORD', default: undefined, description: 'SASL password.', parse: str },
  kafkaTls: { name: 'KAFKA_TLS', default: 'false', description: 'Connect to the brokers over TLS.', parse: bool },
  kafkaTlsCaFile: { name: 'KAFKA_TLS_CA_FILE', default: undefined, description: 'PEM file of the CA that signed the brokers\' certificates (default: the system CAs).', parse: (raw: string) => resolve(raw) },
  kafkaSessionTimeoutMs: { name: 'KAFKA_SESSION_TIMEOUT_MS', default: '30000', description: 'Consumer group session (and rebalance) timeout: how soon a dead member\'s partitions move to others.', parse: int(1000, 600_000) },
  kafkaFetchMaxWaitMs: { name: 'KAFKA_FETCH_MAX_WAIT_MS', default: '5000', description: 'Longest a fetch waits at the broker for new messages (kafkajs maxWaitTimeInMs). Lower: less latency on a quiet topic, more requests.', parse: int(10, 60_000) },
  pauseLagEvents: { name: 'OELD_PAUSE_LAG_EVENTS', default: '200000', description: 'Pause Kafka intake when a projection is this many events behind; resume below half of it.', parse: int(1, 1_000_000_000) },
  baseModelDir: { name: 'OELD_BASE_MODEL_DIR', default: 'models/oeld-base', description: 'Hugging Face folder of the model published and activated as the first version when none is active (relative: to the oeld directory); it is copied into the artifact store and published from there.', parse: installPath },
  baseModelVersion: { name: 'OELD_BASE_MODEL_VERSION', default: 'base', description: 'Version name the base model is published under.', parse: (raw: string) => { if (!/^[A-Za-z0-9._:-]{1,60}$/.test(raw)) throw new Error('expected letters, digits and . _ : - (at most 60)'); return raw; } },
  learning: { name: 'OELD_LEARNING', default: 'true', description: 'Run the learning loop on the leader: rounds of extraction and context distillation when the thresholds are met.', parse: bool },
  simulator: { name: 'OELD_SIMULATOR', default: 'auto', description: 'Built-in user side (the FrozenLake simulator) playing the active model: on, off, or auto (on when no KAFKA_BROKERS).', parse: oneOf('auto', 'on', 'off') },
  simulatorBatch: { name: 'OELD_SIMULATOR_BATCH', default: '32', description: 'Episodes the simulator plays per batch.', parse: int(1, 4096) },
  tasks: { name: 'OELD_TASKS', default: 'frozenlake,chat', description: 'Tasks the loop learns, comma-separated, in trigger order: a built-in game (frozenlake, sokoban; the simulator plays the first), the built-in support desk (support-desk: a chat task whose customers the simulator plays, docs/support-desk.md), or any other id, a chat task learning from logged conversations with that taskId. Interactions without a taskId belong to the task chat.', parse: parseTaskIds },
  tasksFile: { name: 'OELD_TASKS_FILE', default: undefined, description: 'JSON file with per-task settings, {"<task id>": {...}}: responseTokens, extractionTokens, templateVariables (e.g. {"enable_thinking": false}), minInteractions, roundSteps and distillation (over OELD_ROUND_STEPS and OELD_DISTILLATION), readingShare (the support desk: share of each step on other companies\' conversations with their facts in context; FrozenLake: on boards of the other lake worlds the base model knows; held to the round-start version; 0.25 for both, 0 for other tasks; with readingExtraction true also extraction prompts over corrected conversations), failedRepeat (1-8: the prompts of a trajectory whose outcome failed appear that many times in a round; 1 by default), and for chat tasks heldOutPercent (1-50, default 10), gatePrompts (32), maxRetentionKl, maxBaseRetentionKl, anchorPromptsFile (docs/chat-learning.md).', parse: (raw: string) => resolve(raw) },
  anchorPromptsFile: { name: 'OELD_ANCHOR_PROMPTS_FILE', default: 'config/anchor-prompts.jsonl', description: 'Anchor prompts of the chat gate\'s retention check (one JSON string or {"messages": [...]} per line; relative: to the oeld directory).', parse: installPath },
  retentionMaxKl: { name: 'OELD_RETENTION_MAX_KL', default: '0.05', description: 'Chat gate: the largest token-mean KL of a candidate from the round-start version on the anchor prompts.', parse: float(0, 100) },
  retentionMaxBaseKl: { name: 'OELD_RETENTION_MAX_BASE_KL', default: '0.15', description: 'Chat gate, with OELD_GATE_WATCH_UNTRAINED: the largest token-mean KL of a candidate from its lineage\'s base (the first version) on the anchor prompts, so that rounds\' small drifts cannot add up (default: three rounds at OELD_RETENTION_MAX_KL).', parse: float(0, 100) },
  roundMinInteractions: { name: 'OELD_ROUND_MIN_INTERACTIONS', default: '64', description: 'New usable interactions of a task from the active version that trigger its round (a task\'s minInteractions in OELD_TASKS_FILE overrides it).', parse: int(1, 100_000_000) },
  roundMinIntervalS: { name: 'OELD_ROUND_MIN_INTERVAL_S', default: '0', description: 'Seconds between the end of one round and the start of the next threshold round.', parse: int(0, 100_000_000) },
  roundCron: { name: 'OELD_ROUND_CRON', default: undefined, description: 'Cron expression (node-cron, optional seconds field) that also starts rounds, e.g. "0 3 * * *".', parse: str },
  refusalBackoffS: { name: 'OELD_REFUSAL_BACKOFF_S', default: '60', description: 'After rounds from the active version were refused by the gate k times in a row, the next threshold round waits this many seconds times 2^(k-1) (at most 64 times) after the previous one (docs/retention.md). 0: no back-off.', parse: float(0, 1_000_000) },
  maxRounds: { name: 'OELD_MAX_ROUNDS', default: '0', description: 'Rounds this process runs before it stops triggering (0: no limit).', parse: int(0, 1_000_000) },
  roundTrajectories: { name: 'OELD_ROUND_TRAJECTORIES', default: '64', description: 'Newest trajectories of the active version a round learns from (their turn prompts are the training prompts).', parse: int(1, 1_000_000) },
  poolSlots: { name: 'OELD_POOL_SLOTS', default: '8', description: 'Knowledge pool size P: independent extraction runs per round.', parse: int(1, 1023) },
  poolTrajectories: { name: 'OELD_POOL_TRAJECTORIES', default: '16', description: 'Trajectories each pool slot accumulates over (N).', parse: int(1, 10_000) },
  knowledgeTokenBudget: { name: 'OELD_KNOWLEDGE_TOKEN_BUDGET', default: '2048', description: 'Token budget of one pool slot; the oldest items are dropped past it.', parse: int(1, 1_000_000) },
  roundSteps: { name: 'OELD_ROUND_STEPS', default: '16', description: 'Optimiser steps per round. A task\'s roundSteps in OELD_TASKS_FILE wins, and the support desk trains 48 unless its entry says otherwise.', parse: int(1, 100_000) },
  roundBatchSize: { name: 'OELD_ROUND_BATCH_SIZE', default: '32', description: 'Prompts per optimiser step.', parse: int(1, 4096) },
  roundLearningRate: { name: 'OELD_ROUND_LEARNING_RATE', default: '0.0002', description: 'AdamW learning rate of a round (constant). 5e-4 drifted the out-of-distribution world (docs/measured.md).', parse: float(1e-9, 1) },
  trainer: { name: 'OELD_TRAINER', default: 'tfjs', description: 'What performs a round\'s training: tfjs (the daemon\'s model worker, TensorFlow.js on the CPU) or torch (a PyTorch process from python/oeld_trainer, on a GPU where it sees one; docs/trainer.md).', parse: oneOf('tfjs', 'torch') },
  engine: { name: 'OELD_ENGINE', default: 'tfjs', description: 'What holds the models for answering, extraction, evaluation and serving: tfjs (the daemon\'s model worker) or torch (a PyTorch process, python -m oeld_trainer engine; the daemon then holds no model). torch needs OELD_TRAINER=torch.', parse: oneOf('tfjs', 'torch') },
  torchPython: { name: 'OELD_TORCH_PYTHON', default: 'python3', description: 'The Python interpreter (with torch) that runs the torch trainer; checked at start when OELD_TRAINER=torch.', parse: str },
  torchDevice: { name: 'OELD_TORCH_DEVICE', default: 'auto', description: 'Where the torch trainer computes: auto (the first CUDA device, else the CPU), cpu, cuda or cuda:N. On a GPU it trains under bf16 autocast with float32 master weights; on the CPU in float32.', parse: torchDevice },
  torchLoraRank: { name: 'OELD_TORCH_LORA_RANK', default: '0', description: 'With OELD_TRAINER=torch: 0 trains every weight; a rank r trains a LoRA adapter of rank r on every projection (q, k, v, o, gate, up, down) and publishes adapter versions (PEFT folders on a full-weight version; docs/trainer.md). A round from an adapter version continues that adapter.', parse: int(0, 4096) },
  torchLoraAlpha: { name: 'OELD_TORCH_LORA_ALPHA', default: undefined, description: 'LoRA alpha (the adapter is scaled by alpha / rank). Unset: twice the rank.', parse: float(1e-6, 1e6) },
  torchProcesses: { name: 'OELD_TORCH_PROCESSES', default: '1', description: 'Processes of one torch job on this machine, data-parallel: each takes its share of every step\'s examples, gradients are summed across them (NCCL on GPUs: one per GPU; gloo on the CPU). The same rendezvous variables as torchrun, so the trainer also runs under torchrun across machines.', parse: int(1, 1024) },
  torchUrl: { name: 'OELD_TORCH_URL', default: undefined, description: 'With OELD_TRAINER=torch: the trainer at a URL (python -m oeld_trainer serve on a GPU host, which must see OELD_DATA_DIR at the same path) instead of a child process (docs/trainer.md).', parse: url(['http:', 'https:']) },
  torchUrlToken: { name: 'OELD_TORCH_URL_TOKEN', default: undefined, description: 'Bearer token for OELD_TORCH_URL (the server\'s OELD_TRAINER_TOKEN).', parse: str },
  trainerTimeoutS: { name: 'OELD_TRAINER_TIMEOUT_S', default: '900', description: 'Longest wait in seconds for the torch trainer\'s next report (it loads the model, then reports every step); past it the trainer is stopped and the round fails.', parse: int(5, 7 * 86_400) },
  distillation: { name: 'OELD_DISTILLATION', default: 'opcd', description: 'opcd (on-policy: the student samples, reverse KL), off-policy (the teacher samples, forward KL) or opcd-forward (the student samples, reverse plus forward KL: follows a changed fact, docs/oel-method.md). A task\'s distillation in OELD_TASKS_FILE wins, and the support desk uses opcd-forward unless its entry says otherwise.', parse: oneOf('opcd', 'off-policy', 'opcd-forward') },
  teacherContext: { name: 'OELD_TEACHER_CONTEXT', default: 'knowledge', description: 'What the teacher reads: knowledge (extracted items) or raw (raw trajectories; the ablation).', parse: oneOf('knowledge', 'raw') },
  activationGate: { name: 'OELD_ACTIVATION_GATE', default: 'true', description: 'Activate a new version only if its validation pass rate is at least the old one\'s minus OELD_GATE_TOLERANCE.', parse: bool },
  gateTolerance: { name: 'OELD_GATE_TOLERANCE', default: '0.02', description: 'Pass-rate drop the activation gate tolerates (0.02 = 2 points).', parse: float(0, 1) },
  gateHistory: { name: 'OELD_GATE_HISTORY', default: '3', description: 'A game task\'s candidate must reach the best validation pass rate of this many recently activated versions (the round-start version included) minus OELD_GATE_TOLERANCE, so that tolerated drops cannot add up round after round. 1: the round-start version only.', parse: int(1, 100) },
  gateWatchUntrained: { name: 'OELD_GATE_WATCH_UNTRAINED', default: 'true', description: 'A game task\'s gate also plays the world its rounds never train on (FrozenLake: the out-of-distribution world lake-XO) and refuses a candidate more than OELD_GATE_TOLERANCE below the lineage\'s base there.', parse: bool },
  poolScreenEpisodes: { name: 'OELD_POOL_SCREEN_EPISODES', default: '32', description: 'Game tasks and the support desk: before training, the round-start version plays this many episodes (answers this many of the desk\'s questions) without knowledge and with each pool slot\'s knowledge in context; slots that do worse than without knowledge (or more than 10 points below the best slot) are dropped, and a round with none left is skipped (docs/oel-method.md, "Screening the pool"). 0: off.', parse: int(0, 100_000) },
  skipUnchangedRounds: { name: 'OELD_SKIP_UNCHANGED_ROUNDS', default: 'true', description: 'Skip a round (RoundSkipped, nothing trained or published) when the active version passed every validation episode and the round extracted no item the active version was not trained on (docs/retention.md). false: such rounds train and publish as any other.', parse: bool },
  evalEpisodes: { name: 'OELD_EVAL_EPISODES', default: '128', description: 'Validation episodes per evaluation in a game task\'s round (0: no evaluation, activate always; chat tasks are always gated, docs/chat-learning.md).', parse: int(0, 128) },
  keepVersions: { name: 'OELD_KEEP_VERSIONS', default: '5', description: 'Model versions whose files are always kept, newest first; older ones are pruned after each round unless active, the active version\'s base, a root (base) version, or active within OELD_ROLLBACK_WINDOW_HOURS (docs/retention.md).', parse: int(1, 1_000_000) },
  rollbackWindowHours: { name: 'OELD_ROLLBACK_WINDOW_HOURS', default: '24', description: 'Every version active at any time within this many hours is kept (a rollback to it stays possible).', parse: float(0, 1_000_000) },
  servingWebhookUrl: { name: 'OELD_SERVING_WEBHOOK_URL', default: undefined, description: 'Told of every activation: POST of {activationId, version, path, sha256, adapterOf, reason, activatedAt} (JSON), retried with backoff until a 2xx or a newer activation (docs/trainer.md). Unset: nobody is told.', parse: url(['http:', 'https:']) },
  servingWebhookToken: { name: 'OELD_SERVING_WEBHOOK_TOKEN', default: undefined, description: 'Bearer token for OELD_SERVING_WEBHOOK_URL.', parse: str },
  vllmUrl: { name: 'OELD_VLLM_URL', default: undefined, description: 'A vLLM server (http://host:8000) that loads each activated adapter version through /v1/load_lora_adapter (its name is the version; the server needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True). Full-weight versions are not swapped into a running vLLM: skipped, and counted so.', parse: url(['http:', 'https:']) },
  vllmApiKey: { name: 'OELD_VLLM_API_KEY', default: undefined, description: 'Bearer token for OELD_VLLM_URL.', parse: str },
  extractionUrl: { name: 'OELD_EXTRACTION_URL', default: undefined, description: 'OpenAI-compatible endpoint (e.g. http://host:8000/v1) for extraction; it must serve the trajectories\' model version. Unset: the policy in the worker.', parse: url(['http:', 'https:']) },
  extractionApiKey: { name: 'OELD_EXTRACTION_API_KEY', default: undefined, description: 'Bearer token for OELD_EXTRACTION_URL.', parse: str },
} satisfies Record<string, Setting<unknown>>;

type Settings = typeof SETTINGS;
export type Config = {
  [K in keyof Settings]: Settings[K]['default'] extends string ? ReturnType<Settings[K]['parse']> : ReturnType<Settings[K]['parse']> | undefined;
};

/** Parses the environment; every bad value is reported at once, each with its variable and value. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    const raw = env[s.name] === '' ? undefined : env[s.name];
    const value = raw ?? s.default;
    if (value === undefined) { out[key] = undefined; continue; }
    try {
      out[key] = s.parse(value);
    } catch (err) {
      const shown = [SETTINGS.adminToken.name, SETTINGS.apiToken.name, SETTINGS.kafkaSaslPassword.name, SETTINGS.extractionApiKey.name, SETTINGS.servingWebhookToken.name, SETTINGS.vllmApiKey.name, SETTINGS.torchUrlToken.name].includes(s.name) ? `${value.length} characters` : JSON.stringify(value);
      problems.push(`${s.name}=${shown}: ${(err as Error).message}`);
    }
  }
  if (out.kafkaSaslMechanism !== undefined && (out.kafkaSaslUsername === undefined || out.kafkaSaslPassword === undefined)) {
    problems.push(`KAFKA_SASL_MECHANISM=${JSON.stringify(out.kafkaSaslMechanism)}: KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with it`);
  }
  if (out.engine === 'torch' && out.trainer !== 'torch') {
    problems.push(`OELD_ENGINE=torch: rounds must train in the torch process too; set OELD_TRAINER=torch (it is ${JSON.stringify(out.trainer)})`);
  }
  if (out.torchUrl !== undefined && out.trainer !== 'torch') problems.push(`OELD_TORCH_URL: the trainer at a URL is the torch trainer; set OELD_TRAINER=torch (it is ${JSON.stringify(out.trainer)})`);
  if (out.torchUrl !== undefined && (out.torchProcesses as number) > 1) problems.push(`OELD_TORCH_PROCESSES=${out.torchProcesses as number}: the trainer at OELD_TORCH_URL runs one process a job (data-parallel jobs at a URL are not built)`);
  if (problems.length) throw new ConfigError(problems);
  return out as Config;
}

import client from 'prom-client';

/**
 * oeld's metrics on one registry (no global default registry: two daemons in one test process
 * must not share counters). Names follow Prometheus conventions: oeld_ prefix, base units,
 * _total for counters, _info for versions; no high-cardinality labels.
 */
export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    eventsAppended: new client.Counter({ name: 'oeld_events_appended_total', help: 'Events appended to the event store, by type.', labelNames: ['type'] as const, registers: [registry] }),
    eventsDeduplicated: new client.Counter({ name: 'oeld_events_deduplicated_total', help: 'Appends skipped because the event id was already stored with the same content.', registers: [registry] }),
    appendSeconds: new client.Histogram({ name: 'oeld_event_store_append_duration_seconds', help: 'Time of one append transaction (validation excluded), from its first statement to its commit.', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] }),
    knowledgePoolTokens: new client.Gauge({ name: 'oeld_knowledge_pool_tokens', help: 'Tokens in each pool slot of each task\'s newest extracting model version (the task\'s latest round\'s knowledge).', labelNames: ['task', 'slot'] as const, registers: [registry] }),
    taskInteractions: new client.Gauge({ name: 'oeld_task_interactions', help: 'Interactions per task by what they are to the next round: usable, held_out (for the chat gate), used (by earlier rounds), older_version, unknown_version (a version oeld never published), task_not_configured.', labelNames: ['task', 'state'] as const, registers: [registry] }),
    unknownModelInteractions: new client.Gauge({ name: 'oeld_unknown_model_interactions', help: 'Interactions logged under a model name that no published version or alias resolves (never learned from until `oeld alias` maps it), per name: the 20 largest, the rest as "(other names)".', labelNames: ['name'] as const, registers: [registry] }),
    serveRequests: new client.Counter({ name: 'oeld_serve_requests_total', help: 'Chat completions at the OpenAI-compatible endpoint by outcome: answered (by whether they streamed), refused (429: the queue was full).', labelNames: ['outcome', 'stream'] as const, registers: [registry] }),
    serveSeconds: new client.Histogram({ name: 'oeld_serve_request_duration_seconds', help: 'Time from a chat completion\'s arrival to its last token (queueing included).', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry] }),
    serveBatchRows: new client.Histogram({ name: 'oeld_serve_batch_requests', help: 'Requests being answered together (the running batch they joined, themselves included) when a request went to the model worker.', buckets: [1, 2, 4, 8, 16, 32, 64], registers: [registry] }),
    serveTokens: new client.Counter({ name: 'oeld_serve_completion_tokens_total', help: 'Tokens the endpoint wrote in answers.', registers: [registry] }),
    serveQueued: new client.Gauge({ name: 'oeld_serve_queued_requests', help: 'Chat completions waiting for the model worker (past OELD_SERVE_MAX_QUEUED they are answered 429).', registers: [registry] }),
    loadRefusals: new client.Counter({ name: 'oeld_model_load_refusals_total', help: 'Loads of a published version refused because its weights are missing or not the sha256 recorded at publication, by who tried (learning-loop, serving). Nothing falls back by itself: roll back to an intact version.', labelNames: ['by'] as const, registers: [registry] }),
    versionsPruned: new client.Counter({ name: 'oeld_model_versions_pruned_total', help: 'Model versions whose files this daemon pruned (retention policy: OELD_KEEP_VERSIONS, OELD_ROLLBACK_WINDOW_HOURS).', registers: [registry] }),
    prunedBytes: new client.Counter({ name: 'oeld_model_pruned_bytes_total', help: 'Bytes of model files this daemon pruned.', registers: [registry] }),
    chatGateKl: new client.Gauge({ name: 'oeld_chat_gate_kl', help: 'The chat gate\'s last measurements per task (token-mean KL): gap_before and gap_after (distillation gap on held-out logs, round-start version and candidate), retention (candidate against the round-start version on anchor prompts), retention_base (candidate against the lineage\'s base, OELD_GATE_WATCH_UNTRAINED).', labelNames: ['task', 'measurement'] as const, registers: [registry] }),
    headPosition: new client.Gauge({ name: 'oeld_event_store_head_position', help: 'Highest global position in the event store.', registers: [registry] }),
    projectionPosition: new client.Gauge({ name: 'oeld_projection_checkpoint_position', help: 'Global position of each projection checkpoint.', labelNames: ['projection'] as const, registers: [registry] }),
    projectionLagEvents: new client.Gauge({ name: 'oeld_projection_lag_events', help: 'Head position minus checkpoint position, per projection.', labelNames: ['projection'] as const, registers: [registry] }),
    projectionLagSeconds: new client.Gauge({ name: 'oeld_projection_lag_seconds', help: 'Age of the oldest event a projection has not folded yet (0 when caught up).', labelNames: ['projection'] as const, registers: [registry] }),
    projectionErrors: new client.Counter({ name: 'oeld_projection_errors_total', help: 'Projection batches that failed and were retried.', labelNames: ['projection'] as const, registers: [registry] }),
    projectionRebuilds: new client.Counter({ name: 'oeld_projection_rebuilds_total', help: 'Replays that rebuilt the projections.', registers: [registry] }),
    knowledgeVersion: new client.Gauge({ name: 'oeld_knowledge_version', help: 'Current knowledge base version.', registers: [registry] }),
    knowledgeItems: new client.Gauge({ name: 'oeld_knowledge_items', help: 'Experience items in the current knowledge base.', registers: [registry] }),
    knowledgeTokens: new client.Gauge({ name: 'oeld_knowledge_tokens', help: 'Tokens in the current knowledge base, all pools together.', registers: [registry] }),
    modelActiveInfo: new client.Gauge({ name: 'oeld_model_active_info', help: 'The active model version (value 1).', labelNames: ['version'] as const, registers: [registry] }),
    ingestConsumed: new client.Counter({ name: 'oeld_ingest_messages_consumed_total', help: 'Kafka messages received by the interactions consumer.', registers: [registry] }),
    ingestAppended: new client.Counter({ name: 'oeld_ingest_messages_appended_total', help: 'Kafka messages appended to the event store as interactions.', registers: [registry] }),
    ingestDeduplicated: new client.Counter({ name: 'oeld_ingest_messages_deduplicated_total', help: 'Kafka messages skipped as repeats: offset already stored, or event id already stored.', labelNames: ['by'] as const, registers: [registry] }),
    ingestDeadLettered: new client.Counter({ name: 'oeld_ingest_messages_dead_lettered_total', help: 'Kafka messages sent to the dead-letter topic and table, by reason.', labelNames: ['reason'] as const, registers: [registry] }),
    ingestDeadLetterCopiesRefused: new client.Counter({ name: 'oeld_ingest_dead_letter_copies_refused_total', help: 'Dead letters whose copy the dead-letter topic refused (too large, or the broker failing): recorded in the dead_letters table only.', registers: [registry] }),
    ingestBatchRetries: new client.Counter({ name: 'oeld_ingest_batch_retries_total', help: 'Kafka batches tried again because the database was away (a restart, a failover, a silent network).', registers: [registry] }),
    databaseUp: new client.Gauge({ name: 'oeld_database_up', help: '1 when the database answered the last readiness probe in time, 0 when it did not.', registers: [registry] }),
    ingestOffsetsSkipped: new client.Counter({ name: 'oeld_ingest_offsets_skipped_total', help: 'Kafka offsets never delivered to oeld (deleted by retention or compaction before it consumed them).', registers: [registry] }),
    ingestBatchSeconds: new client.Histogram({ name: 'oeld_ingest_batch_duration_seconds', help: 'Time to make one partition batch durable (decode, validate, append, commit).', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
    ingestLag: new client.Gauge({ name: 'oeld_ingest_consumer_lag_messages', help: 'Messages in the topic not yet in the event store, per assigned partition (refreshed every 5 s from the brokers).', labelNames: ['partition'] as const, registers: [registry] }),
    ingestRebalances: new client.Counter({ name: 'oeld_ingest_rebalances_total', help: 'Consumer group rebalances this daemon took part in.', registers: [registry] }),
    ingestCrashes: new client.Counter({ name: 'oeld_ingest_consumer_crashes_total', help: 'Consumer crashes: kafkajs restarts the consumer after a retriable error, oeld after any other (1 s, doubling to 30 s).', registers: [registry] }),
    ingestPausedPartitions: new client.Gauge({ name: 'oeld_ingest_paused_partitions', help: 'Assigned partitions paused by backpressure (0 when flowing).', registers: [registry] }),
    outboxBacklog: new client.Gauge({ name: 'oeld_outbox_backlog_events', help: 'Events of published types not yet relayed to the model-versions topic.', registers: [registry] }),
    servingNotifications: new client.Counter({ name: 'oeld_serving_notifications_total', help: 'Announcements of the active version to the serving stack, by target (webhook, vllm) and outcome (delivered, failed, skipped: a full-weight version vLLM cannot load at runtime).', labelNames: ['target', 'outcome'] as const, registers: [registry] }),
    servingNotifyPending: new client.Gauge({ name: 'oeld_serving_notify_pending', help: '1 while the active version has not reached every configured serving target (retried with backoff), else 0.', registers: [registry] }),
    outboxPublished: new client.Counter({ name: 'oeld_outbox_published_total', help: 'Events relayed to the model-versions topic (resends after a crash included).', registers: [registry] }),
    leader: new client.Gauge({ name: 'oeld_leader', help: '1 while this daemon is the leader (runs projections and rounds).', registers: [registry] }),
    roundsStarted: new client.Counter({ name: 'oeld_rounds_started_total', help: 'Training rounds started by this daemon.', registers: [registry] }),
    roundTokensPerSecond: new client.Gauge({ name: 'oeld_round_training_tokens_per_second', help: 'Tokens (prompts and responses) the student trained on per second of forward and backward, last step.', registers: [registry] }),
    modelTensorBytes: new client.Gauge({ name: 'oeld_model_tensor_bytes', help: 'Tensor memory held by the model worker (TensorFlow.js count).', registers: [registry] }),
    roundsTotal: new client.Counter({ name: 'oeld_rounds_total', help: 'Training rounds finished by this daemon, by outcome (completed, skipped: nothing to improve, failed).', labelNames: ['outcome'] as const, registers: [registry] }),
    roundStage: new client.Gauge({ name: 'oeld_round_stage', help: 'Stage of the running round: 0 none, 1 collect, 2 extract, 3 train, 4 evaluate, 5 record.', registers: [registry] }),
    roundSteps: new client.Counter({ name: 'oeld_round_training_steps_total', help: 'Optimiser steps taken by rounds.', registers: [registry] }),
    roundLoss: new client.Gauge({ name: 'oeld_round_loss', help: 'Loss of the last optimiser step: the token-mean KL between student and teacher (reverse for opcd, forward for off-policy).', registers: [registry] }),
    roundSeconds: new client.Counter({ name: 'oeld_round_seconds_total', help: 'Seconds spent in completed rounds, by stage (collect, extract, train, evaluate, record; and train\'s parts: sampling, teacher, backward).', labelNames: ['stage'] as const, registers: [registry] }),
    validationPassRate: new client.Gauge({ name: 'oeld_validation_pass_rate', help: 'Pass rate on the validation seeds, no knowledge in context, per task and model version (support desk: fact accuracy of the validation conversations).', labelNames: ['task', 'version'] as const, registers: [registry] }),
    validationResponseTokens: new client.Gauge({ name: 'oeld_validation_response_tokens', help: 'Mean tokens per response on the validation seeds, per task and model version.', labelNames: ['task', 'version'] as const, registers: [registry] }),
    simulatorEpisodes: new client.Counter({ name: 'oeld_simulator_episodes_total', help: 'Episodes (support desk: conversations) the built-in simulator played, per task and model version.', labelNames: ['task', 'version'] as const, registers: [registry] }),
    simulatorPassRate: new client.Gauge({ name: 'oeld_simulator_pass_rate', help: 'Pass rate of the last simulator batch, per task and model version (deployment seeds; support desk: conversations with every answer right).', labelNames: ['task', 'version'] as const, registers: [registry] }),
    simulatorFactAccuracy: new client.Gauge({ name: 'oeld_simulator_fact_accuracy', help: 'Support desk: share of answers in the last simulator batch that stated the company\'s current value, per task and model version.', labelNames: ['task', 'version'] as const, registers: [registry] }),
    simulatorChangedFacts: new client.Gauge({ name: 'oeld_simulator_changed_facts', help: 'Support desk: facts the simulated company has changed so far (policy drift), per task.', labelNames: ['task'] as const, registers: [registry] }),
    modelBackend: new client.Gauge({ name: 'oeld_model_backend_info', help: 'The TensorFlow.js backend the model worker uses (value 1).', labelNames: ['backend'] as const, registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

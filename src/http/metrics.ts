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
    deadLetters: new client.Counter({ name: 'oeld_dead_letters_total', help: 'Input recorded as a dead letter, by source.', labelNames: ['source'] as const, registers: [registry] }),
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
    leader: new client.Gauge({ name: 'oeld_leader', help: '1 while this daemon is the leader (runs projections and rounds).', registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

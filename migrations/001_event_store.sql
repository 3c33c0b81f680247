-- The event store: one append-only table, a stream table for optimistic concurrency.
-- Global order for readers is (transaction_id, global_position): a reader only reads rows whose
-- transaction id is below the oldest transaction still running, so a transaction that commits
-- late can never be skipped (the approach of Emmett's PostgreSQL store).
CREATE TABLE IF NOT EXISTS events (
  global_position bigint GENERATED ALWAYS AS IDENTITY,
  transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
  event_id        uuid        NOT NULL,
  stream_id       text        NOT NULL,
  stream_position bigint      NOT NULL,
  type            text        NOT NULL,
  schema_version  integer     NOT NULL,
  data            jsonb       NOT NULL,
  causation_id    uuid,
  correlation_id  uuid,
  occurred_at     timestamptz NOT NULL,
  recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (global_position),
  UNIQUE (event_id),
  UNIQUE (stream_id, stream_position)
);
CREATE INDEX IF NOT EXISTS events_read_order ON events (transaction_id, global_position);

CREATE TABLE IF NOT EXISTS streams (
  stream_id text   PRIMARY KEY,
  version   bigint NOT NULL
);

-- Input that could not become an event, kept with the reason so nothing is silently dropped.
CREATE TABLE IF NOT EXISTS dead_letters (
  id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source      text        NOT NULL,
  origin      text        NOT NULL,
  reason      text        NOT NULL,
  payload     text,
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Projections live in their own schema so that a replay can build a fresh one and swap it in.
CREATE SCHEMA IF NOT EXISTS oeld_proj;

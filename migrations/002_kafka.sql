-- Kafka intake: per consumer group and partition, the next offset not yet in the event store.
-- It is written in the same transaction as the events of a batch, so a redelivered message
-- (crash before the Kafka offset commit) is recognised and skipped.
CREATE TABLE IF NOT EXISTS kafka_consumer_offsets (
  group_id    text   NOT NULL,
  topic       text   NOT NULL,
  partition   integer NOT NULL,
  next_offset bigint NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (group_id, topic, partition)
);

-- Publication: the events table is the outbox; the relay's place in it is kept here (not in the
-- projection schema: a replay must not resend history).
CREATE TABLE IF NOT EXISTS outbox_relay_checkpoints (
  name            text   PRIMARY KEY,
  transaction_id  xid8   NOT NULL,
  global_position bigint NOT NULL
);

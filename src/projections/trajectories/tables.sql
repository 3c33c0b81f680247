-- One row per interaction: the task and model version that produced it, its shape (game turns or
-- chat messages), its intake, and where its event is. Rounds find a version's newest trajectories
-- here and read their events from the store.
-- Keyed by global position: rows arrive in increasing order, so inserts append to the key's index.
CREATE TABLE IF NOT EXISTS trajectories (
  global_position bigint      PRIMARY KEY,
  event_id        uuid        NOT NULL,
  interaction_id  text        NOT NULL,
  task_id         text        NOT NULL,
  model_version   text        NOT NULL,
  shape           text        NOT NULL,
  source_kind     text        NOT NULL,
  recorded_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS trajectories_newest_by_version ON trajectories (model_version, shape, global_position);

-- Running counts per model version, task and intake, and each count as it stood when the newest
-- round ended: what a round can still learn from is the difference, one row per task and intake
-- whatever the length of the log.
CREATE TABLE IF NOT EXISTS trajectory_counts (
  model_version     text   NOT NULL,
  task_id           text   NOT NULL,
  source_kind       text   NOT NULL,
  recorded          bigint NOT NULL,
  at_last_round_end bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (model_version, task_id, source_kind)
);

-- The newest round end folded (one row): the trigger reads it with the counts, from one checkpoint.
CREATE TABLE IF NOT EXISTS trajectory_last_round (
  only_row  boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
  round_id  text        NOT NULL,
  ended_at  timestamptz NOT NULL
);

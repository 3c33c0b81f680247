-- One row per interaction: the task and model version that produced it, its shape (game turns or
-- chat messages), its intake, its split bucket (held-out.ts), and where its event is. Rounds find
-- a task's newest trajectories of a version here and read their events from the store.
-- Keyed by global position: rows arrive in increasing order, so inserts append to the key's index.
CREATE TABLE IF NOT EXISTS trajectories (
  global_position bigint      PRIMARY KEY,
  event_id        uuid        NOT NULL,
  interaction_id  text        NOT NULL,
  task_id         text        NOT NULL,
  model_version   text        NOT NULL,
  shape           text        NOT NULL,
  source_kind     text        NOT NULL,
  split_bucket    smallint    NOT NULL,
  recorded_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS trajectories_newest_by_task ON trajectories (task_id, model_version, global_position);

-- Running counts per model version, task, intake and split bucket (buckets from 50 up share one
-- row: no task holds out more than half), and each count as it stood when the task's newest round
-- ended: what a round can still learn from is the difference, a handful of rows per task whatever
-- the length of the log.
CREATE TABLE IF NOT EXISTS trajectory_counts (
  model_version     text     NOT NULL,
  task_id           text     NOT NULL,
  source_kind       text     NOT NULL,
  split_bucket      smallint NOT NULL,
  recorded          bigint   NOT NULL,
  at_last_round_end bigint   NOT NULL DEFAULT 0,
  PRIMARY KEY (task_id, model_version, source_kind, split_bucket)
);

-- The task of each round (from RoundStarted), so that its end moves only that task's counts.
CREATE TABLE IF NOT EXISTS trajectory_rounds (
  round_id text PRIMARY KEY,
  task_id  text NOT NULL
);

-- The newest round end folded per task ('*': a round from before tasks, which ended every task's).
CREATE TABLE IF NOT EXISTS trajectory_last_round (
  task_id   text        PRIMARY KEY,
  round_id  text        NOT NULL,
  ended_at  timestamptz NOT NULL
);

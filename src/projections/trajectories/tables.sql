-- One row per interaction: the task and model version that produced it (the name the log gave,
-- and the oeld version it resolves to; NULL while no version or alias has that name), its shape
-- (game turns or chat messages), its intake, its split bucket (held-out.ts), and where its event
-- is. Rounds find a task's newest trajectories of a version here and read their events from the store.
-- Keyed by global position: rows arrive in increasing order, so inserts append to the key's index.
CREATE TABLE IF NOT EXISTS trajectories (
  global_position bigint      PRIMARY KEY,
  event_id        uuid        NOT NULL,
  interaction_id  text        NOT NULL,
  task_id         text        NOT NULL,
  logged_version  text        NOT NULL,
  model_version   text,
  shape           text        NOT NULL,
  source_kind     text        NOT NULL,
  split_bucket    smallint    NOT NULL,
  recorded_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS trajectories_newest_by_task ON trajectories (task_id, model_version, global_position);
CREATE INDEX IF NOT EXISTS trajectories_unresolved ON trajectories (logged_version) WHERE model_version IS NULL;

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

-- What a logged model name resolves to: every published version's own name, and the aliases
-- (a fixed version, or whichever version is active when the interaction is folded).
CREATE TABLE IF NOT EXISTS trajectory_names (
  name           text    PRIMARY KEY,
  version        text,
  follows_active boolean NOT NULL
);

-- The active version, for names that follow it (one row).
CREATE TABLE IF NOT EXISTS trajectory_active (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  version  text    NOT NULL
);

-- Interactions whose model name resolves to no version, per task and name: never learned from
-- until an alias maps the name (then they move to trajectory_counts).
CREATE TABLE IF NOT EXISTS unresolved_interactions (
  task_id        text   NOT NULL,
  logged_version text   NOT NULL,
  recorded       bigint NOT NULL,
  PRIMARY KEY (task_id, logged_version)
);

-- Training rounds: one row per round, from RoundStarted to RoundCompleted, RoundSkipped or RoundFailed.
CREATE TABLE IF NOT EXISTS rounds (
  round_id           text        PRIMARY KEY,
  task_id            text,
  status             text        NOT NULL,
  trigger            text        NOT NULL,
  base_model_version text        NOT NULL,
  knowledge_version  bigint      NOT NULL,
  config             jsonb       NOT NULL,
  started_at         timestamptz NOT NULL,
  finished_at        timestamptz,
  new_model_version  text,
  steps              integer,
  loss_summary       jsonb,
  evaluation         jsonb,
  failed_stage       text,
  error              text,
  curve              jsonb,
  seconds            jsonb,
  inputs             jsonb,
  skip_reason        text
);

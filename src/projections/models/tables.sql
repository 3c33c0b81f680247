-- The model registry: every published version with its artifact, and every activation.
CREATE TABLE IF NOT EXISTS model_versions (
  version         text        PRIMARY KEY,
  path            text        NOT NULL,
  sha256          text        NOT NULL,
  base_version    text,
  round_id        text,
  event_id        uuid        NOT NULL,
  global_position bigint      NOT NULL,
  published_at    timestamptz NOT NULL,
  -- When the retention policy removed its files (ModelVersionPruned), and their size then.
  pruned_at       timestamptz,
  pruned_bytes    bigint
);

-- The active version is the newest activation; rollbacks add rows, never remove them.
CREATE TABLE IF NOT EXISTS model_activations (
  global_position  bigint      PRIMARY KEY,
  version          text        NOT NULL,
  reason           text        NOT NULL,
  previous_version text,
  event_id         uuid        NOT NULL,
  activated_at     timestamptz NOT NULL
);

-- Names a serving stack logs, mapped to versions: the newest mapping of each name (the log has all).
CREATE TABLE IF NOT EXISTS model_aliases (
  alias           text        PRIMARY KEY,
  version         text,
  follows_active  boolean     NOT NULL,
  set_by          text        NOT NULL,
  global_position bigint      NOT NULL,
  set_at          timestamptz NOT NULL
);

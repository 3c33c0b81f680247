-- Items with the knowledge versions they belong to: version v contains an item row when
-- valid_from <= v and (valid_to is null or valid_to > v). A rollback that restores an item adds
-- a new row for it, so every version's content stays readable.
CREATE TABLE IF NOT EXISTS knowledge_items (
  item_id                text    NOT NULL,
  valid_from             bigint  NOT NULL,
  valid_to               bigint,
  pool_model_version     text    NOT NULL,
  pool_slot              integer NOT NULL,
  seq                    bigint  NOT NULL,
  text                   text    NOT NULL,
  tokens                 integer NOT NULL,
  source_interaction_ids jsonb   NOT NULL,
  event_id               uuid    NOT NULL,
  pool_task_id           text    NOT NULL,
  PRIMARY KEY (item_id, valid_from)
);
CREATE INDEX IF NOT EXISTS knowledge_items_open ON knowledge_items (valid_to, seq);

-- One row per knowledge version: what changed it and a content hash of the whole base.
CREATE TABLE IF NOT EXISTS knowledge_versions (
  version         bigint      PRIMARY KEY,
  event_id        uuid        NOT NULL,
  global_position bigint      NOT NULL,
  change          text        NOT NULL,
  rolled_back_to  bigint,
  item_count      integer     NOT NULL,
  tokens          integer     NOT NULL,
  pool_count      integer     NOT NULL,
  content_hash    text        NOT NULL,
  recorded_at     timestamptz NOT NULL
);

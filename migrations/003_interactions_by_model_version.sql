-- The trainer reads the interactions of one model version (the round's trajectories, the
-- threshold count); without this index both scan the whole log.
CREATE INDEX IF NOT EXISTS events_interactions_by_model_version
  ON events ((data->>'modelVersion'), global_position)
  WHERE type = 'InteractionRecorded';

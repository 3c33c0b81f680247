-- Rounds and the trigger read a task's trajectories of a version from the trajectories projection,
-- not from the log, so nothing reads interactions by model version any more, and every append
-- paid for this index (PostgreSQL's CPU per appended interaction: about 9% of it).
DROP INDEX IF EXISTS events_interactions_by_model_version;

-- A dead letter is recorded once: the same input from the same place (a file line imported again,
-- a simulated episode retried) finds its key and adds nothing.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS dedupe_key text;
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_dedupe_key ON dead_letters (dedupe_key);
-- Why the copy to the dead-letter topic failed (the broker refused it), when it did; NULL otherwise.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS copy_error text;

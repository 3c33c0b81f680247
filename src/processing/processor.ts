/**
 * A checkpointed processor: it handles the events after its checkpoint, a batch at a time, and
 * moves the checkpoint by compare-and-set. The projectors (tables, in the batch's transaction) and
 * the outbox relay (a Kafka topic, at least once) are processors, run by one runner.
 */
export interface Processor {
  readonly name: string;
  /** Handles the next batch; `applied`: events handled, `caughtUp`: nothing more to read now. */
  step(): Promise<{ applied: number; caughtUp: boolean }>;
}

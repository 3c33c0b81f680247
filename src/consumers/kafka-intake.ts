import type { Logger } from '../log.ts';
import type { Metrics } from '../http/metrics.ts';
import type { EventStore } from '../store/event-store.ts';
import { backpressureDecision } from './backpressure.ts';
import { RateWindow } from './rate-window.ts';
import { storedNextOffsets } from './kafka-offsets.ts';
import { isTransientDatabaseError } from '../db/transient-errors.ts';
import { ingestBatch, type InteractionsConsumerOptions } from './interactions-consumer.ts';
import type { BatchConsumer, Publisher } from './message-bus.ts';

export interface IntakeStatus { paused: boolean; assigned: { topic: string; partition: number }[]; lagEvents: number; appendedPerSecond: number }

/** Longest wait before restarting a consumer the Kafka client gave up on (the wait doubles from restartDelayMs). */
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * The Kafka side of ingestion: a consumer-group member feeding ingestBatch, with metrics and
 * backpressure (pausing from outside the handler when the projections fall behind).
 */
export class KafkaIntake {
  private timer?: NodeJS.Timeout;
  private lagTimer?: NodeJS.Timeout;
  private assigned: { topic: string; partition: number }[] = [];
  private lagEvents = 0;
  private readonly appended = new RateWindow();
  private stopped = false;
  private restartTimer?: NodeJS.Timeout;
  private restartDelayMs: number;

  constructor(
    private readonly store: EventStore,
    private readonly consumer: BatchConsumer,
    private readonly publisher: Publisher,
    private readonly options: InteractionsConsumerOptions & { pauseLagEvents: number; topic: string; restartDelayMs?: number },
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** How far the slowest projection is behind the head, in events. */
    private readonly lag: () => Promise<number>,
  ) {
    this.restartDelayMs = options.restartDelayMs ?? 1000;
  }

  onRebalance(assigned: { topic: string; partition: number }[]): void {
    this.assigned = assigned;
    // Partitions this member no longer owns must not keep reporting their last lag.
    this.metrics.ingestLag.reset();
    this.metrics.ingestRebalances.inc();
    this.log.info({ assigned: assigned.map((a) => a.partition) }, 'consumer group rebalanced');
  }

  /**
   * kafkajs restarts its consumer after a retriable error, and gives up after a non-retriable one
   * (an INVALID_REQUEST answer to SyncGroup during a rebalance, for one). A daemon that gave up too
   * would stay up and consume nothing; so oeld restarts the consumer itself, waiting 1 s, then
   * twice as long each time up to 30 s, and from 1 s again once a batch has gone through.
   */
  onCrash(error: Error, restarting: boolean): void {
    this.metrics.ingestCrashes.inc();
    this.log.error({ err: error, restarting }, 'Kafka consumer crashed');
    if (!restarting && !this.stopped) this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(MAX_RESTART_DELAY_MS, delay * 2);
    this.log.warn({ inMs: delay }, 'the Kafka client gave up on the consumer: restarting it');
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (this.stopped) return;
      this.consumer.start(this.handleBatch).then(
        () => this.log.info('Kafka consumer restarted'),
        (err) => { this.log.error({ err }, 'Kafka consumer restart failed'); if (!this.stopped) this.scheduleRestart(); },
      );
    }, delay);
  }

  async start(): Promise<void> {
    await this.publisher.connect();
    await this.consumer.start(this.handleBatch);
    this.timer = setInterval(() => { void this.checkBackpressure(); }, 1000);
    this.lagTimer = setInterval(() => { void this.refreshLag(); }, 5000);
  }

  private readonly handleBatch: Parameters<BatchConsumer['start']>[0] = async (batch, heartbeat) => {
    const end = this.metrics.ingestBatchSeconds.startTimer();
    const r = await this.ingestWhileDatabaseAway(batch, heartbeat);
    end();
    this.metrics.ingestConsumed.inc(r.consumed);
    this.metrics.ingestAppended.inc(r.appended);
    this.appended.add(r.appended);
    if (r.alreadyStored) this.metrics.ingestDeduplicated.inc({ by: 'offset' }, r.alreadyStored);
    if (r.duplicates) this.metrics.ingestDeduplicated.inc({ by: 'event_id' }, r.duplicates);
    for (const d of r.deadLettered) this.metrics.ingestDeadLettered.inc({ reason: d.kind });
    if (r.skippedOffsets) {
      this.metrics.ingestOffsetsSkipped.inc(r.skippedOffsets);
      this.log.error({ partition: batch.partition, firstDelivered: batch.messages[0]!.offset, missing: r.skippedOffsets },
        'offsets skipped: messages were deleted (retention) or compacted before oeld consumed them; intake is falling behind the topic retention');
    }
    if (r.deadLettered.length) this.log.warn({ partition: batch.partition, deadLettered: r.deadLettered }, 'bad messages dead-lettered');
    if (r.copiesRefused.length) {
      this.metrics.ingestDeadLetterCopiesRefused.inc(r.copiesRefused.length);
      this.log.error({ partition: batch.partition, topic: this.options.deadLetterTopic, refused: r.copiesRefused },
        'the dead-letter topic refused copies: the dead letters are in the dead_letters table only (column copy_error)');
    }
    const last = BigInt(batch.messages.at(-1)!.offset);
    this.metrics.ingestLag.set({ partition: String(batch.partition) }, Math.max(0, Number(BigInt(batch.highWatermark) - last - 1n)));
    this.restartDelayMs = this.options.restartDelayMs ?? 1000;
  };

  /**
   * ingestBatch, tried again while the database is away (a restart, a failover, a silent network):
   * every 100 ms, doubling to 1 s, heartbeating the group throughout so the partition stays this
   * member's. The batch then commits within about a second of the database's return, with no
   * consumer restart and no rebalance. Other errors go to kafkajs as before.
   */
  private async ingestWhileDatabaseAway(batch: Parameters<typeof ingestBatch>[3], heartbeat: () => Promise<void>) {
    for (let failures = 0; ; failures++) {
      // A query may wait on a silent network up to OELD_DB_QUERY_TIMEOUT_MS, longer than the
      // group's session: heartbeat meanwhile (kafkajs sends one per heartbeat interval at most).
      const beating = setInterval(() => { heartbeat().catch(() => {}); }, 1000);
      try {
        const r = await ingestBatch(this.store, this.publisher, this.options, batch);
        if (failures) this.log.info({ partition: batch.partition, attempts: failures + 1 }, 'the database is back: batch stored');
        return r;
      } catch (err) {
        if (this.stopped || !isTransientDatabaseError(err)) throw err;
        this.metrics.ingestBatchRetries.inc();
        if (failures === 0) this.log.warn({ err, partition: batch.partition }, 'the database is away: retrying the batch until it returns');
        await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** failures)));
        await heartbeat();
      } finally {
        clearInterval(beating);
      }
    }
  }

  private async checkBackpressure(): Promise<void> {
    try {
      this.lagEvents = await this.lag();
      const decision = backpressureDecision(this.consumer.paused, this.lagEvents, this.options.pauseLagEvents);
      if (decision === 'pause') { this.consumer.pause(); this.log.warn({ lagEvents: this.lagEvents }, 'projections behind: Kafka intake paused'); }
      if (decision === 'resume') { this.consumer.resume(); this.log.info({ lagEvents: this.lagEvents }, 'projections caught up: Kafka intake resumed'); }
      this.metrics.ingestPausedPartitions.set(this.consumer.paused ? this.assigned.length : 0);
    } catch (err) {
      this.log.warn({ err }, 'backpressure check failed');
    }
  }

  /**
   * Lag of the assigned partitions from the brokers' high-water marks and the offsets stored with
   * the events, refreshed on a timer: a consumer that stalls shows growing lag even though no batch
   * arrives to update it.
   */
  private async refreshLag(): Promise<void> {
    try {
      const mine = this.assigned.filter((a) => a.topic === this.options.topic);
      if (mine.length === 0) return;
      const high = await this.consumer.highWatermarks();
      const stored = await storedNextOffsets(this.store.sql, this.options.groupId, this.options.topic);
      for (const { partition } of mine) {
        const h = high.get(partition);
        if (h === undefined) continue;
        this.metrics.ingestLag.set({ partition: String(partition) }, Math.max(0, Number(h - (stored.get(partition) ?? 0n))));
      }
    } catch (err) {
      this.log.warn({ err }, 'consumer lag refresh failed');
    }
  }

  status(): IntakeStatus {
    return { paused: this.consumer.paused, assigned: this.assigned, lagEvents: this.lagEvents, appendedPerSecond: this.appended.perSecond() };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearInterval(this.timer);
    clearInterval(this.lagTimer);
    await this.consumer.stop();
  }
}

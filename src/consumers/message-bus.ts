/**
 * The small interface oeld needs from a message broker, so that kafkajs can be replaced without
 * touching ingestion or publication. Offsets are decimal strings (Kafka offsets are int64).
 */
export interface InboundMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

export interface InboundBatch {
  topic: string;
  partition: number;
  messages: InboundMessage[];
  /** The partition's high-water mark when the batch was fetched (for lag). */
  highWatermark: string;
}

export interface OutboundMessage {
  key: string | Buffer | null;
  value: string | Buffer | null;
  headers: Record<string, string>;
}

/** Called with one partition's batch; resolves when the batch is durable. Only then are its offsets committed. */
export type BatchHandler = (batch: InboundBatch, heartbeat: () => Promise<void>) => Promise<void>;

export interface ConsumerEvents {
  onRebalance?: (assigned: { topic: string; partition: number }[]) => void;
  onCrash?: (error: Error, restarting: boolean) => void;
}

export interface BatchConsumer {
  /** Joins the group and processes batches until stop(); one batch at a time per partition. */
  start(handler: BatchHandler): Promise<void>;
  /** Stops fetching on every assigned partition (from outside the handler); resume() undoes it. */
  pause(): void;
  resume(): void;
  readonly paused: boolean;
  /** The topic's high-water mark per partition, asked of the brokers (for lag while nothing arrives). */
  highWatermarks(): Promise<Map<number, bigint>>;
  /** Leaves the group; a batch in flight is abandoned without committing its offsets. */
  stop(): Promise<void>;
}

export interface Publisher {
  /** Connects ahead of the first send (a dead letter must not wait for a connection mid-batch). */
  connect(): Promise<void>;
  /** Sends messages to a topic; resolves once the broker acknowledged them. */
  send(topic: string, messages: OutboundMessage[]): Promise<void>;
  close(): Promise<void>;
}

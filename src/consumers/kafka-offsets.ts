import type { Queryable } from '../db/sql.ts';

/**
 * Locks this partition's stored offset for the transaction and returns it: the next offset not
 * yet in the event store. Holding the row lock means a stale group member processing the same
 * partition during a rebalance waits, then sees the new offset and skips what is already in.
 */
export async function lockNextOffset(tx: Queryable, groupId: string, topic: string, partition: number): Promise<bigint> {
  await tx.query(
    `INSERT INTO kafka_consumer_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, 0)
     ON CONFLICT DO NOTHING`, [groupId, topic, partition]);
  const { rows } = await tx.query<{ next_offset: number | string }>(
    'SELECT next_offset::text AS next_offset FROM kafka_consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3 FOR UPDATE',
    [groupId, topic, partition]);
  return BigInt(rows[0]!.next_offset);
}

export async function storeNextOffset(tx: Queryable, groupId: string, topic: string, partition: number, next: bigint): Promise<void> {
  await tx.query(
    `UPDATE kafka_consumer_offsets SET next_offset = $4::bigint, updated_at = clock_timestamp()
      WHERE group_id = $1 AND topic = $2 AND partition = $3`, [groupId, topic, partition, next.toString()]);
}

/** Next offsets per partition as stored with the events (what the store holds, whatever Kafka says). */
export async function storedNextOffsets(q: Queryable, groupId: string, topic: string): Promise<Map<number, bigint>> {
  const { rows } = await q.query<{ partition: number; next_offset: string }>(
    'SELECT partition, next_offset::text AS next_offset FROM kafka_consumer_offsets WHERE group_id = $1 AND topic = $2', [groupId, topic]);
  return new Map(rows.map((r) => [Number(r.partition), BigInt(r.next_offset)]));
}

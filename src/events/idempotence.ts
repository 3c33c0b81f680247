import { canonicalJson } from './canonical-json.ts';
import type { EventType } from './schemas.ts';

/**
 * What makes two events with one id the same event: their type, schema version and data, less
 * provenance. An interaction's `source` says where oeld's intake found it (a topic offset, a file
 * line), so the same record delivered again at another offset or line is a repeat, not a conflict.
 */
export function idempotenceKey(type: EventType | string, schemaVersion: number, data: unknown): string {
  let content = data;
  if (type === 'InteractionRecorded' && data !== null && typeof data === 'object' && !Array.isArray(data)) {
    const { source: _provenance, ...rest } = data as Record<string, unknown>;
    content = rest;
  }
  return `${type}/${schemaVersion}/${canonicalJson(content)}`;
}

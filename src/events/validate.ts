import type { z } from 'zod';
import { preview } from './preview.ts';
import { EVENT_SCHEMAS, type EventDataMap, type EventType } from './schemas.ts';

/** Rejected input: the message names the field and the offending value. */
export class ValidationError extends Error {
  constructor(readonly field: string, readonly reason: string, readonly value?: unknown) {
    super(`${field}: ${reason}${value === undefined ? '' : ` (got ${preview(value)})`}`);
    this.name = 'ValidationError';
  }
}


function pathOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), '');
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/**
 * PostgreSQL's jsonb cannot hold U+0000 and rejects lone UTF-16 surrogates, which JSON.parse
 * accepts. Reject both here, with the field named, instead of failing the whole batch in SQL.
 */
export function findUnstorableString(value: unknown, path = ''): { field: string; reason: string } | undefined {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return { field: path || '(root)', reason: 'contains U+0000, which PostgreSQL cannot store' };
    if (!value.isWellFormed()) return { field: path || '(root)', reason: 'contains a lone UTF-16 surrogate (not valid Unicode)' };
    return undefined;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const r = findUnstorableString(value[i], `${path}[${i}]`);
      if (r) return r;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const keyProblem = findUnstorableString(k, `${path ? `${path}.` : ''}${k}`);
      if (keyProblem) return { field: keyProblem.field, reason: `key ${keyProblem.reason}` };
      const r = findUnstorableString(v, path ? `${path}.${k}` : k);
      if (r) return r;
    }
  }
  return undefined;
}

export function schemaFor(type: string, schemaVersion: number): z.ZodType {
  const byVersion = (EVENT_SCHEMAS as Record<string, Record<number, z.ZodType>>)[type];
  if (!byVersion) throw new ValidationError('type', `unknown event type; known: ${Object.keys(EVENT_SCHEMAS).join(', ')}`, type);
  const schema = byVersion[schemaVersion];
  if (!schema) throw new ValidationError('schemaVersion', `unknown schema version for ${type}; known: ${Object.keys(byVersion).join(', ')}`, schemaVersion);
  return schema;
}

/** Parses event data against its schema; throws ValidationError naming the first bad field. */
export function validateEventData<T extends EventType>(type: T, schemaVersion: number, data: unknown): EventDataMap[T] {
  const schema = schemaFor(type, schemaVersion);
  const result = schema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = `data${issue.path.length ? '.' : ''}${pathOf(issue.path)}`;
    throw new ValidationError(field, issue.message, valueAt(data, issue.path));
  }
  const bad = findUnstorableString(result.data, 'data');
  if (bad) throw new ValidationError(bad.field, bad.reason);
  return result.data as EventDataMap[T];
}

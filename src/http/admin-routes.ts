import { z } from 'zod';
import type { Sql } from '../db/sql.ts';
import { preview } from '../events/preview.ts';
import { KnowledgeBaseRolledBackV1, ModelVersionActivatedV1 } from '../events/schemas.ts';
import { AliasError, setAlias } from '../operations/aliases.ts';
import { publishFolder, PublishError } from '../operations/publish-folder.ts';
import { rollbackKnowledge, rollbackModel, RollbackError } from '../operations/rollback.ts';
import { readAliases } from '../projections/models/model-projection.ts';
import { readStatus } from '../operations/status.ts';
import type { ReplayOptions, ReplayResult } from '../projections/replay.ts';
import type { EventStore } from '../store/event-store.ts';
import type { Task } from '../tasks/task.ts';
import { HttpError, type Route } from './server.ts';

interface AdminDeps {
  sql: Sql;
  store: EventStore;
  leader: () => boolean;
  extraStatus: () => Record<string, unknown>;
  /** The configured tasks, for the per-task counts of the status. */
  tasks?: readonly Task[];
  replay: (until?: Pick<ReplayOptions, 'untilPosition' | 'untilTime'>) => Promise<ReplayResult>;
  /** Where published folders are copied (<data dir>/artifacts). */
  artifactRoot: string;
  /** The manual round trigger; undefined when the learning loop is off. */
  requestRound?: (taskId?: string) => Promise<{ start: boolean; reason: string; taskId?: string }>;
}

// The fields an event will carry are checked by that event's own schemas, as input from anywhere is.
const RollbackBody = z.object({
  knowledge: KnowledgeBaseRolledBackV1.shape.toVersion.optional(),
  model: ModelVersionActivatedV1.shape.version.optional(),
  reason: z.string().max(2000).refine((r) => !r.includes('\u0000') && r.isWellFormed(), 'must not contain U+0000 or lone surrogates').optional(),
}).strict().refine((b) => (b.knowledge === undefined) !== (b.model === undefined), { message: 'give exactly one of knowledge (a version number) or model (a version name)' });
const AliasBody = z.object({
  alias: z.string(), version: z.string().optional(), followsActive: z.literal(true).optional(), reason: z.string().max(2000).optional(),
}).strict();
const PublishBody = z.object({ folder: z.string().min(1).max(4096), version: z.string(), activate: z.boolean().optional() }).strict();
const RoundBody = z.object({ task: z.string().min(1).max(200).optional() }).strict();
const ReplayBody = z.object({ untilPosition: z.number().int().min(0).optional(), untilTime: z.iso.datetime({ offset: true }).optional() }).strict();

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new HttpError(400, `${i.path.join('.') || 'body'}: ${i.message}${'input' in i && i.input !== undefined ? ` (got ${preview(i.input)})` : ''}`);
  }
  return r.data;
}

/** The admin API: status, rollback, publication of a folder, aliases, replay, manual round. Mounted behind the bearer token. */
export function createAdminRoutes(d: AdminDeps): Route[] {
  return [
    { method: 'GET', path: '/admin/status', admin: true, handle: async () => ({ status: 200, body: { leader: d.leader(), ...(await readStatus(d.sql, d.sql.kind, d.tasks ?? [])), ...d.extraStatus() } }) },
    {
      method: 'POST', path: '/admin/rollback', admin: true, handle: async (body) => {
        const b = parse(RollbackBody, body);
        try {
          const r = b.knowledge !== undefined ? await rollbackKnowledge(d.store, b.knowledge, b.reason) : await rollbackModel(d.store, b.model!);
          return { status: 202, body: r };
        } catch (err) {
          if (err instanceof RollbackError) throw new HttpError(409, err.message);
          throw err;
        }
      },
    },
    {
      method: 'POST', path: '/admin/models', admin: true, handle: async (body) => {
        const b = parse(PublishBody, body);
        try {
          const r = await publishFolder(d.store, d.artifactRoot, b.folder, b.version, { activate: b.activate === true, reason: 'published' });
          return { status: 201, body: { version: b.version, ...r } };
        } catch (err) {
          if (err instanceof PublishError) throw new HttpError(409, err.message);
          throw err;
        }
      },
    },
    { method: 'GET', path: '/admin/aliases', admin: true, handle: async () => ({ status: 200, body: await readAliases(d.sql) }) },
    {
      method: 'POST', path: '/admin/aliases', admin: true, handle: async (body) => {
        const b = parse(AliasBody, body);
        try {
          const r = await setAlias(d.store, { ...b, setBy: 'operator' });
          return { status: r.changed ? 201 : 200, body: r };
        } catch (err) {
          if (err instanceof AliasError) throw new HttpError(409, err.message);
          throw err;
        }
      },
    },
    {
      method: 'POST', path: '/admin/replay', admin: true, handle: async (body) => {
        const b = parse(ReplayBody, body);
        if (!d.leader()) throw new HttpError(409, 'this daemon is not the leader; send the replay to the leader');
        const until = b.untilPosition !== undefined || b.untilTime !== undefined
          ? { untilPosition: b.untilPosition, untilTime: b.untilTime ? new Date(b.untilTime) : undefined } : undefined;
        return { status: 200, body: await d.replay(until) };
      },
    },
    {
      method: 'POST', path: '/admin/rounds', admin: true,
      handle: async (body) => {
        const b = parse(RoundBody, body ?? {});
        if (!d.requestRound) throw new HttpError(409, 'the learning loop is off (OELD_LEARNING=false)');
        const decision = await d.requestRound(b.task);
        // 202: the round runs in the background; 409: it could not start now (the reason says why).
        return { status: decision.start ? 202 : 409, body: decision };
      },
    },
  ];
}

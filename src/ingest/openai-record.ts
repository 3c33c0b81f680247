/**
 * A logged record as oeld's interaction fields. oeld's own records (interactionId, taskId,
 * modelVersion, messages or turns, outcome) pass as they are; what OpenAI-style APIs and gateways
 * log is mapped without losing anything:
 *
 * - the conversation from `messages`, or from `request.messages` (a request/response pair);
 * - the reply from `choices[0].message` or `response.choices[0].message`, appended to it;
 * - the model from `modelVersion`, else the response's `model` (the model that answered), else
 *   the request's;
 * - the interaction id from `interactionId`, else the response's `id` (`chatcmpl-...`), else a
 *   record `id` that is not a UUID, else a hash of the record's bytes;
 * - every other field kept in `extra` as given, and in `mapped` where each moved field came from.
 *
 * A UUID `id` stays the event id, as in oeld's own records. Pure.
 */
import { createHash } from 'node:crypto';
import { isUuid } from '../events/ids.ts';

export interface NormalisedRecord {
  /** The event id the record asks for (an `id` that is a UUID), if any. */
  eventId?: unknown;
  schemaVersion?: unknown;
  /** The record's own `source` field. */
  claimedSource?: unknown;
  data: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The interaction id of a record that names none: a hash of its bytes (the same bytes twice are one interaction). */
export const derivedInteractionId = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}`;

export function normaliseRecord(record: Record<string, unknown>, bytes: Buffer): NormalisedRecord {
  const { id, schemaVersion, source, interactionId, taskId, modelVersion, turns, messages, outcome, ...rest } = record;
  const extra: Record<string, unknown> = { ...rest };
  const mapped: Record<string, string> = {};
  const request = isObject(extra.request) ? { ...extra.request } : undefined;
  const response = isObject(extra.response) ? { ...extra.response } : undefined;
  if (request) extra.request = request;
  if (response) extra.response = response;

  let conversation = messages;
  if (conversation === undefined && turns === undefined && request && Array.isArray(request.messages)) {
    conversation = request.messages;
    delete request.messages;
    mapped.messages = 'request.messages';
  }

  // The reply: the first choice's message, unless the conversation already ends with it.
  const [choicesPath, holder] = response && Array.isArray(response.choices) ? ['response.choices', response] as const
    : Array.isArray(extra.choices) ? ['choices', extra] as const : [undefined, undefined];
  if (holder && choicesPath && Array.isArray(conversation)) {
    const choices = [...(holder.choices as unknown[])];
    const first = choices[0];
    if (isObject(first) && isObject(first.message) && JSON.stringify(conversation.at(-1)) !== JSON.stringify(first.message)) {
      mapped[`messages[${conversation.length}]`] = `${choicesPath}[0].message`;
      conversation = [...conversation, first.message];
      const { message: _moved, ...restOfChoice } = first;
      choices[0] = restOfChoice;
      holder.choices = choices;
    }
  }

  let model = modelVersion;
  if (model === undefined) {
    if (response && typeof response.model === 'string') { model = response.model; delete response.model; mapped.modelVersion = 'response.model'; }
    else if (typeof extra.model === 'string') { model = extra.model; delete extra.model; mapped.modelVersion = 'model'; }
    else if (request && typeof request.model === 'string') { model = request.model; delete request.model; mapped.modelVersion = 'request.model'; }
  }

  let interaction = interactionId;
  let eventId: unknown = id;
  if (typeof id === 'string' && !isUuid(id)) {
    // A record's own id that is not a UUID (`chatcmpl-...`) names the interaction, or is kept.
    eventId = undefined;
    if (interaction === undefined) { interaction = id; mapped.interactionId = 'id'; } else extra.id = id;
  }
  if (interaction === undefined && response && typeof response.id === 'string' && response.id.length > 0) {
    interaction = response.id;
    delete response.id;
    mapped.interactionId = 'response.id';
  }
  if (interaction === undefined) { interaction = derivedInteractionId(bytes); mapped.interactionId = 'sha256 of the record'; }

  const data: Record<string, unknown> = { interactionId: interaction, modelVersion: model };
  if (taskId !== undefined) data.taskId = taskId;
  if (turns !== undefined) data.turns = turns;
  if (conversation !== undefined) data.messages = conversation;
  if (outcome !== undefined) data.outcome = outcome;
  if (Object.keys(extra).length) data.extra = extra;
  if (Object.keys(mapped).length) data.mapped = mapped;
  return { eventId, schemaVersion, claimedSource: source, data };
}

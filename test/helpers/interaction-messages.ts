import { uuidFromKey } from '../../src/events/ids.ts';

/** A valid interaction message; half carry an explicit event id, half rely on the derived one. */
export function goodMessage(i: number): string {
  return JSON.stringify({
    ...(i % 2 === 0 ? { id: uuidFromKey(`kafka-msg-${i}`) } : {}),
    interactionId: `k-${i}`, modelVersion: 'v0', taskId: 'frozenlake',
    turns: [{ prompt: `board ${i} 'quote' "dq" ; DROP TABLE events; --`, response: 'go [down]', action: 'down' }],
    outcome: { success: i % 4 === 0, reward: i % 4 === 0 ? 1 : 0 },
  });
}

/** Every kind of bad input a consumer must dead-letter, each with the reason kind expected. */
export function badMessages(tag: string, maxBytes: number): { value: Buffer | string | null; kind: string }[] {
  return [
    { value: '{"interactionId": ', kind: 'invalid_json' },
    { value: JSON.stringify({ interactionId: `${tag}-w`, modelVersion: 'v0', taskId: 7, turns: [] }), kind: 'invalid_field' },
    { value: JSON.stringify({ interactionId: `${tag}-m`, modelVersion: 'v0' }), kind: 'invalid_field' },
    { value: JSON.stringify({ schemaVersion: 99, interactionId: `${tag}-s`, modelVersion: 'v0', taskId: 't', messages: [{ role: 'user', content: 'x' }] }), kind: 'unknown_schema' },
    { value: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), kind: 'invalid_utf8' },
    { value: JSON.stringify({ interactionId: `${tag}-big`, modelVersion: 'v0', taskId: 't', messages: [{ role: 'user', content: 'x'.repeat(maxBytes) }] }), kind: 'oversize' },
    { value: JSON.stringify({ interactionId: `${tag}-nul`, modelVersion: 'v0', taskId: 'a\u0000b', messages: [{ role: 'user', content: 'x' }] }), kind: 'invalid_field' },
    { value: '[1,2,3]', kind: 'not_an_object' },
    { value: null, kind: 'invalid_json' },
  ];
}

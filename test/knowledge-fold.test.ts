import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RecordedEvent } from '../src/events/envelope.ts';
import { emptyKnowledgeState, foldExtracted, foldRetracted, foldRolledBack, EMPTY_KNOWLEDGE_HASH } from '../src/projections/knowledge/fold-knowledge.ts';
import { accumulate, renderPool, type KnowledgeItem } from '../src/projections/knowledge/knowledge-base.ts';
import { approximateTokens } from '../src/projections/knowledge/tokens.ts';

let pos = 0;
function recorded<T extends RecordedEvent['type']>(type: T, data: RecordedEvent<T>['data']): RecordedEvent<T> {
  pos++;
  return { id: `00000000-0000-4000-8000-${String(pos).padStart(12, '0')}`, type, schemaVersion: 1, streamId: 'knowledge', streamPosition: pos,
    globalPosition: pos, transactionId: String(pos), data, occurredAt: new Date(0), recordedAt: new Date(0), causationId: null, correlationId: null };
}
const extracted = (model: string, slot: number, budget: number, items: [string, string, number][]) =>
  recorded('KnowledgeExtracted', { extractingModelVersion: model, poolSlot: slot, tokenBudget: budget, sourceInteractionIds: ['i1'],
    items: items.map(([id, text, tokens]) => ({ id, text, tokens })) });

describe('knowledge accumulation (pure)', () => {
  it('appends, then drops the oldest items until the pool fits its budget', () => {
    const item = (id: string, tokens: number): KnowledgeItem => ({ itemId: id, taskId: '', modelVersion: 'v0', slot: 0, seq: 0, text: id, tokens, sourceInteractionIds: [], eventId: 'e' });
    const pool = { taskId: '', modelVersion: 'v0', slot: 0, items: [item('a', 4), item('b', 4)] };
    const dropped = accumulate(pool, [item('c', 5)], 10);
    assert.deepEqual(dropped.map((i) => i.itemId), ['a']);
    assert.deepEqual(pool.items.map((i) => i.itemId), ['b', 'c']);
    assert.equal(renderPool(pool), '- EXPERIENCE ITEM: b\n- EXPERIENCE ITEM: c');
  });

  it('keeps one pool per (extracting model version, slot) and versions every change', () => {
    const s = emptyKnowledgeState();
    const c1 = foldExtracted(s, extracted('v0', 0, 100, [['a', 'holes end the game', 4]]))!;
    const c2 = foldExtracted(s, extracted('v0', 1, 100, [['b', 'G is the goal', 4]]))!;
    const c3 = foldExtracted(s, extracted('v1', 0, 100, [['c', 'walls block moves', 3]]))!;
    assert.deepEqual([c1.record.version, c2.record.version, c3.record.version], [1, 2, 3]);
    assert.deepEqual([...s.pools.keys()].sort(), ['v0#0', 'v0#1', 'v1#0']);
    assert.equal(c3.record.tokens, 11);
    assert.equal(c3.record.itemCount, 3);
    assert.notEqual(c1.record.contentHash, c2.record.contentHash);
  });

  it('keeps each task\'s pools apart: two tasks extracting with one version never share a pool', () => {
    const s = emptyKnowledgeState();
    const game = recorded('KnowledgeExtracted', { extractingModelVersion: 'v0', taskId: 'frozenlake', poolSlot: 0, tokenBudget: 5, sourceInteractionIds: ['g1'], items: [{ id: 'g', text: 'G is the goal', tokens: 4 }] });
    const chat = recorded('KnowledgeExtracted', { extractingModelVersion: 'v0', taskId: 'support', poolSlot: 0, tokenBudget: 5, sourceInteractionIds: ['c1'], items: [{ id: 'c', text: 'refunds take 30 days', tokens: 4 }] });
    foldExtracted(s, game);
    foldExtracted(s, chat);
    assert.deepEqual([...s.pools.keys()].sort(), ['frozenlake/v0#0', 'support/v0#0']);
    assert.deepEqual([...s.pools.values()].map((p) => p.items.map((i) => i.itemId)).sort(), [['c'], ['g']], 'neither budget pushed the other task\'s item out');
  });

  it('an item over budget on arrival never enters a version; a repeated item id is ignored', () => {
    const s = emptyKnowledgeState();
    foldExtracted(s, extracted('v0', 0, 10, [['a', 'x', 6]]));
    const c = foldExtracted(s, extracted('v0', 0, 10, [['b', 'y', 3], ['c', 'z', 20]]))!;
    assert.deepEqual(c.added.map((i) => i.itemId), []);
    assert.deepEqual(c.removed, ['a']);
    assert.equal(s.pools.size, 0);
    assert.equal(c.record.contentHash, EMPTY_KNOWLEDGE_HASH);
    foldExtracted(s, extracted('v0', 0, 10, [['d', 'w', 2]]));
    assert.equal(foldExtracted(s, extracted('v0', 0, 10, [['d', 'w', 2]])), null);
  });

  it('retraction removes the item; rollback restores exactly the target content and its hash', () => {
    const s = emptyKnowledgeState();
    foldExtracted(s, extracted('v0', 0, 100, [['a', 'one', 1]]));
    const v2 = foldExtracted(s, extracted('v0', 0, 100, [['b', 'two', 1]]))!;
    const targetItems = [...s.pools.get('v0#0')!.items];
    const r = foldRetracted(s, recorded('KnowledgeItemRetracted', { itemId: 'a', reason: 'wrong' }))!;
    assert.deepEqual(r.removed, ['a']);
    foldExtracted(s, extracted('v0', 0, 100, [['c', 'three', 1]]));
    const back = foldRolledBack(s, recorded('KnowledgeBaseRolledBack', { toVersion: 2 }), targetItems);
    assert.equal(back.record.version, 5);
    assert.equal(back.record.contentHash, v2.record.contentHash);
    assert.deepEqual(back.added.map((i) => i.itemId), ['a']);
    assert.deepEqual(back.removed, ['c']);
  });

  it('counts approximate tokens as words and punctuation', () => {
    assert.equal(approximateTokens('Avoid H, go to G.'), 7);
    assert.equal(approximateTokens(''), 0);
  });
});

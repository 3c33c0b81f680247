import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rateWithInterval, wilsonInterval } from '../src/evaluation/confidence.ts';

describe('Wilson score intervals', () => {
  it('matches published values and stays inside [0, 1] at the edges', () => {
    // Reference values (Newcombe 1998, table I: 81/263 -> 0.2553 to 0.3662; 0/10 -> 0 to 0.2775).
    const a = wilsonInterval(81, 263);
    assert.ok(Math.abs(a.low - 0.2553) < 5e-4 && Math.abs(a.high - 0.3662) < 5e-4, JSON.stringify(a));
    const b = wilsonInterval(0, 10);
    assert.equal(b.low, 0);
    assert.ok(Math.abs(b.high - 0.2775) < 5e-4, JSON.stringify(b));
    const c = wilsonInterval(10, 10);
    assert.equal(c.high, 1);
    assert.ok(Math.abs(c.low - 0.7225) < 5e-4, JSON.stringify(c));
    assert.deepEqual(wilsonInterval(0, 0), { low: 0, high: 1 });
    assert.equal(rateWithInterval(64, 128), '50.0% [41.5, 58.5]');
  });

  it('refuses counts that are not a rate', () => {
    assert.throws(() => wilsonInterval(3, 2), /k=3, n=2/);
    assert.throws(() => wilsonInterval(-1, 2), /k=-1/);
    assert.throws(() => wilsonInterval(1.5, 2), /k=1.5/);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import client from 'prom-client';
import { VersionSeries } from '../src/http/version-series.ts';

describe('version-labelled metric series', () => {
  it('keep the active version and the newest few: /metrics stops growing with every round', async () => {
    const registry = new client.Registry();
    const rate = new client.Gauge({ name: 'rate', help: 'h', labelNames: ['task', 'version'] as const, registers: [registry] });
    const episodes = new client.Counter({ name: 'episodes_total', help: 'h', labelNames: ['task', 'version'] as const, registers: [registry] });
    const series = new VersionSeries();
    for (let r = 0; r <= 30; r++) {
      const version = `v${r}`;
      for (const task of ['a', 'b']) {
        rate.set({ task, version }, r / 30);
        episodes.inc({ task, version }, 8);
        series.record(rate, { task, version });
        series.record(episodes, { task, version });
      }
      series.prune(new Set(['v2']), 3);
    }
    const text = await registry.metrics();
    const versions = (name: string) => [...new Set([...text.matchAll(new RegExp(`^${name}\\{[^}]*version="(v\\d+)"`, 'gm'))].map((m) => m[1]))].sort();
    assert.deepEqual(versions('rate'), ['v2', 'v28', 'v29', 'v30']);
    assert.deepEqual(versions('episodes_total'), ['v2', 'v28', 'v29', 'v30']);
    assert.match(text, /^rate\{task="b",version="v30"\} 1$/m);
    assert.deepEqual(series.prune(new Set(), 1), ['v2', 'v28', 'v29']);
    assert.deepEqual(versions('rate'), ['v2', 'v28', 'v29', 'v30'], 'the text above was read before');
    assert.deepEqual([...new Set([...(await registry.metrics()).matchAll(/version="(v\d+)"/g)].map((m) => m[1]))], ['v30']);
  });
});

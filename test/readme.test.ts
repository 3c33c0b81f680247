import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SETTINGS } from '../src/config.ts';
import { createMetrics } from '../src/http/metrics.ts';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

function table(marker: string): string[][] {
  const m = README.match(new RegExp(`<!-- ${marker}[^>]*-->\\n([\\s\\S]*?)<!-- /${marker} -->`));
  assert.ok(m, `README has a ${marker} section`);
  return m[1]!.trim().split('\n').slice(2).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
}

describe('README stays true', () => {
  it('documents every setting with its default and meaning, and nothing else', () => {
    const rows = table('config-table');
    const expected = Object.values(SETTINGS).map((s) => [`\`${s.name}\``, s.default === undefined ? '(unset)' : `\`${s.default}\``, s.description]);
    assert.deepEqual(rows, expected);
  });

  it('documents every exported oeld_ metric with its type and labels, and nothing else', async () => {
    const metrics = createMetrics();
    const exported = (await metrics.registry.getMetricsAsJSON())
      .filter((m) => m.name.startsWith('oeld_'))
      .map((m) => {
        const labels = (metrics.registry.getSingleMetric(m.name) as unknown as { labelNames: string[] }).labelNames;
        return [`\`${m.name}\``, String(m.type), labels.join(', '), m.help];
      });
    assert.deepEqual(table('metrics-table'), exported);
  });

  it('names the two commands', () => {
    assert.match(README, /npm ci && npm start/);
    assert.match(README, /npm ci && npm test/);
  });
});

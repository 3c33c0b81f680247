// Rewrites the configuration and metrics tables of README.md from the code (test/readme.test.ts checks them).
import { readFileSync, writeFileSync } from 'node:fs';
import { SETTINGS } from '../src/config.ts';
import { createMetrics } from '../src/http/metrics.ts';

const path = new URL('../README.md', import.meta.url);
let readme = readFileSync(path, 'utf8');
const replace = (marker: string, header: string, rows: string[]) => {
  const re = new RegExp(`(<!-- ${marker}[^>]*-->\\n)[\\s\\S]*?(<!-- /${marker} -->)`);
  if (!re.test(readme)) throw new Error(`README.md has no ${marker} section`);
  readme = readme.replace(re, (_m, open: string, close: string) => `${open}${header}\n${rows.join('\n')}\n${close}`);
};
replace('config-table', '| variable | default | meaning |\n|---|---|---|',
  Object.values(SETTINGS).map((s) => `| \`${s.name}\` | ${s.default === undefined ? '(unset)' : `\`${s.default}\``} | ${s.description} |`));
const metrics = createMetrics();
const rows = (await metrics.registry.getMetricsAsJSON()).filter((m) => m.name.startsWith('oeld_')).map((m) => {
  const labels = (metrics.registry.getSingleMetric(m.name) as unknown as { labelNames: string[] }).labelNames;
  return `| \`${m.name}\` | ${m.type} | ${labels.join(', ')} | ${m.help} |`;
});
replace('metrics-table', '| metric | type | labels | meaning |\n|---|---|---|---|', rows);
writeFileSync(path, readme);
console.log('README.md tables updated');

import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { catchUpProjections } from '../operations/catch-up.ts';
import { readReportData } from '../report/report-data.ts';
import { renderReport } from '../report/render-report.ts';
import { emit, type Command } from './command.ts';
import { withDatabase } from './with-database.ts';

export const reportCommand: Command = {
  name: 'report',
  summary: 'write an HTML report: pass rate and response length per model version, loss per step, knowledge size',
  usage: 'oeld report [--out oeld-report.html]',
  help: ['A self-contained page (inline SVG, no scripts) to open in a browser. A running daemon serves the same page at /report.'],
  options: { out: { type: 'string' } },
  async run(v, _p, ctx) {
    const out = resolve(typeof v.out === 'string' ? v.out : 'oeld-report.html');
    const data = await withDatabase(ctx.env, async (sql) => { await catchUpProjections(sql); return readReportData(sql); });
    writeFileSync(out, renderReport(data));
    emit(ctx, { out, versions: data.versions.length, evaluations: data.evaluations.length, rounds: data.rounds.length },
      `wrote ${out}: ${data.versions.length} model versions, ${data.evaluations.length} evaluations, ${data.rounds.length} rounds`);
    return 0;
  },
};

/**
 * The torch trainer at a URL (OELD_TORCH_URL): `python -m oeld_trainer serve` on a GPU host runs a
 * job posted to /jobs as the daemon would run it locally and streams its reports back, one JSON
 * line each (python/oeld_trainer/serve.py). The request is the job's lifeline: aborting it (the
 * stall timeout, a stop) makes the server kill the job. The job names files by path, so the host
 * must see the daemon's data directory at the same path (a shared volume).
 */
import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import type { StepReport } from './opcd-round.ts';
import { parseTorchReport, TorchProbeSchema, type TorchProbe, type TorchReport } from './torch-reports.ts';

export interface RemoteTrainer { url: string; token?: string }

const headers = (r: RemoteTrainer, json = false): Record<string, string> => ({
  ...(json ? { 'content-type': 'application/json' } : {}), ...(r.token ? { authorization: `Bearer ${r.token}` } : {}),
});
const base = (r: RemoteTrainer) => r.url.replace(/\/$/, '');
const unreachable = (r: RemoteTrainer, err: Error) =>
  new Error(`OELD_TORCH_URL=${r.url}: no trainer answered (${err.cause instanceof Error ? err.cause.message : err.message}); start one there with \`python -m oeld_trainer serve --host 0.0.0.0\``);

export async function probeRemote(r: RemoteTrainer): Promise<TorchProbe> {
  let res: Response;
  try { res = await fetch(`${base(r)}/probe`, { headers: headers(r), signal: AbortSignal.timeout(120_000) }); } catch (err) { throw unreachable(r, err as Error); }
  const text = await res.text();
  if (!res.ok) throw new Error(`OELD_TORCH_URL=${r.url}: the trainer's probe answered HTTP ${res.status}: ${text.slice(0, 500)}`);
  const parsed = TorchProbeSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`OELD_TORCH_URL=${r.url}: the probe's answer is not a trainer's: ${text.slice(0, 500)}`);
  return parsed.data;
}

export interface RemoteRun {
  stallSeconds: number;
  onReport?: (r: TorchReport) => void;
  onStep?: (s: StepReport) => void;
  /** Aborted by the trainer's close(): the job stops with "stopped with the daemon". */
  stop: AbortSignal;
}

/** Posts a job and follows its reports; resolves with the steps when the job is done, rejects with the reason otherwise. */
export async function runRemoteJob(r: RemoteTrainer, job: string, o: RemoteRun): Promise<{ steps: StepReport[]; runtime: string }> {
  const abort = new AbortController();
  let failure: Error | undefined;
  const fail = (err: Error) => { failure ??= err; abort.abort(); };
  const onStop = () => fail(new Error('torch trainer: stopped with the daemon before the round finished'));
  if (o.stop.aborted) onStop();
  o.stop.addEventListener('abort', onStop);
  let timer: NodeJS.Timeout | undefined;
  const stall = () => {
    clearTimeout(timer);
    timer = setTimeout(() => fail(new Error(`torch trainer at ${r.url}: no report for ${o.stallSeconds} s; stopped it (OELD_TRAINER_TIMEOUT_S)`)), o.stallSeconds * 1000);
  };
  const steps: StepReport[] = [];
  let runtime = `torch at ${r.url}`;
  let reported: string | undefined;
  let done = false;
  try {
    stall();
    const res = await fetch(`${base(r)}/jobs`, { method: 'POST', headers: headers(r, true), body: job, signal: abort.signal }).catch((err: Error) => {
      throw failure ?? unreachable(r, err);
    });
    if (!res.ok || !res.body) throw new Error(`torch trainer at ${r.url}: HTTP ${res.status}: ${(await res.text()).slice(0, 500)}`);
    for await (const line of createInterface({ input: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream) })) {
      const report = parseTorchReport(line);
      if (!report) continue;
      stall();
      o.onReport?.(report);
      if (report.event === 'step') {
        const { event: _e, ...step } = report;
        steps.push(step);
        try { o.onStep?.(step); } catch (err) { fail(err as Error); }
      } else if (report.event === 'ready') runtime = `torch ${report.torch} on ${report.device} (${report.precision}) at ${r.url}`;
      else if (report.event === 'error') reported = report.message;
      else if (report.event === 'done') done = true;
    }
  } catch (err) {
    throw failure ?? (err instanceof Error && err.message.startsWith('torch trainer') ? err : new Error(`torch trainer at ${r.url}: ${(err as Error).message}`));
  } finally {
    clearTimeout(timer);
    o.stop.removeEventListener('abort', onStop);
    abort.abort();
  }
  if (failure) throw failure;
  if (reported) throw new Error(`torch trainer: ${reported}`);
  if (!done) throw new Error(`torch trainer at ${r.url}: the connection ended before the job finished`);
  return { steps, runtime };
}

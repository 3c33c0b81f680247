/**
 * The `torch` trainer: each round's job runs in a child process, `python -m oeld_trainer JOB.json`,
 * from this repository's python/ folder, with the interpreter OELD_TORCH_PYTHON names. Its reports
 * arrive on stdout (torch-reports.ts) and are passed on step by step; its new weights are moved
 * into a version folder written the same way as the tfjs trainer's (checkpoint.ts
 * writeVersionFolder).
 *
 * Failure is loud and publishes nothing: the job rejects when the process reports an error, exits
 * without finishing (a crash, a kill, out of memory: the reason is its last stderr lines), or sends
 * no report for `stallSeconds` (it is then killed). close() stops every running job. The child holds
 * a pipe from this process on its stdin and exits when it closes, so a daemon that dies leaves no
 * trainer behind. With `remote` the job runs at a URL instead (torch-remote.ts), under the same rules.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { fileSha256 } from '../engine/verify-version.ts';
import { writeVersionFolder } from '../model/formats/checkpoint.ts';
import { adapterForTorch, writeAdapterFolder, type LoraSettings } from '../model/formats/lora-adapter.ts';
import { summariseSteps, type StepReport } from './opcd-round.ts';
import { buildTorchJob, type TorchRunSettings } from './torch-job.ts';
import { parseTorchReport, TorchProbeSchema, type TorchProbe, type TorchReport } from './torch-reports.ts';
import { probeRemote, runRemoteJob, type RemoteTrainer } from './torch-remote.ts';
import type { Trainer } from './trainer-port.ts';

/** The folder holding the oeld_trainer package. */
export const TORCH_PACKAGE_ROOT = fileURLToPath(new URL('../../python', import.meta.url));

export interface TorchTrainerSettings extends TorchRunSettings {
  /** The Python interpreter (with torch): OELD_TORCH_PYTHON. */
  python: string;
  /** Longest wait for the trainer's next report before it is stopped: OELD_TRAINER_TIMEOUT_S. */
  stallSeconds: number;
  /** Every report as it arrives (ready, step, checkpoint, done, error): logs and tests. */
  onReport?: (r: TorchReport) => void;
  /**
   * Train LoRA adapters instead of full weights (OELD_TORCH_LORA_RANK): each new version is an
   * adapter on a full-weight version (lora-adapter.ts). From an adapter version the round continues
   * its adapter, at that adapter's own rank.
   */
  lora?: LoraSettings;
  /**
   * Processes of one job (OELD_TORCH_PROCESSES): above 1, data-parallel, started here with the
   * environment torchrun gives its workers (one per GPU with NCCL, or gloo on the CPU).
   */
  processes?: number;
  /** Extra environment for the trainer process (tests set OELD_TRAINER_TEST_FAULT). */
  env?: Record<string, string>;
  /** The trainer at a URL instead of a child process (OELD_TORCH_URL, OELD_TORCH_URL_TOKEN; torch-remote.ts). */
  remote?: RemoteTrainer;
}

/** Last bytes of the trainer's stderr kept for an error message. */
const STDERR_TAIL = 4000;

export class TorchTrainer implements Trainer {
  readonly kind = 'torch' as const;
  private readonly running = new Set<ChildProcess>();
  private closed = false;
  private readonly stop = new AbortController();
  private readonly killAll = () => { for (const c of this.running) c.kill('SIGKILL'); };

  constructor(private readonly s: TorchTrainerSettings) {}

  get settings(): Record<string, unknown> {
    return { device: this.s.device, processes: this.s.processes ?? 1, ...(this.s.lora ? { lora: { rank: this.s.lora.rank, alpha: this.s.lora.alpha, targets: this.s.lora.targets } } : {}) };
  }

  /** The interpreter's torch and devices, or an error naming OELD_TORCH_PYTHON and what went wrong. */
  async probe(): Promise<TorchProbe> {
    if (this.s.remote) return probeRemote(this.s.remote);
    const { code, stdout, stderr } = await this.exec(['-m', 'oeld_trainer', '--probe'], 60_000);
    const line = stdout.trim().split('\n').pop() ?? '';
    let parsed;
    try { parsed = TorchProbeSchema.safeParse(JSON.parse(line)); } catch { parsed = undefined; }
    if (code !== 0 || !parsed?.success) {
      throw new Error(`OELD_TORCH_PYTHON=${this.s.python}: cannot run the torch trainer (${tail(stderr) || `exit code ${code}`}); it needs Python 3 with torch (bash scripts/ensure-torch.sh installs Debian's python3-torch)`);
    }
    return parsed.data;
  }

  async train(job: Parameters<Trainer['train']>[0], onStep?: (s: StepReport) => void): Promise<Awaited<ReturnType<Trainer['train']>>> {
    if (this.closed) throw new Error('torch trainer: closed');
    mkdirSync(job.checkpointDir, { recursive: true });
    mkdirSync(dirname(job.outDir), { recursive: true });
    // Named .partial- so that recovery after a crash removes it with the other unfinished files.
    const weightsOut = `${job.outDir}.partial-torch-${process.pid}.safetensors`;
    try {
      const start = adapterForTorch(job.dir);
      const from = start?.folder;
      const adapter = start ? { file: start.file, rank: start.rank, alpha: start.alpha, targets: start.targets } : null;
      const lora: LoraSettings | null = !this.s.lora ? null : adapter ? { rank: adapter.rank, alpha: adapter.alpha, targets: adapter.targets } : this.s.lora;
      const weightsDir = from ? from.baseDir : job.dir;
      const { torchJob, rawConfig } = await buildTorchJob(job, weightsOut, this.s, { weightsDir, lora, adapter });
      const { steps, runtime } = this.s.remote
        ? await runRemoteJob(this.s.remote, JSON.stringify(torchJob), { stallSeconds: this.s.stallSeconds, onStep, stop: this.stop.signal, ...(this.s.onReport ? { onReport: this.s.onReport } : {}) })
        : await this.run(this.writeJob(job.checkpointDir, torchJob), onStep);
      const report = summariseSteps(steps);
      if (lora) {
        const adapterOf = from ? { version: from.baseVersion, sha256: from.baseSha256 } : { version: job.version, sha256: await fileSha256(join(job.dir, 'model.safetensors')) };
        const folder = writeAdapterFolder(job.outDir, { ...adapterOf, dir: weightsDir }, lora, (path) => renameSync(weightsOut, path));
        return { sha256: folder.sha256, report, adapterOf, runtime };
      }
      const folder = writeVersionFolder(job.outDir, rawConfig, job.dir, (path, dtype) => {
        if (dtype !== torchJob.storeDtype) throw new Error(`torch trainer: weights written as ${torchJob.storeDtype}, the version is stored as ${dtype}`);
        renameSync(weightsOut, path);
      });
      return { sha256: folder.sha256, report, runtime };
    } finally {
      rmSync(weightsOut, { force: true });
    }
  }

  /** The job file a local process reads. */
  private writeJob(dir: string, torchJob: unknown): string {
    const file = join(dir, 'torch-job.json');
    writeFileSync(file, JSON.stringify(torchJob));
    return file;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stop.abort();
    const exits = [...this.running].map((c) => new Promise<void>((resolve) => {
      const hard = setTimeout(() => c.kill('SIGKILL'), 5000);
      c.once('close', () => { clearTimeout(hard); resolve(); });
      c.kill('SIGTERM');
    }));
    await Promise.all(exits);
  }

  /**
   * Runs one job file; resolves with its steps' reports when rank 0 says it is done and every
   * process exits 0. With processes > 1, one process per rank on this machine, with the environment
   * torchrun gives its workers (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT): rank 0
   * reports; when one process fails, the others are stopped.
   */
  private async run(jobFile: string, onStep?: (s: StepReport) => void): Promise<{ steps: StepReport[]; runtime: string }> {
    const n = this.s.processes ?? 1;
    const port = n > 1 ? await freePort() : 0;
    return new Promise((resolve, reject) => {
      const children = Array.from({ length: n }, (_, rank) => this.spawn(['-m', 'oeld_trainer', jobFile], n === 1 ? {} : {
        RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(n), LOCAL_WORLD_SIZE: String(n), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port),
      }));
      const killAll = () => { for (const c of children) c.kill('SIGKILL'); };
      const steps: StepReport[] = [];
      let runtime = `torch, ${n} process${n === 1 ? '' : 'es'}`;
      let stderr = '';
      const keep = (text: string) => { stderr = (stderr + text).slice(-STDERR_TAIL); };
      let reported: string | undefined;
      let done = false;
      let failure: Error | undefined;
      let died: string | undefined;
      let timer: NodeJS.Timeout | undefined;
      const stall = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          failure ??= new Error(`torch trainer: no report for ${this.s.stallSeconds} s; stopped it (OELD_TRAINER_TIMEOUT_S)`);
          killAll();
        }, this.s.stallSeconds * 1000);
      };
      stall();
      let open = n;
      children.forEach((child, rank) => {
        const who = n > 1 ? `rank ${rank}: ` : '';
        child.stderr!.on('data', (b: Buffer) => keep(who + b.toString()));
        createInterface({ input: child.stdout! }).on('line', (line) => {
          const r = rank === 0 ? parseTorchReport(line) : null;
          if (!r) { keep(`${who}${line}\n`); return; }
          stall();
          this.s.onReport?.(r);
          if (r.event === 'step') {
            const { event: _e, ...step } = r;
            steps.push(step);
            try { onStep?.(step); } catch (err) { failure ??= err as Error; killAll(); }
          } else if (r.event === 'ready') runtime = `torch ${r.torch} on ${r.device} (${r.precision}), ${n} process${n === 1 ? '' : 'es'}`;
          else if (r.event === 'error') reported = r.message;
          else if (r.event === 'done') done = true;
        });
        child.on('error', (err) => { failure ??= new Error(`torch trainer: cannot start ${this.s.python}: ${err.message} (OELD_TORCH_PYTHON)`); });
        child.on('close', (code, signal) => {
          if ((code !== 0 || signal) && !died) {
            died = `${n > 1 ? `process of rank ${rank} ` : ''}${signal ? `was killed (${signal})` : `exited with code ${code}`}`;
            killAll(); // the others would wait for it forever
          }
          if (--open > 0) return;
          clearTimeout(timer);
          if (failure) return reject(failure);
          if (this.closed && !done) return reject(new Error('torch trainer: stopped with the daemon before the round finished'));
          if (reported) return reject(new Error(`torch trainer: ${reported}`));
          if (died || !done) return reject(new Error(`torch trainer ${died ?? 'exited'}${done ? '' : ' before finishing'}${stderr.trim() ? `: ${tail(stderr)}` : ''}`));
          resolve({ steps, runtime });
        });
      });
    });
  }

  private spawn(args: string[], extraEnv: Record<string, string> = {}): ChildProcess {
    const env = { ...process.env, ...this.s.env, ...extraEnv, PYTHONPATH: [TORCH_PACKAGE_ROOT, process.env.PYTHONPATH].filter(Boolean).join(':'), PYTHONUNBUFFERED: '1' };
    const child = spawn(this.s.python, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    // While a process runs, this process's exit takes it along (its stdin pipe closing does too).
    if (this.running.size === 0) process.on('exit', this.killAll);
    this.running.add(child);
    child.once('close', () => {
      this.running.delete(child);
      if (this.running.size === 0) process.off('exit', this.killAll);
    });
    return child;
  }

  private exec(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = this.spawn(args);
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
      child.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-STDERR_TAIL); });
      child.on('error', (err) => { stderr += err.message; });
      child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    });
  }
}

/** A TCP port free on this machine now (for the processes' rendezvous). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The last few lines of a process's stderr, on one line. */
function tail(text: string): string {
  return text.trim().split('\n').slice(-6).join(' | ').slice(-1500);
}

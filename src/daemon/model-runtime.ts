/**
 * The model engine (OELD_ENGINE) and the trainer a daemon's rounds use (OELD_TRAINER), wired: tfjs on the learning engine, or the
 * torch trainer's child process. `check` runs at start: for torch it asks the interpreter for its
 * torch and devices, so that a missing torch fails the start with the setting to fix, not the first
 * round an hour later.
 */
import type { Config } from '../config.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { TorchEngine } from '../engine/torch-engine.ts';
import { workerEngine } from '../engine/worker-engine.ts';
import type { Logger } from '../log.ts';
import { LORA_TARGETS, type LoraTarget } from '../model/formats/lora-adapter.ts';
import { tfjsTrainer } from '../trainer/tfjs-trainer.ts';
import { TorchTrainer } from '../trainer/torch-trainer.ts';
import type { Trainer } from '../trainer/trainer-port.ts';

const ALL_LORA_TARGETS = Object.keys(LORA_TARGETS) as LoraTarget[];

export function createTrainer(config: Config, engine: ModelEngine, log: Logger): { trainer: Trainer; check: () => Promise<void> } {
  if (config.trainer === 'tfjs') return { trainer: tfjsTrainer(engine), check: async () => log.info('rounds train on the tfjs trainer (the model worker)') };
  const trainer = new TorchTrainer({
    python: config.torchPython, device: config.torchDevice, stallSeconds: config.trainerTimeoutS, processes: config.torchProcesses,
    ...(config.torchUrl ? { remote: { url: config.torchUrl, ...(config.torchUrlToken ? { token: config.torchUrlToken } : {}) } } : {}),
    ...(config.torchLoraRank > 0 ? { lora: { rank: config.torchLoraRank, alpha: config.torchLoraAlpha ?? 2 * config.torchLoraRank, targets: ALL_LORA_TARGETS } } : {}),
    onReport: (r) => {
      if (r.event === 'ready') log.info({ trainer: 'torch', device: r.device, precision: r.precision, torch: r.torch, parameters: r.parameters }, `torch trainer ready on ${r.device} (${r.precision}, torch ${r.torch}, ${r.parameters} parameters)`);
    },
  });
  return {
    trainer,
    check: async () => {
      const p = await trainer.probe();
      const where = config.torchDevice === 'auto' ? (p.cuda ? `cuda (${p.devices[0]})` : 'cpu (no CUDA device seen)') : config.torchDevice;
      const what = config.torchLoraRank > 0 ? `LoRA adapters of rank ${config.torchLoraRank}` : 'every weight';
      const at = config.torchUrl ? `the trainer at ${config.torchUrl}` : config.torchPython;
      log.info({ trainer: 'torch', python: config.torchPython, url: config.torchUrl, torch: p.torch, devices: p.devices, loraRank: config.torchLoraRank }, `rounds train on the torch trainer: ${at} (Python ${p.python}, torch ${p.torch}), device ${where}, ${what}`);
    },
  };
}

/** The model engine the daemon uses (OELD_ENGINE): the model worker, or the PyTorch process. */
export function createEngine(config: Config): ModelEngine {
  return config.engine === 'torch' ? new TorchEngine({ python: config.torchPython, device: config.torchDevice }) : workerEngine();
}

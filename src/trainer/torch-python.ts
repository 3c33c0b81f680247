/**
 * A Python interpreter with torch and numpy for the torch trainer's benchmarks and tests:
 * OELD_TORCH_PYTHON when set, else the first of python3 and /usr/bin/python3 that imports them
 * (scripts/ensure-torch.sh makes sure one does). The daemon itself uses OELD_TORCH_PYTHON as given.
 */
import { spawnSync } from 'node:child_process';

export function findTorchPython(): { python: string | null; tried: string[] } {
  const tried = process.env.OELD_TORCH_PYTHON ? [process.env.OELD_TORCH_PYTHON] : ['python3', '/usr/bin/python3'];
  return { python: tried.find((p) => spawnSync(p, ['-c', 'import torch, numpy']).status === 0) ?? null, tried };
}

/** The interpreter, or an error naming what was tried. */
export function torchPythonOrThrow(): string {
  const { python, tried } = findTorchPython();
  if (!python) throw new Error(`no Python with torch and numpy among ${tried.join(', ')}: run bash scripts/ensure-torch.sh`);
  return python;
}

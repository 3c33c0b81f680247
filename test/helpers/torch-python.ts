/**
 * The Python interpreter the torch trainer's tests use: OELD_TORCH_PYTHON when set, else the first
 * of python3 and /usr/bin/python3 that imports torch and numpy (scripts/ensure-torch.sh makes sure
 * one does). Throws, naming what was tried, when none does: these tests never skip.
 */
import { spawnSync } from 'node:child_process';

export function torchPython(): string {
  const candidates = process.env.OELD_TORCH_PYTHON ? [process.env.OELD_TORCH_PYTHON] : ['python3', '/usr/bin/python3'];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
    if (r.status === 0) return python;
  }
  throw new Error(`no Python with torch and numpy among ${candidates.join(', ')}: run bash scripts/ensure-torch.sh`);
}

/**
 * A published version's weights are what was published: before a load, model.safetensors is
 * hashed and compared with the sha256 recorded at publication. A file changed on disk afterwards
 * (a copy gone wrong, a hand edit, a half-written restore) is refused with both hashes, instead of
 * being served.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../model/formats/lora-adapter.ts';

export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The file a version's sha256 is of: an adapter version's adapter_model.safetensors, else model.safetensors. */
export const weightsFileOf = (dir: string): string => existsSync(join(dir, ADAPTER_CONFIG)) ? join(dir, ADAPTER_WEIGHTS) : join(dir, 'model.safetensors');

/** Whether the folder holds weights with this sha256. */
export async function holdsWeights(dir: string, sha256: string): Promise<boolean> {
  const file = weightsFileOf(dir);
  return existsSync(file) && await fileSha256(file) === sha256;
}

/** A published version whose weights are not what was published: missing, or another sha256. */
export class WeightsMismatchError extends Error {
  constructor(readonly version: string, readonly expectedSha256: string, readonly actualSha256: string | null, message: string) {
    super(message);
    this.name = 'WeightsMismatchError';
  }
}

/**
 * Throws WeightsMismatchError unless the version's weights (model.safetensors, or an adapter
 * version's adapter_model.safetensors) have the sha256 they were published with.
 */
export async function verifyPublishedWeights(v: { version: string; path: string; sha256: string }): Promise<void> {
  const file = weightsFileOf(v.path);
  if (!existsSync(file)) throw new WeightsMismatchError(v.version, v.sha256, null, `model version ${v.version}: ${file} is missing (published with sha256 ${v.sha256})`);
  const actual = await fileSha256(file);
  if (actual !== v.sha256) throw new WeightsMismatchError(v.version, v.sha256, actual, `model version ${v.version}: ${file} has sha256 ${actual}, but was published with ${v.sha256}; refusing to load a changed file`);
}

/**
 * On-policy consistency (docs/oel-method.md, step 2): knowledge must be extracted by the SAME model
 * version that produced the trajectory. When extraction goes through an OpenAI-compatible endpoint,
 * the version that endpoint declares to serve must be the trajectory's.
 */

export class ModelVersionMismatchError extends Error {
  constructor(readonly endpointDeclared: string, readonly trajectoryModelVersion: string) {
    super(
      `model version mismatch: the extraction endpoint serves ${JSON.stringify(endpointDeclared)} but the trajectory was produced by ` +
      `${JSON.stringify(trajectoryModelVersion)}; knowledge must be extracted by the same model version that produced the trajectory ` +
      '(on-policy consistency), so serve that version at the endpoint or extract from trajectories of the served version',
    );
    this.name = 'ModelVersionMismatchError';
  }
}

/** Throws ModelVersionMismatchError, naming both versions, unless they are exactly equal and non-empty. */
export function assertSameModelVersion(endpointDeclared: string, trajectoryModelVersion: string): void {
  if (endpointDeclared.trim() === '' || trajectoryModelVersion.trim() === '') throw new ModelVersionMismatchError(endpointDeclared, trajectoryModelVersion);
  if (endpointDeclared !== trajectoryModelVersion) throw new ModelVersionMismatchError(endpointDeclared, trajectoryModelVersion);
}

export class WrongExpectedVersionError extends Error {
  constructor(readonly streamId: string, readonly expected: string | number, readonly actual: number) {
    super(`stream ${streamId}: expected version ${expected}, found ${actual}`);
    this.name = 'WrongExpectedVersionError';
  }
}

/** The same event id arrived again with different content: reported, never overwritten. */
export class DuplicateEventConflictError extends Error {
  constructor(readonly conflicts: { id: string; reason: string }[]) {
    super(`event id reused with different content: ${conflicts.map((c) => `${c.id} (${c.reason})`).join('; ')}`);
    this.name = 'DuplicateEventConflictError';
  }
}

export const isUniqueViolation = (err: unknown, constraint?: string): boolean =>
  typeof err === 'object' && err !== null && (err as { code?: string }).code === '23505' &&
  (constraint === undefined || String((err as { constraint?: string }).constraint ?? (err as Error).message).includes(constraint));

/**
 * The model worker's line of requests: one at a time in arrival order, with one exception
 * (continuous batching): a served request for a version whose batch is running joins it at once,
 * unless other work waits. Then it waits in line too, the batch ends with the rows it has and the
 * line moves on, so serving under steady load cannot starve a round; when a served request's turn
 * comes, the served requests for the same version right behind it join the batch it starts, and
 * the line moves on when that batch has ended (not when the request that started it is answered).
 * Pure logic over how a request is answered and whether a version is being served.
 */
export interface LineRequest { type: string; key?: string }

export class WorkerLine<R extends LineRequest> {
  private readonly pending: R[] = [];
  private pumping = false;

  constructor(
    /** Answers a request; for a served one, `onBatch` is called once its batch runs (requests sent after it join it). */
    private readonly answer: (r: R, onBatch?: () => void) => Promise<void>,
    /** The end of the batch running for this version, or null when none runs. */
    private readonly serving: (key: string) => Promise<void> | null,
  ) {}

  get waiting(): number { return this.pending.length; }

  push(r: R): void {
    if (r.type === 'serve' && this.pending.length === 0 && this.serving(r.key!) !== null) { void this.answer(r); return; }
    this.pending.push(r);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.pending.length > 0) {
        const r = this.pending.shift()!;
        if (r.type !== 'serve') { await this.answer(r); continue; }
        await this.answer(r, () => {
          while (this.pending[0]?.type === 'serve' && this.pending[0].key === r.key) void this.answer(this.pending.shift()!);
        });
        await this.serving(r.key!);
      }
    } finally {
      this.pumping = false;
    }
  }
}

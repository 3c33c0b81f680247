/** Events per second over a sliding window (default one minute), from counts added as they happen. */
export class RateWindow {
  private readonly samples: { at: number; n: number }[] = [];
  constructor(private readonly windowMs = 60_000, private readonly now: () => number = Date.now) {}

  add(n: number): void {
    this.samples.push({ at: this.now(), n });
    this.prune();
  }

  perSecond(): number {
    this.prune();
    return this.samples.reduce((sum, s) => sum + s.n, 0) / (this.windowMs / 1000);
  }

  private prune(): void {
    const cutoff = this.now() - this.windowMs;
    while (this.samples.length && this.samples[0]!.at < cutoff) this.samples.shift();
  }
}

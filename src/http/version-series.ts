/**
 * Metric series labelled by model version, kept bounded: an always-on daemon publishes a version
 * every round, and a series per version and metric would grow /metrics (and Prometheus) without
 * end. Each version-labelled series is recorded here when set; prune() removes the series of every
 * version not in the set to keep (the active version and the newest few).
 */
export interface VersionedMetric<L extends string> { remove(labels: Partial<Record<L, string>>): void }

export class VersionSeries {
  private readonly series = new Map<string, { metric: VersionedMetric<string>; labels: Record<string, string> }>();
  /** Versions in the order first seen (oldest first). */
  private readonly order: string[] = [];

  /** Notes that `metric` has a series with these labels (which include `version`). */
  record<L extends string>(metric: VersionedMetric<L>, labels: Record<L, string> & { version: string }): void {
    const key = JSON.stringify([(metric as { name?: string }).name ?? '', Object.entries(labels).sort()]);
    this.series.set(key, { metric: metric as VersionedMetric<string>, labels });
    if (!this.order.includes(labels.version)) this.order.push(labels.version);
  }

  /** Removes the series of every version but `keep` and the newest `newest` seen; returns the versions pruned. */
  prune(keep: ReadonlySet<string>, newest: number): string[] {
    const kept = new Set([...keep, ...this.order.slice(Math.max(0, this.order.length - newest))]);
    const pruned = this.order.filter((v) => !kept.has(v));
    if (pruned.length === 0) return [];
    for (const [key, s] of this.series) {
      if (kept.has(s.labels.version!)) continue;
      s.metric.remove(s.labels);
      this.series.delete(key);
    }
    this.order.splice(0, this.order.length, ...this.order.filter((v) => kept.has(v)));
    return pruned;
  }
}

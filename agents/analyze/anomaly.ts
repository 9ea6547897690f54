// Anomaly detection on metric windows, in the manner of Netdata: every metric
// is judged on its own from a short window of its recent changes, and the
// machine is called anomalous only when several metrics agree.
//
// Features of one metric at one tick: the last DIM first differences, each
// divided by that metric's running standard deviation of differences (so a
// model trained on one device's data applies to any metric's scale). The ONNX
// model holds K cluster centres learned from normal data and returns each
// window's squared distance to the nearest; a window farther than the
// model's threshold is anomalous. The rule fallback flags a window whose
// latest change is more than 6 standard deviations out.

export const DIM = 6;

export class RunningStats {
  n = 0;
  mean = 0;
  m2 = 0;

  add(x: number): void {
    this.n++;
    const d = x - this.mean;
    this.mean += d / this.n;
    this.m2 += d * (x - this.mean);
  }

  get std(): number {
    return this.n > 1 ? Math.sqrt(this.m2 / (this.n - 1)) : 0;
  }
}

/** The normalised difference window of a series (its last DIM+1 values), or undefined if too short. */
export function anomalyFeatures(values: number[], stats: RunningStats): Float32Array | undefined {
  if (values.length < DIM + 1) return undefined;
  const v = values.slice(-(DIM + 1));
  const std = Math.max(stats.std, 1e-3 * (Math.abs(stats.mean) + 1));
  const x = new Float32Array(DIM);
  for (let i = 0; i < DIM; i++) x[i] = Math.max(-50, Math.min(50, (v[i + 1]! - v[i]!) / std));
  return x;
}

/** Whether the anomaly detector judges a system metric: all but available memory (sys.mem_pct carries the same signal). */
export function judgedForAnomaly(metric: string): boolean {
  return !metric.startsWith("sys.mem_avail");
}

export function ruleAnomalous(x: Float32Array): boolean {
  return Math.abs(x[DIM - 1]!) > 6;
}

/** Squared distance to the nearest centre, computed in TypeScript (for training and tests). */
export function nearestDistance(x: Float32Array, centres: Float32Array[]): number {
  let best = Infinity;
  for (const c of centres) {
    let d = 0;
    for (let i = 0; i < x.length; i++) d += (x[i]! - c[i]!) ** 2;
    if (d < best) best = d;
  }
  return best;
}

/** k-means with a seeded start (k-means++ over a fixed stream), for training on a device or offline. */
export function kmeans(points: Float32Array[], k: number, iterations: number, rand: () => number): Float32Array[] {
  if (points.length === 0) return [];
  const centres: Float32Array[] = [points[Math.floor(rand() * points.length)]!.slice()];
  while (centres.length < Math.min(k, points.length)) {
    const d = points.map((p) => nearestDistance(p, centres));
    const total = d.reduce((a, b) => a + b, 0);
    let r = rand() * total;
    let i = 0;
    for (; i < d.length - 1 && r > d[i]!; i++) r -= d[i]!;
    centres.push(points[i]!.slice());
  }
  for (let it = 0; it < iterations; it++) {
    const sums = centres.map(() => new Float64Array(DIM));
    const counts = centres.map(() => 0);
    for (const p of points) {
      let best = 0;
      let bd = Infinity;
      centres.forEach((c, j) => {
        let d = 0;
        for (let i = 0; i < DIM; i++) d += (p[i]! - c[i]!) ** 2;
        if (d < bd) (bd = d), (best = j);
      });
      counts[best]!++;
      for (let i = 0; i < DIM; i++) sums[best]![i]! += p[i]!;
    }
    centres.forEach((c, j) => {
      if (counts[j]! > 0) for (let i = 0; i < DIM; i++) c[i] = sums[j]![i]! / counts[j]!;
    });
  }
  return centres;
}

/** The distance below which `quantile` of the training windows fall: the anomaly threshold. */
export function thresholdOf(points: Float32Array[], centres: Float32Array[], quantile = 0.99): number {
  const d = points.map((p) => nearestDistance(p, centres)).sort((a, b) => a - b);
  return d[Math.min(d.length - 1, Math.floor(quantile * d.length))] ?? Infinity;
}

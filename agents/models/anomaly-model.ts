// The anomaly model: cluster centres of normal metric windows (see
// analyze/anomaly.ts for the features). The ONNX graph returns each window's
// squared distance to the nearest centre; a distance over the threshold
// stored in the manifest is anomalous. Trained offline on generated normal
// load (daily swings, noise, random walks, periodic jobs) and on the quiet
// running of the training traces recorded from the image (`make traces`;
// agents/models/split.ts says which), and retrained on a device from its own
// history.

import { DIM, RunningStats, anomalyFeatures, kmeans, nearestDistance, ruleAnomalous, thresholdOf } from "../analyze/anomaly.ts";
import { encodeModel, floatTensor, int64Tensor, type Graph } from "./onnx.ts";
import { gauss, rng } from "./train.ts";
import type { TrainedModel } from "./forecast-model.ts";
import { anomalyMetrics, columnOf, quietAt, type Trace } from "./trace.ts";

export const K = 16;

/** The distance graph for a set of centres. */
export function anomalyGraph(centres: Float32Array[]): Graph {
  const k = centres.length;
  const ct = new Float32Array(DIM * k);
  const cn = new Float32Array(k);
  centres.forEach((c, j) => {
    for (let i = 0; i < DIM; i++) {
      ct[i * k + j] = c[i]!;
      cn[j]! += c[i]! * c[i]!;
    }
  });
  return {
    name: "anomaly_distance",
    nodes: [
      { op: "Mul", inputs: ["x", "x"], outputs: ["xsq"] },
      { op: "ReduceSum", inputs: ["xsq", "axis1"], outputs: ["xx"], attrs: [{ name: "keepdims", i: 1 }] },
      { op: "MatMul", inputs: ["x", "centres_t"], outputs: ["xc"] },
      { op: "Mul", inputs: ["xc", "two"], outputs: ["xc2"] },
      { op: "Sub", inputs: ["xx", "xc2"], outputs: ["partial"] },
      { op: "Add", inputs: ["partial", "centre_norms"], outputs: ["dist"] },
      { op: "ReduceMin", inputs: ["dist"], outputs: ["distance"], attrs: [{ name: "axes", ints: [1] }, { name: "keepdims", i: 1 }] },
    ],
    initializers: [floatTensor("centres_t", [DIM, k], ct), floatTensor("centre_norms", [1, k], cn), floatTensor("two", [1], [2]), int64Tensor("axis1", [1])],
    inputs: [{ name: "x", shape: ["batch", DIM] }],
    outputs: [{ name: "distance", shape: ["batch", 1] }],
  };
}

/** Feature windows of a series, normalised the way the agent does at run time. */
export function windowsOf(series: number[]): Float32Array[] {
  const st = new RunningStats();
  const out: Float32Array[] = [];
  for (let t = 1; t < series.length; t++) {
    st.add(series[t]! - series[t - 1]!);
    if (st.n < 30) continue;
    const x = anomalyFeatures(series.slice(Math.max(0, t - DIM), t + 1), st);
    if (x) out.push(x);
  }
  return out;
}

/**
 * The feature windows of a trace's quiet running: every metric the detector
 * judges, its running statistics kept from the trace's start as the agent
 * keeps them, and only the windows that end outside every fault (and its grace).
 */
export function quietWindowsOf(trace: Trace): Float32Array[] {
  const out: Float32Array[] = [];
  for (const m of anomalyMetrics(trace)) {
    const pts = columnOf(trace, m);
    const st = new RunningStats();
    for (let t = 1; t < pts.length; t++) {
      st.add(pts[t]!.v - pts[t - 1]!.v);
      if (st.n < 30 || !quietAt(trace, pts[t]!.ts)) continue;
      const x = anomalyFeatures(pts.slice(Math.max(0, t - DIM), t + 1).map((p) => p.v), st);
      if (x) out.push(x);
    }
  }
  return out;
}

function normalSeries(r: () => number, n: number): number[] {
  const kind = Math.floor(r() * 4);
  const base = 10 + r() * 50;
  const out: number[] = [];
  let walk = 0;
  const period = 20 + Math.floor(r() * 100);
  for (let t = 0; t < n; t++) {
    walk += gauss(r) * 0.2;
    const noise = gauss(r) * (0.5 + r() * 2);
    const v = kind === 0 ? base + 10 * Math.sin((2 * Math.PI * t) / 3600) + noise
      : kind === 1 ? base + walk + noise
      : kind === 2 ? base + (t % period < 3 ? 15 : 0) + noise // a periodic job
      : base + noise;
    out.push(v);
  }
  return out;
}

/** Trains centres and a threshold from windows; used offline and on the device. */
export function fitAnomaly(windows: Float32Array[], seed: number): { centres: Float32Array[]; threshold: number } {
  const r = rng(seed);
  const sample = windows.length > 20000 ? Array.from({ length: 20000 }, () => windows[Math.floor(r() * windows.length)]!) : windows;
  const centres = kmeans(sample, K, 15, r);
  return { centres, threshold: thresholdOf(sample, centres, 0.999) };
}

export function trainAnomaly(log: (line: string) => void, seed = 2, traces: readonly Trace[] = []): TrainedModel & { threshold: number } {
  const r = rng(seed);
  const windows: Float32Array[] = [];
  for (let i = 0; i < 60; i++) windows.push(...windowsOf(normalSeries(r, 400)));
  const generated = windows.length;
  for (const t of traces) windows.push(...quietWindowsOf(t));
  log(`anomaly: ${generated} generated windows, ${windows.length - generated} from the quiet running of ${traces.length} training trace(s)`);
  const { centres, threshold } = fitAnomaly(windows, seed);
  // Held out: normal series (false alarms) and the same with a sudden level shift injected (detections).
  const rt = rng(seed + 1000);
  let fp = 0, fpRule = 0, nNormal = 0, tp = 0, tpRule = 0, nShift = 0;
  for (let i = 0; i < 40; i++) {
    const s = normalSeries(rt, 400);
    for (const x of windowsOf(s)) {
      nNormal++;
      if (nearestDistance(x, centres) > threshold) fp++;
      if (ruleAnomalous(x)) fpRule++;
    }
    const at = 200 + Math.floor(rt() * 150);
    const std = Math.max(1, Math.abs(s[at]!) * 0.02);
    const shifted = s.map((v, t) => (t >= at ? v + 12 * std + 10 : v));
    const x = windowsOf(shifted.slice(0, at + 1));
    const last = x[x.length - 1];
    if (last) {
      nShift++;
      if (nearestDistance(last, centres) > threshold) tp++;
      if (ruleAnomalous(last)) tpRule++;
    }
  }
  const metrics = {
    threshold: +threshold.toFixed(4),
    false_alarm_rate: +(fp / nNormal).toFixed(4),
    detection_rate: +(tp / nShift).toFixed(3),
    rule_false_alarm_rate: +(fpRule / nNormal).toFixed(4),
    rule_detection_rate: +(tpRule / nShift).toFixed(3),
  };
  log(`anomaly: held-out false alarms ${(metrics.false_alarm_rate * 100).toFixed(2)}% of windows, level shifts found ${(metrics.detection_rate * 100).toFixed(0)}% (6-sigma rule: ${(metrics.rule_false_alarm_rate * 100).toFixed(2)}%, ${(metrics.rule_detection_rate * 100).toFixed(0)}%)`);
  return {
    bytes: encodeModel(anomalyGraph(centres), { purpose: "anomaly distance", threshold: String(threshold) }),
    inputs: `x: float32[batch, ${DIM}], the last ${DIM} changes of a metric over its running standard deviation`,
    outputs: "distance: float32[batch, 1], squared distance to the nearest normal centre",
    metrics,
    training: `${generated} windows of generated normal load (daily swings, random walks, periodic jobs, noise), seed ${seed}, and ${windows.length - generated} of quiet running from the training traces (${traces.map((t) => `${t.scenario}:${t.seed}`).join(", ") || "none recorded"}); k-means, k=${K}`,
    threshold,
  };
}

// The memory forecast model: from the last 30 s of a unit's memory.current
// (as fractions of its memory.max, taken relative to the newest value) it
// predicts how much the fraction changes over the next 30 s. Trained on
// series from workload generators written here (leaks of many rates, garbage
// collectors' sawtooth, steady and noisy services, slow daily swings, steps,
// and memory being freed) and on every window of the training traces
// recorded from the image (`make traces`; agents/models/split.ts says which).

import { HORIZON, WINDOW, ruleForecast } from "../analyze/forecast.ts";
import { encodeModel, mlpGraph } from "./onnx.ts";
import { gauss, initMlp, forward, rng, trainMlp } from "./train.ts";
import { memoryWindows, type Trace } from "./trace.ts";

export type Workload = "leak" | "sawtooth" | "steady" | "diurnal" | "step" | "freeing";
const KINDS: Workload[] = ["leak", "sawtooth", "steady", "diurnal", "step", "freeing"];

/** One series of WINDOW + HORIZON seconds of memory fractions from one workload generator. */
export function workloadSeries(kind: Workload, r: () => number): number[] {
  const n = WINDOW + HORIZON;
  const noise = r() * 0.01;
  const base = 0.05 + r() * 0.6;
  const out: number[] = [];
  // Leaks from 0.1% to 6% of the limit per second: a minute to fill up at the fastest.
  const slope = 0.001 + r() * r() * 0.06;
  const period = 5 + Math.floor(r() * 20);
  const stepAt = Math.floor(r() * n);
  const stepBy = (r() - 0.3) * 0.3;
  const phase = r() * 2 * Math.PI;
  for (let t = 0; t < n; t++) {
    let v: number;
    switch (kind) {
      case "leak":
        v = base + slope * t;
        break;
      case "sawtooth":
        v = base + slope * 3 * (t % period);
        break;
      case "steady":
        v = base;
        break;
      case "diurnal":
        v = base + 0.1 * Math.sin(phase + (2 * Math.PI * t) / 3600);
        break;
      case "step":
        v = base + (t >= stepAt ? stepBy : 0);
        break;
      case "freeing":
        v = Math.max(0.02, base + 0.3 - slope * t);
        break;
    }
    out.push(Math.max(0, v + gauss(r) * noise));
  }
  return out;
}

function sample(r: () => number): { x: Float32Array; y: Float32Array; window: number[]; future: number } {
  const kind = KINDS[Math.floor(r() * KINDS.length)]!;
  const s = workloadSeries(kind, r);
  const window = s.slice(0, WINDOW);
  const last = window[WINDOW - 1]!;
  const future = s[WINDOW - 1 + HORIZON]!;
  return { x: Float32Array.from(window.map((v) => v - last)), y: Float32Array.from([future - last]), window, future };
}

export interface TrainedModel {
  bytes: Uint8Array;
  inputs: string;
  outputs: string;
  metrics: Record<string, number>;
  training: string;
}

/** A training pair from a recorded window: the inputs and the change, relative to the newest value as for generated ones. */
function fromTrace(row: { w: number[]; actual: number }): { x: Float32Array; y: Float32Array } {
  const last = row.w[WINDOW - 1]!;
  return { x: Float32Array.from(row.w.map((v) => v - last)), y: Float32Array.from([row.actual - last]) };
}

export function trainForecast(log: (line: string) => void, seed = 1, traces: readonly Trace[] = []): TrainedModel {
  const r = rng(seed);
  const generated: { x: Float32Array; y: Float32Array }[] = Array.from({ length: 12000 }, () => sample(r));
  const recorded = traces.flatMap((t) => memoryWindows(t, WINDOW, HORIZON, 1)).map(fromTrace);
  log(`memory-forecast: ${generated.length} generated windows, ${recorded.length} from ${traces.length} training trace(s)`);
  const train = [...generated, ...recorded];
  const layers = initMlp([WINDOW, 24, 12, 1], r);
  const loss = trainMlp(layers, train.map((s) => s.x), train.map((s) => s.y), { epochs: 10, batch: 64, lr: 0.002, r });
  // Held out: fresh series from another seed; the model against the straight-line rule.
  const rt = rng(seed + 1000);
  let modelErr = 0;
  let ruleErr = 0;
  const n = 3000;
  for (let i = 0; i < n; i++) {
    const s = sample(rt);
    const last = s.window[WINDOW - 1]!;
    const pred = last + forward(layers, s.x)[layers.length]![0]!;
    modelErr += Math.abs(pred - s.future);
    ruleErr += Math.abs(ruleForecast(s.window).predicted - s.future);
  }
  const metrics = { train_mse: +loss.toFixed(6), heldout_mae: +(modelErr / n).toFixed(4), rule_mae: +(ruleErr / n).toFixed(4) };
  log(`memory-forecast: held-out mean absolute error ${metrics.heldout_mae} of memory.max (straight-line rule: ${metrics.rule_mae})`);
  const graph = mlpGraph("memory_forecast", { name: "window", shape: ["batch", WINDOW] }, { name: "delta", shape: ["batch", 1] }, layers);
  return {
    bytes: encodeModel(graph, { purpose: "memory forecast", window_s: String(WINDOW), horizon_s: String(HORIZON) }),
    inputs: `window: float32[batch, ${WINDOW}], memory.current/memory.max over the last ${WINDOW} s minus the newest value`,
    outputs: `delta: float32[batch, 1], change of that fraction over the next ${HORIZON} s`,
    metrics,
    training: `12000 synthetic series (${KINDS.join(", ")}), seed ${seed}, and ${recorded.length} windows of the training traces (${traces.map((t) => `${t.scenario}:${t.seed}`).join(", ") || "none recorded"}); MLP ${WINDOW}-24-12-1, Adam, 10 epochs`,
  };
}

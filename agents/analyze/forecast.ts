// Memory forecasting: will this unit reach its memory.max, and when?
//
// The input is the unit's memory.current over the last WINDOW samples (one a
// second) as fractions of its memory.max. The ONNX model (trained by
// `make models` on leaks, sawtooth garbage collectors, steady and noisy
// services) predicts the fraction HORIZON seconds ahead; the rule fallback
// fits a straight line to the window. Either way the answer is the same
// shape: the predicted fraction at the horizon and the seconds until the
// limit, so the planner and the audit log do not care which one spoke.

export const WINDOW = 30;
export const HORIZON = 30;

export interface Forecast {
  /** Predicted memory.current / memory.max HORIZON seconds from now. */
  predicted: number;
  /** Seconds until memory.max at the predicted rate; Infinity when not growing. */
  etaS: number;
  /** Growth per second, fraction of memory.max. */
  slope: number;
  /** How straight the line is (R², 0..1) — the rule's confidence. */
  r2: number;
  by: "model" | "rule";
}

/** Least-squares line through the window: the deterministic fallback. */
export function ruleForecast(window: number[]): Forecast {
  const n = window.length;
  const last = window[n - 1] ?? 0;
  if (n < 3) return { predicted: last, etaS: Infinity, slope: 0, r2: 0, by: "rule" };
  let sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
  window.forEach((y, x) => {
    sx += x; sy += y; sxx += x * x; sxy += x * y; syy += y * y;
  });
  const den = n * sxx - sx * sx;
  const slope = den === 0 ? 0 : (n * sxy - sx * sy) / den;
  const varY = n * syy - sy * sy;
  const r2 = varY <= 1e-12 || den === 0 ? 0 : Math.min(1, ((n * sxy - sx * sy) ** 2) / (den * varY));
  const predicted = last + slope * HORIZON;
  return { predicted, etaS: slope > 1e-6 ? Math.max(0, (1 - last) / slope) : Infinity, slope, r2, by: "rule" };
}

/** Builds a forecast from the model's predicted fraction at the horizon. */
export function modelForecast(window: number[], predicted: number): Forecast {
  const last = window[window.length - 1] ?? 0;
  const slope = (predicted - last) / HORIZON;
  return { predicted, etaS: slope > 1e-6 ? Math.max(0, (1 - last) / slope) : Infinity, slope, r2: 1, by: "model" };
}

/** Model input: the window as fractions, padded at the front with its first value. */
export function forecastInput(window: number[]): Float32Array {
  const x = new Float32Array(WINDOW);
  const w = window.slice(-WINDOW);
  const pad = WINDOW - w.length;
  for (let i = 0; i < WINDOW; i++) x[i] = i < pad ? (w[0] ?? 0) : w[i - pad]!;
  return x;
}

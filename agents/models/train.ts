// Training helpers for PAIO's small models, in plain TypeScript: a seeded
// random number generator (so two `make models` runs give the same bytes) and
// a multi-layer perceptron trained with Adam on mean squared error.

/** mulberry32: a small, fast, seeded generator of floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal sample (Box–Muller). */
export function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}

export interface Layer {
  w: Float32Array;
  b: Float32Array;
  inDim: number;
  outDim: number;
  act?: "relu";
}

export function initMlp(sizes: number[], r: () => number): Layer[] {
  const layers: Layer[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const inDim = sizes[i]!;
    const outDim = sizes[i + 1]!;
    const scale = Math.sqrt(2 / inDim);
    layers.push({
      w: Float32Array.from({ length: inDim * outDim }, () => gauss(r) * scale),
      b: new Float32Array(outDim),
      inDim,
      outDim,
      act: i + 2 < sizes.length ? "relu" : undefined,
    });
  }
  return layers;
}

/** The forward pass, keeping every layer's output (for back-propagation). */
export function forward(layers: Layer[], x: Float32Array): Float32Array[] {
  const acts = [x];
  let cur = x;
  for (const l of layers) {
    const out = Float32Array.from(l.b);
    // Row by row, skipping zero inputs: sparse inputs (hashed text features) cost only their non-zeros.
    for (let i = 0; i < l.inDim; i++) {
      const xi = cur[i]!;
      if (xi === 0) continue;
      const row = i * l.outDim;
      for (let j = 0; j < l.outDim; j++) out[j]! += xi * l.w[row + j]!;
    }
    if (l.act === "relu") for (let j = 0; j < l.outDim; j++) if (out[j]! < 0) out[j] = 0;
    acts.push(out);
    cur = out;
  }
  return acts;
}

export function softmax(z: Float32Array): Float32Array {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/**
 * Trains on (x, y) pairs by mini-batch Adam; returns the final training loss.
 * "mse": mean squared error on the raw outputs (regression). "softmax": the
 * outputs are logits, y is one-hot, the loss is cross-entropy (classification).
 */
export function trainMlp(layers: Layer[], xs: Float32Array[], ys: Float32Array[], opts: { epochs: number; batch: number; lr: number; r: () => number; loss?: "mse" | "softmax" }): number {
  const m = layers.map((l) => ({ w: new Float32Array(l.w.length), b: new Float32Array(l.b.length) }));
  const v = layers.map((l) => ({ w: new Float32Array(l.w.length), b: new Float32Array(l.b.length) }));
  const order = xs.map((_, i) => i);
  let step = 0;
  let loss = 0;
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(opts.r() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    loss = 0;
    for (let start = 0; start < order.length; start += opts.batch) {
      const grads = layers.map((l) => ({ w: new Float32Array(l.w.length), b: new Float32Array(l.b.length) }));
      const idx = order.slice(start, start + opts.batch);
      for (const k of idx) {
        const acts = forward(layers, xs[k]!);
        const out = acts[acts.length - 1]!;
        let delta = new Float32Array(out.length);
        if (opts.loss === "softmax") {
          const p = softmax(out);
          for (let j = 0; j < out.length; j++) {
            if (ys[k]![j]! > 0) loss -= Math.log(p[j]! + 1e-12);
            delta[j] = (p[j]! - ys[k]![j]!) / idx.length;
          }
        } else {
          for (let j = 0; j < out.length; j++) {
            const e = out[j]! - ys[k]![j]!;
            loss += e * e;
            delta[j] = (2 * e) / idx.length;
          }
        }
        for (let li = layers.length - 1; li >= 0; li--) {
          const l = layers[li]!;
          const input = acts[li]!;
          const output = acts[li + 1]!;
          if (l.act === "relu") for (let j = 0; j < l.outDim; j++) if (output[j]! <= 0) delta[j] = 0;
          const g = grads[li]!;
          const prev = new Float32Array(l.inDim);
          for (let i = 0; i < l.inDim; i++) {
            const xi = input[i]!;
            const row = i * l.outDim;
            if (xi !== 0) for (let j = 0; j < l.outDim; j++) g.w[row + j]! += xi * delta[j]!;
            // The first layer's input needs no gradient.
            if (li > 0) {
              let s = 0;
              for (let j = 0; j < l.outDim; j++) s += l.w[row + j]! * delta[j]!;
              prev[i] = s;
            }
          }
          for (let j = 0; j < l.outDim; j++) g.b[j]! += delta[j]!;
          delta = prev;
        }
      }
      step++;
      const b1 = 0.9, b2 = 0.999, eps = 1e-8;
      layers.forEach((l, li) => {
        for (const key of ["w", "b"] as const) {
          const p = l[key], g = grads[li]![key], mm = m[li]![key], vv = v[li]![key];
          for (let i = 0; i < p.length; i++) {
            mm[i] = b1 * mm[i]! + (1 - b1) * g[i]!;
            vv[i] = b2 * vv[i]! + (1 - b2) * g[i]! * g[i]!;
            const mh = mm[i]! / (1 - b1 ** step);
            const vh = vv[i]! / (1 - b2 ** step);
            p[i] = p[i]! - (opts.lr * mh) / (Math.sqrt(vh) + eps);
          }
        }
      });
    }
    loss /= order.length;
  }
  return loss;
}

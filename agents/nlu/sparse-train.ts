// Training for the intent model: a network of two layers (hashed features →
// hidden ReLU units → softmax over the intents) whose input is sparse — an
// utterance sets a few dozen of thousands of features. Forward and backward
// passes touch only those features' rows of the first layer, and Adam updates
// only the rows a batch touched ("lazy" Adam), so a wide feature space costs
// no more than a narrow one. Seeded: the same data and seed give the same
// weights. The layers are laid out as agents/models/train.ts lays them out, for
// the ONNX writer.

import { gauss, type Layer } from "../models/train.ts";

export interface SparseRow {
  idx: Int32Array;
  val: Float32Array;
}

/** The non-zero features of a dense vector. */
export function sparse(x: Float32Array): SparseRow {
  const idx: number[] = [];
  for (let i = 0; i < x.length; i++) if (x[i] !== 0) idx.push(i);
  return { idx: Int32Array.from(idx), val: Float32Array.from(idx, (i) => x[i]!) };
}

export interface SparseOptions {
  hidden: number;
  epochs: number;
  batch: number;
  lr: number;
  /** L2 penalty on the weights, applied to the rows a batch touches. */
  l2?: number;
  r: () => number;
}

/** Trains on (x, label) pairs; returns the two layers and the last epoch's mean cross-entropy. */
export function trainSparseSoftmax(xs: SparseRow[], labels: Int32Array, inDim: number, classes: number, o: SparseOptions): { layers: Layer[]; loss: number } {
  const H = o.hidden;
  const C = classes;
  const w1 = Float32Array.from({ length: inDim * H }, () => gauss(o.r) * 0.5);
  const b1 = new Float32Array(H);
  const w2 = Float32Array.from({ length: H * C }, () => gauss(o.r) * Math.sqrt(2 / H));
  const b2 = new Float32Array(C);
  // Adam's moments, and the step at which each row of w1 was last updated.
  const m1 = new Float32Array(w1.length), v1 = new Float32Array(w1.length);
  const mb1 = new Float32Array(H), vb1 = new Float32Array(H);
  const m2 = new Float32Array(w2.length), v2 = new Float32Array(w2.length);
  const mb2 = new Float32Array(C), vb2 = new Float32Array(C);
  const g1 = new Float32Array(w1.length);
  const gb1 = new Float32Array(H), g2 = new Float32Array(w2.length), gb2 = new Float32Array(C);
  const touched = new Uint8Array(inDim);
  const rows: number[] = [];
  const b1c = 0.9, b2c = 0.999, eps = 1e-8, l2 = o.l2 ?? 0;
  const h = new Float32Array(H), z = new Float32Array(C), dz = new Float32Array(C), dh = new Float32Array(H);
  const order = Int32Array.from(xs.keys());
  let step = 0;
  let loss = 0;
  const adam = (p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, i: number, lr: number) => {
    const gi = g[i]! + l2 * p[i]!;
    m[i] = b1c * m[i]! + (1 - b1c) * gi;
    v[i] = b2c * v[i]! + (1 - b2c) * gi * gi;
    p[i] = p[i]! - (lr * m[i]!) / (Math.sqrt(v[i]!) + eps);
    g[i] = 0;
  };
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(o.r() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    loss = 0;
    for (let start = 0; start < order.length; start += o.batch) {
      const end = Math.min(order.length, start + o.batch);
      const scale = 1 / (end - start);
      for (let k = start; k < end; k++) {
        const x = xs[order[k]!]!;
        const y = labels[order[k]!]!;
        h.set(b1);
        for (let a = 0; a < x.idx.length; a++) {
          const row = x.idx[a]! * H, xv = x.val[a]!;
          for (let j = 0; j < H; j++) h[j]! += xv * w1[row + j]!;
        }
        for (let j = 0; j < H; j++) if (h[j]! < 0) h[j] = 0;
        z.set(b2);
        for (let j = 0; j < H; j++) {
          const hj = h[j]!;
          if (hj === 0) continue;
          const row = j * C;
          for (let c = 0; c < C; c++) z[c]! += hj * w2[row + c]!;
        }
        let max = -Infinity;
        for (let c = 0; c < C; c++) if (z[c]! > max) max = z[c]!;
        let sum = 0;
        for (let c = 0; c < C; c++) sum += (z[c] = Math.exp(z[c]! - max));
        for (let c = 0; c < C; c++) {
          const p = z[c]! / sum;
          dz[c] = (p - (c === y ? 1 : 0)) * scale;
          gb2[c]! += dz[c]!;
        }
        loss -= Math.log(z[y]! / sum + 1e-12);
        for (let j = 0; j < H; j++) {
          const hj = h[j]!;
          const row = j * C;
          let s = 0;
          for (let c = 0; c < C; c++) {
            if (hj !== 0) g2[row + c]! += hj * dz[c]!;
            s += w2[row + c]! * dz[c]!;
          }
          dh[j] = hj > 0 ? s : 0;
          gb1[j]! += dh[j]!;
        }
        for (let a = 0; a < x.idx.length; a++) {
          const i = x.idx[a]!, xv = x.val[a]!, row = i * H;
          if (!touched[i]) {
            touched[i] = 1;
            rows.push(i);
          }
          for (let j = 0; j < H; j++) g1[row + j]! += xv * dh[j]!;
        }
      }
      step++;
      const lr = (o.lr * Math.sqrt(1 - b2c ** step)) / (1 - b1c ** step);
      for (const i of rows) {
        touched[i] = 0;
        for (let j = i * H; j < i * H + H; j++) adam(w1, g1, m1, v1, j, lr);
      }
      rows.length = 0;
      for (let j = 0; j < H; j++) adam(b1, gb1, mb1, vb1, j, lr);
      for (let j = 0; j < w2.length; j++) adam(w2, g2, m2, v2, j, lr);
      for (let c = 0; c < C; c++) adam(b2, gb2, mb2, vb2, c, lr);
    }
    loss /= order.length;
  }
  return {
    layers: [
      { w: w1, b: b1, inDim, outDim: H, act: "relu" },
      { w: w2, b: b2, inDim: H, outDim: C },
    ],
    loss,
  };
}

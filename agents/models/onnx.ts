// A small ONNX writer: just enough of the protobuf wire format and of ONNX's
// messages (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto) to
// write the float32 graphs PAIO's models are made of. Field numbers follow
// onnx.proto3. No dependency: a model is a few hundred bytes of framing around
// its weights.

// --- protobuf wire format ----------------------------------------------------

class Writer {
  private parts: Uint8Array[] = [];

  private varint(v: number | bigint): void {
    let n = BigInt(v);
    if (n < 0n) n += 1n << 64n; // negative int64s take ten bytes, two's complement
    const out: number[] = [];
    do {
      let b = Number(n & 0x7fn);
      n >>= 7n;
      if (n > 0n) b |= 0x80;
      out.push(b);
    } while (n > 0n);
    this.parts.push(Uint8Array.from(out));
  }

  private key(field: number, wire: 0 | 2 | 5): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.varint(b.length);
    this.parts.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Writer): this {
    return this.bytes(field, m.finish());
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(b);
    return this;
  }

  finish(): Uint8Array {
    const len = this.parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(len);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

// --- ONNX messages -------------------------------------------------------------

export const FLOAT = 1;
export const INT64 = 7;

export interface Tensor {
  name: string;
  dims: number[];
  /** FLOAT data as float32, INT64 data as bigint64. */
  data: Float32Array | BigInt64Array;
}

export type Attr = { name: string } & ({ f: number } | { i: number } | { ints: number[] } | { s: string });

export interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Attr[];
}

/** A graph input or output: float32 with a shape whose entries are numbers or symbolic names ("batch"). */
export interface ValueInfo {
  name: string;
  shape: (number | string)[];
}

export interface Graph {
  name: string;
  nodes: Node[];
  initializers: Tensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  doc?: string;
}

function tensor(t: Tensor): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  const isFloat = t.data instanceof Float32Array;
  w.int(2, isFloat ? FLOAT : INT64);
  w.string(8, t.name);
  // raw_data: little-endian bytes of the elements.
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  w.bytes(9, raw.slice());
  return w;
}

function attribute(a: Attr): Writer {
  const w = new Writer().string(1, a.name);
  if ("f" in a) w.float(2, a.f).int(20, 1);
  else if ("i" in a) w.int(3, a.i).int(20, 2);
  else if ("s" in a) w.string(4, a.s).int(20, 3);
  else {
    for (const v of a.ints) w.int(8, v);
    w.int(20, 7);
  }
  return w;
}

function valueInfo(v: ValueInfo): Writer {
  const shape = new Writer();
  for (const d of v.shape) shape.message(1, typeof d === "number" ? new Writer().int(1, d) : new Writer().string(2, d));
  const tensorType = new Writer().int(1, FLOAT).message(2, shape);
  return new Writer().string(1, v.name).message(2, new Writer().message(1, tensorType));
}

function node(n: Node, i: number): Writer {
  const w = new Writer();
  for (const x of n.inputs) w.string(1, x);
  for (const x of n.outputs) w.string(2, x);
  w.string(3, `${n.op.toLowerCase()}_${i}`);
  w.string(4, n.op);
  for (const a of n.attrs ?? []) w.message(5, attribute(a));
  return w;
}

/** Serialises a model: ONNX IR version 8, default domain opset 13. */
export function encodeModel(g: Graph, meta: Record<string, string> = {}): Uint8Array {
  const graph = new Writer();
  g.nodes.forEach((n, i) => graph.message(1, node(n, i)));
  graph.string(2, g.name);
  for (const t of g.initializers) graph.message(5, tensor(t));
  if (g.doc) graph.string(10, g.doc);
  for (const v of g.inputs) graph.message(11, valueInfo(v));
  for (const v of g.outputs) graph.message(12, valueInfo(v));
  const model = new Writer().int(1, 8).string(2, "paio").string(3, "1").message(7, graph).message(8, new Writer().string(1, "").int(2, 13));
  for (const [k, v] of Object.entries(meta)) model.message(14, new Writer().string(1, k).string(2, v));
  return model.finish();
}

// --- building blocks -------------------------------------------------------------

export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): Tensor {
  return { name, dims, data: Float32Array.from(values) };
}

export function int64Tensor(name: string, values: number[]): Tensor {
  return { name, dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) };
}

/** Dense layers: y = act(x · W + b) for each layer; weights row-major [in, out]. */
export function mlpGraph(name: string, input: ValueInfo, output: ValueInfo, layers: { w: Float32Array; b: Float32Array; inDim: number; outDim: number; act?: "relu" | "tanh" | "sigmoid" | "softmax" }[]): Graph {
  const nodes: Node[] = [];
  const inits: Tensor[] = [];
  let x = input.name;
  layers.forEach((l, i) => {
    const last = i === layers.length - 1;
    inits.push({ name: `w${i}`, dims: [l.inDim, l.outDim], data: l.w }, { name: `b${i}`, dims: [l.outDim], data: l.b });
    const mm = `mm${i}`;
    const lin = last && !l.act ? output.name : `lin${i}`;
    nodes.push({ op: "MatMul", inputs: [x, `w${i}`], outputs: [mm] }, { op: "Add", inputs: [mm, `b${i}`], outputs: [lin] });
    x = lin;
    if (l.act) {
      const out = last ? output.name : `act${i}`;
      const op = { relu: "Relu", tanh: "Tanh", sigmoid: "Sigmoid", softmax: "Softmax" }[l.act];
      nodes.push({ op, inputs: [lin], outputs: [out], attrs: l.act === "softmax" ? [{ name: "axis", i: -1 }] : undefined });
      x = out;
    }
  });
  return { name, nodes, initializers: inits, inputs: [input], outputs: [output] };
}

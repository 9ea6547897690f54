// Running verified models with onnxruntime-node. Each model is loaded only
// after its manifest's signature and its file's hash check out; every call is
// timed (p50/p99 over the last 500 calls); a model that fails or turns slow
// stops being used, and the caller's rule answers instead.
//
// Which backend runs a model is measured, not assumed: every execution
// provider that could apply on this machine is timed on the model with a
// realistic batch, transfer included, and the fastest is kept.

import * as ort from "onnxruntime-node";
import { existsSync } from "node:fs";
import type { KeyObject } from "node:crypto";
import { join } from "node:path";
import { checkModelFile, verifyManifest, type ModelEntry } from "./manifest.ts";

export type ModelStateName = "loaded" | "refused" | "missing" | "rules";

export interface ModelStatus {
  name: string;
  state: ModelStateName;
  reason?: string;
  p50_ms?: number;
  p99_ms?: number;
  calls?: number;
  backend?: string;
  /** Who decides this model's class, from the evaluation in its manifest entry ("rule" when it has none). */
  decides?: "rule" | "model" | "both";
  /** Why, as the evaluation put it. */
  decidesWhy?: string;
}

/** Execution providers worth timing here: the CPU always; CUDA only where an NVIDIA device exists. */
export function candidateBackends(): string[] {
  const out = ["cpu"];
  if (existsSync("/dev/nvidia0")) out.push("cuda");
  return out;
}

export class Model {
  private timings: number[] = [];
  private failures = 0;
  state: ModelStateName = "loaded";
  reason?: string;

  constructor(
    readonly entry: ModelEntry,
    private session: ort.InferenceSession,
    readonly backend: string,
    readonly backendNote: string,
    /** A call slower than this counts against the model; too many and it is dropped for the rule. */
    private slowMs = 50,
  ) {}

  get name(): string {
    return this.entry.name;
  }

  /** Runs rows of `dim` floats; returns the first output's values, or undefined when the model is not usable now. */
  async run(rows: Float32Array[], dim: number): Promise<Float32Array | undefined> {
    if (this.state !== "loaded" || rows.length === 0) return undefined;
    const flat = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => flat.set(r.subarray(0, dim), i * dim));
    const t0 = performance.now();
    try {
      const out = await this.session.run({ [this.session.inputNames[0]!]: new ort.Tensor("float32", flat, [rows.length, dim]) });
      const ms = performance.now() - t0;
      this.timings.push(ms);
      if (this.timings.length > 500) this.timings.shift();
      if (ms > this.slowMs && ++this.failures >= 5) this.drop(`too slow: ${ms.toFixed(1)} ms per call (limit ${this.slowMs} ms)`);
      return out[this.session.outputNames[0]!]!.data as Float32Array;
    } catch (e) {
      this.drop(`inference failed: ${(e as Error).message}`);
      return undefined;
    }
  }

  drop(reason: string): void {
    this.state = "rules";
    this.reason = reason;
  }

  percentile(p: number): number | undefined {
    if (this.timings.length === 0) return undefined;
    const s = [...this.timings].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(p * s.length))];
  }

  status(): ModelStatus {
    const ev = this.entry.evaluation;
    return {
      name: this.name,
      state: this.state,
      reason: this.reason ?? this.backendNote,
      p50_ms: this.percentile(0.5),
      p99_ms: this.percentile(0.99),
      calls: this.timings.length,
      backend: this.backend,
      decides: ev?.decides ?? "rule",
      decidesWhy: ev?.why ?? "its manifest records no held-out evaluation, so the rule decides",
    };
  }
}

async function timeBackend(bytes: Uint8Array, backend: string, dim: number, batch: number): Promise<{ session: ort.InferenceSession; ms: number }> {
  // One thread, and no memory arena or planned buffers: the models' tensors are a few kilobytes.
  const session = await ort.InferenceSession.create(bytes, { executionProviders: [backend], graphOptimizationLevel: "all", intraOpNumThreads: 1, interOpNumThreads: 1, enableCpuMemArena: false, enableMemPattern: false });
  const x = new ort.Tensor("float32", new Float32Array(batch * dim).fill(0.1), [batch, dim]);
  const feeds = { [session.inputNames[0]!]: x };
  await session.run(feeds);
  const t0 = performance.now();
  const n = 20;
  for (let i = 0; i < n; i++) await session.run(feeds);
  return { session, ms: (performance.now() - t0) / n };
}

export interface LoadResult {
  models: Map<string, Model>;
  statuses: ModelStatus[];
}

/**
 * Loads the models a manifest lists, from `dir`, verified against `keys`.
 * `dims` gives each wanted model's input width; a wanted model the manifest
 * lacks is "missing", one that fails a check is "refused" with the reason.
 */
export async function loadModels(dir: string, keys: KeyObject[], dims: Record<string, number>, batch = 8, slowMs = 50): Promise<LoadResult> {
  const models = new Map<string, Model>();
  const statuses: ModelStatus[] = [];
  const manifestPath = join(dir, "manifest.json");
  if (!existsSync(manifestPath)) {
    for (const name of Object.keys(dims)) statuses.push({ name, state: "missing", reason: `no ${manifestPath}` });
    return { models, statuses };
  }
  const v = verifyManifest(manifestPath, keys);
  if (!v.ok) {
    for (const name of Object.keys(dims)) statuses.push({ name, state: "refused", reason: v.reason });
    return { models, statuses };
  }
  for (const [name, dim] of Object.entries(dims)) {
    const entry = v.manifest.body.models.find((m) => m.name === name);
    if (!entry) {
      statuses.push({ name, state: "missing", reason: `${manifestPath} lists no model '${name}'` });
      continue;
    }
    const file = checkModelFile(dir, entry);
    if (!file.ok) {
      statuses.push({ name, state: "refused", reason: file.reason });
      continue;
    }
    try {
      const timed: { backend: string; session: ort.InferenceSession; ms: number }[] = [];
      const skipped: string[] = [];
      for (const b of candidateBackends()) {
        try {
          timed.push({ backend: b, ...(await timeBackend(file.bytes, b, dim, batch)) });
        } catch (e) {
          skipped.push(`${b}: ${(e as Error).message.split("\n")[0]}`);
        }
      }
      if (timed.length === 0) throw new Error(skipped.join("; "));
      timed.sort((a, b) => a.ms - b.ms);
      const best = timed[0]!;
      for (const t of timed.slice(1)) await t.session.release();
      const note = timed.length === 1 && skipped.length === 0 && candidateBackends().length === 1
        ? `backend cpu (${best.ms.toFixed(3)} ms per batch of ${batch}); no accelerator on this machine`
        : `backend ${best.backend}, fastest measured: ${timed.map((t) => `${t.backend} ${t.ms.toFixed(3)} ms`).join(", ")}${skipped.length ? `; unusable: ${skipped.join("; ")}` : ""}`;
      const m = new Model(entry, best.session, best.backend, note, slowMs);
      models.set(name, m);
      statuses.push(m.status());
    } catch (e) {
      statuses.push({ name, state: "refused", reason: `${join(dir, entry.file)}: onnxruntime cannot load it: ${(e as Error).message}` });
    }
  }
  return { models, statuses };
}

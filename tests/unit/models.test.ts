// The agent's models: written with our ONNX writer, run by onnxruntime-node,
// agreeing with the same computation in TypeScript; the signed manifest
// accepts the real files and refuses an altered model or manifest, saying why
// (retraining on the device: tests/unit/retrain.test.ts).
import { beforeAll, describe, expect, test } from "vitest";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { encodeModel, mlpGraph } from "../../agents/models/onnx.ts";
import { forward, initMlp, rng } from "../../agents/models/train.ts";
import { anomalyGraph } from "../../agents/models/anomaly-model.ts";
import { nearestDistance } from "../../agents/analyze/anomaly.ts";
import { loadModels } from "../../agents/models/runtime.ts";
import { trustedKeys } from "../../agents/models/manifest.ts";
import { loadAgentModels } from "../../agents/agent/models.ts";

const REPO = join(import.meta.dirname, "../..");
const BUILT = join(REPO, "out/models");

beforeAll(() => {
  // `make models` (a dependency of `make test`) leaves them here; build them if a test runs alone.
  const r = Bun.spawnSync([process.execPath, join(REPO, "agents/models/build.ts")], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
}, 120_000);

describe("ONNX writer", () => {
  test("an MLP written here computes in onnxruntime what it computes in TypeScript", async () => {
    const r = rng(7);
    const layers = initMlp([5, 8, 3], r);
    const session = await ort.InferenceSession.create(encodeModel(mlpGraph("t", { name: "x", shape: ["batch", 5] }, { name: "y", shape: ["batch", 3] }, layers)));
    const xs = Array.from({ length: 4 }, () => Float32Array.from({ length: 5 }, () => r() * 2 - 1));
    const flat = new Float32Array(20);
    xs.forEach((x, i) => flat.set(x, i * 5));
    const out = (await session.run({ x: new ort.Tensor("float32", flat, [4, 5]) })).y!.data as Float32Array;
    xs.forEach((x, i) => {
      const want = forward(layers, x)[2]!;
      for (let j = 0; j < 3; j++) expect(out[i * 3 + j]).toBeCloseTo(want[j]!, 5);
    });
  });

  test("the anomaly graph returns the squared distance to the nearest centre", async () => {
    const r = rng(3);
    const centres = Array.from({ length: 4 }, () => Float32Array.from({ length: 6 }, () => r() * 4 - 2));
    const session = await ort.InferenceSession.create(encodeModel(anomalyGraph(centres)));
    const x = Float32Array.from({ length: 6 }, () => r() * 4 - 2);
    const out = (await session.run({ x: new ort.Tensor("float32", x, [1, 6]) })).distance!.data as Float32Array;
    expect(out[0]).toBeCloseTo(nearestDistance(x, centres), 4);
  });
});

describe("signed manifest", () => {
  const copy = () => {
    const d = mkdtempSync(join(tmpdir(), "paio-models-"));
    cpSync(BUILT, join(d, "models"), { recursive: true });
    cpSync(join(BUILT, "model-signing.pub"), join(d, "keys", "paio.pub"), { recursive: true });
    return { dir: join(d, "models"), keys: join(d, "keys") };
  };
  const dims = { "memory-forecast": 30, anomaly: 6 };

  test("the built models load, verified, and report their measured cost and backend", async () => {
    const { dir, keys } = copy();
    const { models, statuses } = await loadModels(dir, trustedKeys([keys]), dims);
    expect(statuses.map((s) => [s.name, s.state])).toEqual([["memory-forecast", "loaded"], ["anomaly", "loaded"]]);
    const m = models.get("memory-forecast")!;
    await m.run([new Float32Array(30)], 30);
    expect(m.status().p50_ms).toBeGreaterThan(0);
    expect(m.status().reason).toMatch(/backend cpu/);
  });

  test("one changed byte in a model file: refused, with the reason", async () => {
    const { dir, keys } = copy();
    const f = join(dir, "anomaly.onnx");
    const b = readFileSync(f);
    b[b.length - 3]! ^= 0x01;
    writeFileSync(f, b);
    const { statuses } = await loadModels(dir, trustedKeys([keys]), dims);
    expect(statuses[0]!.state).toBe("loaded");
    expect(statuses[1]).toMatchObject({ name: "anomaly", state: "refused" });
    expect(statuses[1]!.reason).toMatch(/anomaly\.onnx: sha256 .* does not match the manifest's .* \(the file was altered\)/);
  });

  test("a manifest edited to match an altered model fails its signature; an unknown key is refused", async () => {
    const { dir, keys } = copy();
    const path = join(dir, "manifest.json");
    const m = JSON.parse(readFileSync(path, "utf8"));
    m.body.models[0].sha256 = "0".repeat(64);
    writeFileSync(path, JSON.stringify(m));
    const { statuses } = await loadModels(dir, trustedKeys([keys]), dims);
    expect(statuses.every((s) => s.state === "refused" && /signature does not match/.test(s.reason!))).toBe(true);
    const other = await loadModels(copy().dir, trustedKeys([join(tmpdir(), "no-such-keys")]), dims);
    expect(other.statuses[0]!.reason).toMatch(/signed by key [0-9a-f]{16}, which is not a trusted key/);
  });

  test("the agent's forecast scorer predicts growth for a leak and none for a flat series", async () => {
    const { dir, keys } = copy();
    const models = await loadAgentModels(() => {}, dir, keys);
    const leak = Float32Array.from({ length: 30 }, (_, i) => 0.3 + 0.01 * i);
    const flat = new Float32Array(30).fill(0.4);
    const fast = Float32Array.from({ length: 30 }, (_, i) => 0.05 + 0.03 * i);
    const p = (await models.forecast!.score([leak, flat, fast]))!;
    expect(p[2]).toBeGreaterThan(1.5); // 0.92 now, +0.9 in 30 s: far past the limit
    expect(p[0]).toBeGreaterThan(0.7); // 0.59 now, +0.3 in 30 s
    expect(p[0]).toBeLessThan(1.1);
    expect(Math.abs(p[1]! - 0.4)).toBeLessThan(0.05);
  });
});

// Models decide only where they beat their rule (agents/models/evaluate.ts):
// on the committed sample trace (recorded from the image), a real ONNX
// forecast model that always predicts the limit is judged against the rule,
// loses on false alarms, and is not chosen; a detector set by that choice
// never lets it decide, while one that let it would raise its false alarms;
// and the agent takes the choice from the signed manifest.
import { beforeAll, describe, expect, test } from "vitest";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { encodeModel, mlpGraph } from "../../agents/models/onnx.ts";
import { Model } from "../../agents/models/runtime.ts";
import { forecastScorer, loadAgentModels } from "../../agents/agent/models.ts";
import { WINDOW } from "../../agents/analyze/forecast.ts";
import type { Scorer } from "../../agents/analyze/detect.ts";
import { beats, evaluate, replay, type Score } from "../../agents/models/evaluate.ts";
import { TRACE_FORMAT, readTrace, type Trace } from "../../agents/models/trace.ts";
import { publicPem, signManifest, type Manifest, type ModelEntry } from "../../agents/models/manifest.ts";

const REPO = join(import.meta.dirname, "../..");
const sample = readTrace(join(REPO, "tests/traces/sample/sample.json.gz"));

/** A forecast model that always says memory will rise by the whole limit within 30 s: real ONNX, run by onnxruntime. */
async function wolf(): Promise<Scorer> {
  const layers = [{ w: new Float32Array(WINDOW), b: Float32Array.from([1]), inDim: WINDOW, outDim: 1 }];
  const bytes = encodeModel(mlpGraph("wolf", { name: "x", shape: ["batch", WINDOW] }, { name: "y", shape: ["batch", 1] }, layers));
  const entry = { name: "memory-forecast", file: "wolf.onnx", sha256: "", size: bytes.length, inputs: "", outputs: "", metrics: {}, training: "test" } as ModelEntry;
  return forecastScorer(new Model(entry, await ort.InferenceSession.create(bytes), "cpu", "test", Infinity));
}

const row = (scores: Score[], detector: string, cls: string) => scores.find((s) => s.detector === detector && s.class === cls)!;

/**
 * A constructed trace (test input, not a figure): a unit at 60 % of its
 * 100 MiB limit for 10 minutes, a 1 MiB/s leak to an OOM kill, then 10 quiet
 * minutes again. The recorded sample cannot tell a crying model from the
 * rule: its units idle under a quarter of their limits, below which the
 * detector never looks, and its leak is over in 9 s.
 */
function steadyThenLeak(): Trace {
  const frames: (number | null)[][] = [];
  const t0 = 1_800_000_000_000;
  let restarts = 0;
  for (let s = 0; s < 1300; s++) {
    let mem = 60 + Math.sin(s / 7) * 0.5;
    if (s >= 600 && s < 640) mem = 60 + (s - 600);
    if (s === 640) restarts++;
    if (s >= 640) mem = 60 + Math.sin(s / 7) * 0.5;
    frames.push([t0 + s * 1000, +mem.toFixed(3), restarts]);
  }
  return {
    format: TRACE_FORMAT, scenario: "constructed", seed: 0, date: "", commit: "", machine: "",
    units: { svc: { memory_max_mb: 100 } },
    labels: [{ class: "leak", unit: "svc", start: t0 + 600_000, end: t0 + 645_000, detail: "1 MiB/s" }],
    metrics: ["unit.svc.mem_mb", "unit.svc.restarts"],
    frames,
  };
}

describe("the evaluation decides who decides", () => {
  let model: Scorer;
  beforeAll(async () => {
    model = await wolf();
  });

  test("a forecast model that cries wolf raises false alarms in quiet running, loses to the rule, and is not chosen", async () => {
    const r = await evaluate([steadyThenLeak()], { forecast: model });
    const rule = row(r.scores, "rule", "leak");
    const alone = row(r.scores, "model", "leak");
    expect(alone.falseAlarms).toBeGreaterThan(rule.falseAlarms);
    expect(beats(alone, rule)).toBe(false);
    expect(rule).toMatchObject({ faults: 1, found: 1, falseAlarms: 0 });
    expect(r.choices.find((c) => c.class === "leak")).toMatchObject({ uses: "rule" });
  });

  test("on the recorded sample, every way is scored over all its frames and labels", async () => {
    const r = await evaluate([sample], { forecast: model });
    expect(r.traces).toEqual([expect.objectContaining({ scenario: "sample", frames: sample.frames.length, labels: 2 })]);
    for (const way of ["rule", "model", "both"]) expect(row(r.scores, way, "leak")).toMatchObject({ faults: 1 });
    expect(row(r.scores, "rule", "anomaly")).toMatchObject({ faults: 2 });
    expect(r.forecast.windows).toBeGreaterThan(0);
  });

  test("a detector set to the rule never lets the model decide; one set to the model does, and cries wolf", async () => {
    const trace = steadyThenLeak();
    const byRule = await replay(trace, { leak: "rule", anomaly: "rule" }, { forecast: model });
    expect(byRule.filter((f) => f.class === "leak" && f.evidence.by === "model")).toEqual([]);
    expect(byRule.filter((f) => f.class === "leak").map((f) => f.time >= trace.labels[0]!.start && f.time <= trace.labels[0]!.end)).toEqual([true]);
    const byModel = await replay(trace, { leak: "model", anomaly: "rule" }, { forecast: model });
    const quiet = byModel.filter((f) => f.class === "leak" && f.evidence.by === "model" && f.time < trace.labels[0]!.start);
    expect(quiet.length).toBeGreaterThan(0);
  });

  test("beats: more faults found at no more false alarms, or as many with fewer", () => {
    const s = (found: number, fa: number): Score => ({ detector: "x", class: "leak", faults: 3, found, findings: found, truePositives: found, falseAlarms: fa, quietHours: 1, recall: found / 3, precision: 1, falseAlarmsPerDay: fa * 24, medianLeadS: null });
    expect(beats(s(3, 0), s(2, 0))).toBe(true);
    expect(beats(s(2, 0), s(2, 1))).toBe(true);
    expect(beats(s(3, 2), s(2, 1))).toBe(false);
    expect(beats(s(2, 1), s(2, 1))).toBe(false);
    expect(beats(s(1, 0), s(2, 5))).toBe(false);
  });
});

describe("the agent takes the choice from the signed manifest", () => {
  test("each class is decided as the manifest's evaluation says; a model without one leaves its class to the rule", async () => {
    const built = join(REPO, "out/models");
    const d = mkdtempSync(join(tmpdir(), "paio-decide-"));
    cpSync(built, join(d, "models"), { recursive: true });
    const { privateKey } = generateKeyPairSync("ed25519");
    mkdirSync(join(d, "keys"));
    writeFileSync(join(d, "keys", "test.pub"), publicPem(privateKey));
    const m = JSON.parse(readFileSync(join(built, "manifest.json"), "utf8")) as Manifest;
    const models = m.body.models.map((e) => ({ ...e, evaluation: undefined as ModelEntry["evaluation"] }));
    models.find((e) => e.name === "memory-forecast")!.evaluation = { decides: "both", why: "test: found more leaks", traces: ["sample:7001"] };
    writeFileSync(join(d, "models", "manifest.json"), JSON.stringify(signManifest({ ...m.body, models }, privateKey)));
    const said: string[] = [];
    const loaded = await loadAgentModels((l) => said.push(l), join(d, "models"), join(d, "keys"));
    expect(loaded.decisions).toEqual({ leak: "both", anomaly: "rule" });
    expect(said).toContain("leak findings: the model and the rule decide together (held-out evaluation in the manifest)");
    expect(loaded.states.find((s) => s.name === "anomaly")).toMatchObject({ decides: "rule", decidesWhy: expect.stringMatching(/no held-out evaluation/) });
  });
});

describe("the table on either set of recorded traces (agents/models/replay.ts)", () => {
  const run = (...args: string[]) => Bun.spawnSync([process.execPath, join(REPO, "agents/models/replay.ts"), ...args], { cwd: REPO });

  test("the training set's table names the training scenarios and makes no choice; the held-out one names the held-out scenarios and does", () => {
    const training = run("--set", "training");
    expect(training.exitCode).toBe(0);
    const t = training.stdout.toString();
    expect(t).toMatch(/^training set:\ntraces: leaks-a /);
    for (const name of ["leaks-b", "storage-a", "mixed-c", "sample"]) expect(t).not.toContain(`${name} (`);
    expect(t).not.toMatch(/: the agent uses /);
    const held = run().stdout.toString();
    expect(held).toMatch(/^held-out set:\ntraces: leaks-b /);
    expect(held).toMatch(/^leak: the agent uses /m);
  });

  test("an unknown set is refused with the usage", () => {
    const r = run("--set", "everything");
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain("usage: bun agents/models/replay.ts [--set training|held-out]");
  });
});

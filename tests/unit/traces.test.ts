// Real traces (tests/traces/): the training/held-out split is by whole
// scenario and covers every scenario once; timelines are reproducible from
// their seed; and the committed sample trace, recorded from the image by
// `make traces`, holds what its labels say (the leak really grew to an OOM
// kill, the outside spinner really loaded the CPU), so a label cannot drift
// from the data it names.
import { describe, expect, test } from "vitest";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { quietWindowsOf } from "../../agents/models/anomaly-model.ts";
import { SCENARIOS, TRACE_CLASSES, durationS, timeline } from "../traces/scenarios.ts";
import { HELD_OUT_SCENARIOS, TRAIN_SCENARIOS } from "../../agents/models/split.ts";
import { TRACE_FORMAT, anomalyMetrics, loadTraces, memoryWindows, readTrace } from "../../agents/models/trace.ts";

const SAMPLE = join(import.meta.dirname, "..", "traces", "sample", "sample.json.gz");

describe("the split", () => {
  test("training and held-out scenarios do not overlap, and together name every scenario exactly once", () => {
    const train = new Set(TRAIN_SCENARIOS);
    expect(HELD_OUT_SCENARIOS.filter((s) => train.has(s))).toEqual([]);
    expect([...TRAIN_SCENARIOS, ...HELD_OUT_SCENARIOS].sort()).toEqual(SCENARIOS.map((s) => s.name).sort());
    expect(new Set(SCENARIOS.map((s) => s.seed)).size).toBe(SCENARIOS.length);
  });

  test("every fault class is in some held-out scenario's mix", () => {
    const held = SCENARIOS.filter((s) => HELD_OUT_SCENARIOS.includes(s.name));
    for (const c of TRACE_CLASSES) expect(held.some((s) => s.mix.includes(c)), c).toBe(true);
  });
});

describe("timelines", () => {
  test("the same scenario gives the same timeline; faults never overlap and start after the quiet spell", () => {
    for (const s of SCENARIOS) {
      const t = timeline(s);
      expect(timeline(s)).toEqual(t);
      expect(t).toHaveLength(s.faults);
      expect(t[0]!.at).toBe(s.quietS);
      for (let i = 1; i < t.length; i++) expect(t[i]!.at).toBeGreaterThanOrEqual(t[i - 1]!.at + t[i - 1]!.holdS + 45);
      for (const f of t) expect(s.mix).toContain(f.class);
      expect(durationS(s)).toBeGreaterThan(t.at(-1)!.at + t.at(-1)!.holdS);
    }
  });
});

describe("the committed sample trace", () => {
  const trace = readTrace(SAMPLE);
  const col = (name: string) => {
    const i = trace.metrics.indexOf(name);
    expect(i, `metric ${name}`).toBeGreaterThanOrEqual(0);
    return trace.frames.map((f) => ({ ts: f[0]!, v: f[i + 1] ?? null }));
  };
  const within = (xs: { ts: number; v: number | null }[], from: number, to: number) => xs.filter((x) => x.ts >= from && x.ts <= to && x.v !== null).map((x) => x.v!);

  test("is a trace of the sample scenario, its frames in time order, its labels inside them and as planned", () => {
    expect(trace.format).toBe(TRACE_FORMAT);
    expect(trace.scenario).toBe("sample");
    const planned = timeline(SCENARIOS.find((s) => s.name === "sample")!);
    expect(trace.labels.map((l) => l.class)).toEqual(planned.map((f) => f.class));
    const ts = trace.frames.map((f) => f[0]!);
    for (let i = 1; i < ts.length; i++) expect(ts[i]).toBeGreaterThan(ts[i - 1]!);
    for (const l of trace.labels) {
      expect(l.start).toBeGreaterThanOrEqual(ts[0]!);
      expect(l.end).toBeLessThanOrEqual(ts.at(-1)!);
      expect(l.end).toBeGreaterThan(l.start);
    }
    for (const f of trace.frames) expect(f).toHaveLength(trace.metrics.length + 1);
  });

  test("the leak label holds a real leak: the leaky unit's memory grows toward its limit and it is restarted (OOM) before the label ends", () => {
    const leak = trace.labels.find((l) => l.class === "leak")!;
    const mem = col("unit.leaky.mem_mb");
    const before = within(mem, leak.start - 20_000, leak.start);
    const during = within(mem, leak.start, leak.end);
    expect(Math.max(...during)).toBeGreaterThan(Math.max(...before) + 40);
    expect(Math.max(...during)).toBeLessThanOrEqual(trace.units.leaky!.memory_max_mb! + 1);
    const restarts = within(col("unit.leaky.restarts"), leak.start - 5000, leak.end + 5000);
    expect(restarts.at(-1)!).toBeGreaterThan(restarts[0]!);
  });

  test("the outside-hog label holds a real spinner: the system's CPU use rises while no unit's does", () => {
    const hog = trace.labels.find((l) => l.class === "outside-hog")!;
    const cpu = col("sys.cpu_pct");
    const quiet = within(cpu, trace.frames[0]![0]!, trace.labels[0]!.start);
    const during = within(cpu, hog.start + 5000, hog.end - 2000);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    expect(median(during)).toBeGreaterThan(median(quiet) + 25);
  });
});

describe("traces as training data", () => {
  const RECORDED = join(import.meta.dirname, "..", "traces", "recorded");
  const SAMPLE_DIR = join(import.meta.dirname, "..", "traces", "sample");

  test("loadTraces gives only the scenarios asked for, says which are missing, and refuses a file that holds another scenario", () => {
    const { traces, missing } = loadTraces(["sample", "no-such-scenario"], [SAMPLE_DIR]);
    expect(traces.map((t) => t.scenario)).toEqual(["sample"]);
    expect(missing).toEqual(["no-such-scenario"]);
    expect(loadTraces(TRAIN_SCENARIOS, [SAMPLE_DIR]).traces).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), "paio-traces-"));
    try {
      copyFileSync(SAMPLE, join(dir, "leaks-a.json.gz"));
      expect(() => loadTraces(["leaks-a"], [dir])).toThrow(/leaks-a\.json\.gz: holds a trace of scenario "sample", not "leaks-a"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("every committed recorded trace is a known scenario's, under its own name, and the trainers get none of the held-out ones", () => {
    const files = existsSync(RECORDED) ? readdirSync(RECORDED).filter((f) => f.endsWith(".json.gz")) : [];
    for (const f of files) {
      const t = readTrace(join(RECORDED, f));
      expect(`${t.scenario}.json.gz`).toBe(f);
      const s = SCENARIOS.find((x) => x.name === t.scenario)!;
      expect(s.seed, f).toBe(t.seed);
      expect(t.labels.map((l) => l.class), f).toEqual(timeline(s).map((p) => p.class));
    }
    const training = loadTraces(TRAIN_SCENARIOS, [SAMPLE_DIR, RECORDED]).traces.map((t) => t.scenario);
    for (const name of training) expect(HELD_OUT_SCENARIOS).not.toContain(name);
  });

  test("the anomaly model learns only from quiet running: no window that ends inside a fault or its grace", () => {
    const trace = readTrace(SAMPLE);
    const all = quietWindowsOf({ ...trace, labels: [] }).length;
    const quiet = quietWindowsOf(trace).length;
    expect(quiet).toBeGreaterThan(100);
    expect(quiet).toBeLessThan(all);
    // Labelled from start to end: nothing is quiet, nothing is learned.
    const busy = { ...trace, labels: [{ class: "leak" as const, unit: null, start: trace.frames[0]![0]!, end: trace.frames.at(-1)![0]!, detail: "" }] };
    expect(quietWindowsOf(busy)).toEqual([]);
    // Each metric the detector judges contributes: the count is the sum of its quiet frames past the warm-up.
    for (const m of anomalyMetrics(trace)) expect(m.startsWith("unit.") || m.startsWith("sys.mem_avail")).toBe(false);
  });

  test("memory windows are the forecast's shape: 30 s of fractions of memory.max and the value 30 s later, never across a gap", () => {
    const trace = readTrace(SAMPLE);
    const rows = memoryWindows(trace, 30, 30, 1);
    expect(rows.length).toBeGreaterThan(100);
    for (const r of rows) {
      expect(r.w).toHaveLength(30);
      for (const v of [...r.w, r.actual]) expect(v).toBeGreaterThanOrEqual(0);
    }
    // A gap of a minute in the frames: no window spans it.
    const cut = Math.floor(trace.frames.length / 2);
    const gapped = { ...trace, frames: trace.frames.map((f, i) => (i >= cut ? [f[0]! + 60_000, ...f.slice(1)] : f)) };
    const spans = memoryWindows(gapped, 30, 30, 1);
    expect(spans.length).toBeLessThan(rows.length);
  });
});

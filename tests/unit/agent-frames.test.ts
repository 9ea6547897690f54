// The metric history on flash storage: a frame stores only the values that
// changed since the one before (a full frame at least every minute), a reader
// rebuilds any frame exactly, folding keeps what is left readable, and an
// idle agent commits once a minute, not every few seconds.
import { afterEach, describe, expect, test } from "vitest";
import { Database } from "bun:sqlite";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KEYFRAME_MS, Knowledge, applyDelta, deltaBlob } from "../../agents/knowledge/store.ts";
import { Agent, FLUSH_EVERY_MS } from "../../agents/agent/agent.ts";
import { DEFAULT_CONFIG } from "../../agents/agent/config.ts";
import { DEFAULT_POLICY } from "../../agents/guard/policy.ts";
import type { Collector } from "../../agents/monitor/monitor.ts";
import type { Request, Response, UnitStatus, UnitSummary } from "../../init/control/protocol.ts";

const dirs: string[] = [];
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), "paio-frames-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const f32 = (x: number) => Math.fround(x);

/** An idle device's frame: most values repeat, a few drift. */
function idleValues(i: number): Record<string, number> {
  const v: Record<string, number> = { "sys.cpu_pct": 2 + (i % 7) / 10, "sys.mem_pct": 31.5, "psi.cpu": 0, "sys.load1": 0.08 };
  for (let u = 0; u < 6; u++) Object.assign(v, { [`unit.u${u}.mem_mb`]: 12 + u, [`unit.u${u}.pids`]: 1, [`unit.u${u}.restarts`]: 0, [`unit.u${u}.cpu_pct`]: 0 });
  return v;
}

describe("changes-only frames", () => {
  test("the bitmap encoding round-trips, NaN and -0 included", () => {
    const prev = Float32Array.from([1, 2, 3, NaN, 0, 5, 6, 7, 8, 9]);
    const cur = Float32Array.from([1, 2.5, 3, NaN, -0, 5, 6, 7, 8, 10]);
    const blob = deltaBlob(prev, cur);
    expect(blob.byteLength).toBe(2 + 3 * 4); // 10 values: 2 bytes of bitmap, 3 changed values
    expect([...applyDelta(prev, blob)]).toEqual([...cur]);
    expect(Object.is(applyDelta(prev, blob)[4], -0)).toBe(true);
    // A truncated blob changes what it holds and nothing more: never a crash.
    expect([...applyDelta(prev, blob.subarray(0, 6))]).toEqual([1, 2.5, 3, NaN, 0, 5, 6, 7, 8, 9]);
  });

  test("any frame reads back exactly, from any starting point, across a change of the metric set", () => {
    const k = new Knowledge(join(dir(), "kb.db"));
    const t0 = 1_700_000_000_000;
    const written: { ts: number; values: Record<string, number> }[] = [];
    for (let i = 0; i < 200; i++) {
      const values = idleValues(i);
      if (i >= 120) values["unit.new.mem_mb"] = 40 + i; // a unit added at 120 s
      if (i % 45 === 0) values["sys.mem_pct"] = 31.5 + i / 100;
      written.push({ ts: t0 + i * 1000, values });
      k.addFrame({ ts: t0 + i * 1000, values });
    }
    const rows = k.db.query<{ delta: number; n: number }, []>("SELECT delta, COUNT(*) AS n FROM frames_1s GROUP BY delta ORDER BY delta").all();
    // Full frames: the first, the first of every minute (t0 is 20 s into a minute: 40 s, 100 s, 160 s), and the one where the metric set changed (120 s).
    expect(rows).toEqual([{ delta: 0, n: 5 }, { delta: 1, n: 195 }]);
    for (const from of [0, 1, 59, 61, 119, 120, 121, 199]) {
      const got = k.frames(t0 + from * 1000, t0 + 199_000);
      expect(got).toHaveLength(200 - from);
      got.forEach((f, j) => {
        const w = written[from + j]!;
        expect(f.ts).toBe(w.ts);
        expect(Object.keys(f.values).sort()).toEqual(Object.keys(w.values).sort());
        for (const [name, v] of Object.entries(w.values)) expect(f.values[name]).toBe(f32(v));
      });
    }
    // An idle frame is a fraction of a full one.
    const size = (delta: number) => k.db.query<{ b: number }, [number]>("SELECT AVG(LENGTH(vals)) AS b FROM frames_1s WHERE delta = ?").get(delta)!.b;
    expect(size(1)).toBeLessThan(size(0) / 4);
    k.close();
  });

  test("folding whole minutes keeps the frames after the cutoff readable; a minute is folded once, from all of its frames", () => {
    const k = new Knowledge(join(dir(), "kb.db"), { fineRetentionMs: 120_000 });
    const t0 = 1_700_000_040_000; // a minute boundary
    for (let i = 0; i < 300; i++) k.addFrame({ ts: t0 + 30_000 + i * 1000, values: { ...idleValues(i), "sys.cpu_pct": i } });
    // Now = t0 + 330 s: the cutoff is the minute boundary at or before t0 + 210 s, i.e. t0 + 180 s. Three minutes past the retention: not yet ten.
    expect(k.fold(t0 + 330_000)).toEqual({ folded: 0, dropped: 0 });
    const r = k.fold(t0 + 330_000, true);
    expect(r.folded).toBe(150); // t0+30 s .. t0+179 s
    const minutes = k.frames(0, Infinity, "frames_1m");
    expect(minutes.map((m) => m.ts - t0)).toEqual([0, 60_000, 120_000]);
    expect(minutes[0]!.values["sys.cpu_pct"]).toBeCloseTo(14.5, 3); // frames 0..29 (t0+30 s .. t0+59 s)
    expect(minutes[1]!.values["sys.cpu_pct"]).toBeCloseTo(59.5, 3);
    // The first frame left is whole (the first of its minute), and every frame after it reads back.
    const first = k.db.query<{ ts: number; delta: number }, []>("SELECT ts, delta FROM frames_1s ORDER BY ts LIMIT 1").get()!;
    expect(first).toEqual({ ts: t0 + 180_000, delta: 0 });
    const left = k.frames(t0 + 180_000, Infinity);
    expect(left).toHaveLength(150);
    expect(left.map((f) => f.values["sys.cpu_pct"])).toEqual(Array.from({ length: 150 }, (_, i) => 150 + i));
    // Nothing more is due a second later: no write.
    expect(k.fold(t0 + 331_000, true)).toEqual({ folded: 0, dropped: 0 });
    k.close();
  });

  test("at idle, old seconds are folded ten minutes at a time: a tenth of the commits", () => {
    const k = new Knowledge(join(dir(), "kb.db"), { fineRetentionMs: 60_000 });
    const t0 = 1_700_000_040_000;
    k.addFrames(Array.from({ length: 1500 }, (_, i) => ({ ts: t0 + i * 1000, values: idleValues(i) })));
    const due = [];
    // Once a minute, as the agent does, from 70 s to 25 min.
    for (let m = 1; m <= 24; m++) if (k.fold(t0 + 70_000 + m * 60_000).folded) due.push(m);
    expect(due).toEqual([10, 20]);
    expect(k.frames(0, Infinity, "frames_1m")).toHaveLength(20);
    k.close();
  });

  test("a database from before changes-only frames opens, and its frames read as they were", () => {
    const d = dir();
    const path = join(d, "agent", "kb.db");
    mkdirSync(join(d, "agent"));
    const old = new Database(path, { create: true });
    old.run("CREATE TABLE keysets (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE)");
    old.run("CREATE TABLE frames_1s (ts INTEGER PRIMARY KEY, keyset INTEGER NOT NULL, vals BLOB NOT NULL)");
    old.run("INSERT INTO keysets (id, names) VALUES (1, 'a\nb')");
    old.run("INSERT INTO frames_1s VALUES (1000, 1, ?)", [new Uint8Array(Float32Array.from([1, 2]).buffer)]);
    old.close();
    const k = new Knowledge(path);
    expect(k.frames(0, 5000)).toEqual([{ ts: 1000, values: { a: 1, b: 2 } }]);
    k.addFrame({ ts: 2000, values: { a: 1, b: 3 } });
    expect(k.frames(0, 5000).map((f) => f.values.b)).toEqual([2, 3]);
    k.close();
  });
});

/** A supervisor that answers like the real one, for an agent run in the test's own process. */
function fakeSupervisor(units: string[]) {
  const summary = (name: string): UnitSummary => ({ name, description: "", state: "running", reason: "started", since: 0, restarts: 0, ports: [] });
  return {
    async request(req: Request): Promise<Response> {
      return { ok: true, result: req.op === "list" ? units.map(summary) : {} };
    },
    async list() {
      return units.map(summary);
    },
    async status(unit: string) {
      return { ...summary(unit), frozen: false, exec: [], restart: "always", limits: {}, latency_sensitive: false } as UnitStatus;
    },
  };
}

describe("an idle agent's writes", () => {
  test("one commit a minute at a 1 s tick; the buffered frames are written on request (SIGTERM)", async () => {
    const d = dir();
    const path = join(d, "agent", "knowledge.db");
    const k = new Knowledge(path);
    // Idle and steady: fixed values, as an idle device gives them.
    const steady: Collector[] = [{ name: "steady", minPeriodMs: 1000, costMs: 0, lastRun: 0, last: {}, run: async () => ({ "sys.cpu_pct": 1.5, "sys.mem_pct": 30 }) }];
    const agent = new Agent({
      supervisor: fakeSupervisor(["a", "b", "c"]),
      knowledge: k,
      policy: DEFAULT_POLICY,
      config: { ...DEFAULT_CONFIG, retrainEveryMs: 0 },
      detector: { outsideScanMs: Infinity },
      cgroupRoot: join(d, "no-cgroup"),
      monitor: { collectors: steady, sysfsRoot: join(d, "no-sysfs") },
    });
    // Another connection sees each commit as a new data_version.
    const watcher = new Database(path, { readonly: true });
    const version = () => watcher.query<{ data_version: number }, []>("PRAGMA data_version").get()!.data_version;
    const t0 = 1_800_000_000_000;
    let commits = 0;
    let v = version();
    for (let i = 0; i < 180; i++) {
      await agent.tick(t0 + i * 1000);
      const now = version();
      if (now !== v) commits++;
      v = now;
    }
    expect(FLUSH_EVERY_MS).toBe(60_000);
    expect(commits).toBe(2); // at 60 s and 121 s, a minute of frames each; the rest waits in memory
    expect(k.frames(t0, t0 + 200_000)).toHaveLength(122);
    agent.flushFrames(t0 + 180_000);
    expect(k.frames(t0, t0 + 200_000)).toHaveLength(180);
    // Stored as changes: one full frame a minute, the rest hold nothing that repeated.
    const bytes = k.db.query<{ b: number }, []>("SELECT SUM(LENGTH(vals)) AS b FROM frames_1s").get()!.b;
    const full = k.db.query<{ b: number }, []>("SELECT MAX(LENGTH(vals)) AS b FROM frames_1s").get()!.b;
    expect(bytes).toBeLessThan(full * 3 + 180 * 4);
    expect(KEYFRAME_MS).toBe(60_000);
    watcher.close();
    k.close();
  });
});

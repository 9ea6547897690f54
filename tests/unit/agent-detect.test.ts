// The detectors, fed with the same data shapes the supervisor and the monitor
// produce: crash loops, OOM kills, leaks (with the rule forecast), fork bombs,
// and the hysteresis that keeps a single bad tick from raising anything.
import { describe, expect, test } from "vitest";
import { join } from "node:path";
import { Detector, DEFAULT_DETECTOR, recentGrowth, signatureOf } from "../../agents/analyze/detect.ts";
import { ruleForecast } from "../../agents/analyze/forecast.ts";
import { replay } from "../../agents/models/evaluate.ts";
import { columnOf, readTrace } from "../../agents/models/trace.ts";
import { Monitor, type Collector, type UnitSource } from "../../agents/monitor/monitor.ts";
import type { UnitEvent, UnitStatus, UnitSummary } from "../../init/control/protocol.ts";

const ev = (unit: string, to: UnitEvent["to"], reason: string, time: number): UnitEvent => ({ event: "unit", unit, from: "running", to, reason, time });

describe("crash loops", () => {
  test("three crashes within the window raise one finding; the agent's own restarts do not count", () => {
    const d = new Detector();
    expect(d.onUnitEvent(ev("cam", "backoff", "exited with status 3; restarting in 200 ms", 1000))).toEqual([]);
    expect(d.onUnitEvent(ev("cam", "backoff", "restarted by request", 1500))).toEqual([]);
    expect(d.onUnitEvent(ev("cam", "backoff", "exited with status 3; restarting in 400 ms", 2000))).toEqual([]);
    const f = d.onUnitEvent(ev("cam", "backoff", "exited with status 3; restarting in 800 ms", 3000));
    expect(f).toHaveLength(1);
    expect(signatureOf(f[0]!)).toBe("crash:cam:exit=3");
    expect(f[0]!.summary).toBe("cam crashed 3 times in 60 s (exit 3)");
  });

  test("crashes spread wider than the window do not; OOM kills are their own class; signals are details", () => {
    const d = new Detector();
    for (const t of [0, 40_000, 80_000]) expect(d.onUnitEvent(ev("a", "backoff", "exited with status 1", t))).toEqual([]);
    const oom = [0, 1, 2].flatMap((i) => d.onUnitEvent(ev("b", "backoff", "OOM kill: the unit used more than memory.max; restarting", i * 1000)));
    expect(oom.map(signatureOf)).toEqual(["oom:b"]);
    const sig = [0, 1, 2].flatMap((i) => d.onUnitEvent(ev("c", "backoff", "killed by signal SIGSEGV; restarting", i * 1000)));
    expect(sig.map(signatureOf)).toEqual(["crash:c:signal=SIGSEGV"]);
  });
});

/** A monitor over a scripted unit source: real Monitor code, cgroup files from a temporary directory. */
function scriptedMonitor(units: () => UnitSummary[], statuses: Record<string, Partial<UnitStatus>>, cgroupRoot: string): Monitor {
  const src: UnitSource = {
    list: async () => units(),
    status: async (u) => ({ limits: {}, ...statuses[u] }) as UnitStatus,
  };
  const none: Collector[] = [];
  return new Monitor(src, none, cgroupRoot);
}

describe("leaks and fork bombs, from cgroup files", () => {
  test("a steady leak towards memory.max is predicted after 3 ticks in a row; a flat unit is left alone", async () => {
    const { mkdtempSync, mkdirSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const root = mkdtempSync(join(tmpdir(), "paio-cg-"));
    for (const u of ["leaky", "flat"]) mkdirSync(join(root, u));
    const write = (u: string, f: string, v: string) => writeFileSync(join(root, u, f), v);
    const units = (): UnitSummary[] => ["leaky", "flat"].map((name) => ({ name, description: "", state: "running", reason: "", since: 0, restarts: 0, ports: [] }));
    const mon = scriptedMonitor(units, {}, root);
    const d = new Detector({ ...DEFAULT_DETECTOR, outsideScanMs: Infinity });
    const MB = 2 ** 20;
    let found: string[] = [];
    let at = -1;
    for (let t = 0; t < 40; t++) {
      write("leaky", "memory.max", String(64 * MB));
      write("leaky", "memory.current", String((8 + t) * MB));
      write("flat", "memory.max", String(64 * MB));
      write("flat", "memory.current", String((30 + (t % 3)) * MB));
      for (const u of ["leaky", "flat"]) write(u, "pids.current", "3");
      const tick = await mon.sample(1_000_000 + t * 1000);
      const f = await d.onTick(tick, mon);
      if (f.length && at < 0) at = t;
      found = found.concat(f.map(signatureOf));
    }
    expect(found).toEqual(["leak:leaky"]);
    // 1 MiB/s towards 64 MiB: acted on while there was still time.
    const eta = d.forecasts.get("leaky")!;
    expect(at).toBeGreaterThanOrEqual(11);
    expect(at).toBeLessThan(30);
    expect(eta.by).toBe("rule");
  });

  test("a fork bomb in a unit is found from pids.current growth", async () => {
    const { mkdtempSync, mkdirSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const root = mkdtempSync(join(tmpdir(), "paio-cg-"));
    mkdirSync(join(root, "bomb"));
    const mon = scriptedMonitor(() => [{ name: "bomb", description: "", state: "running", reason: "", since: 0, restarts: 0, ports: [] }], {}, root);
    const d = new Detector({ ...DEFAULT_DETECTOR, outsideScanMs: Infinity });
    const out: string[] = [];
    for (let t = 0; t < 6; t++) {
      writeFileSync(join(root, "bomb", "pids.current"), String(t < 3 ? 2 : 2 + (t - 2) * 40));
      out.push(...(await d.onTick(await mon.sample(t * 1000), mon)).map(signatureOf));
    }
    expect(out).toEqual(["fork-bomb:bomb"]);
  });

  test("a fork bomb that filled its group before the first look (no growth to see) is found from being pinned at pids.max", async () => {
    const { mkdtempSync, mkdirSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const root = mkdtempSync(join(tmpdir(), "paio-cg-"));
    for (const u of ["pinned", "busy"]) mkdirSync(join(root, u));
    const units = (): UnitSummary[] => ["pinned", "busy"].map((name) => ({ name, description: "", state: "running", reason: "", since: 0, restarts: 0, ports: [] }));
    const mon = scriptedMonitor(units, { pinned: { limits: { pids_max: 64 } }, busy: { limits: { pids_max: 64 } } }, root);
    const d = new Detector({ ...DEFAULT_DETECTOR, outsideScanMs: Infinity });
    const out: string[] = [];
    for (let t = 0; t < 4; t++) {
      writeFileSync(join(root, "pinned", "pids.current"), "64");
      // Many processes, steady, under 90% of its limit: a busy service, not a bomb.
      writeFileSync(join(root, "busy", "pids.current"), "50");
      out.push(...(await d.onTick(await mon.sample(t * 1000), mon)).map(signatureOf));
    }
    expect(out[0]).toBe("fork-bomb:pinned");
    expect(out.filter((x) => x.endsWith(":busy"))).toEqual([]);
  });
});

describe("a leak that began a few seconds ago", () => {
  test("the line through the last 10 s is used when the growth began inside the window; a flat or noisy window keeps the whole line", () => {
    const flatThenLeak = [...Array.from({ length: 20 }, () => 0.05), ...Array.from({ length: 10 }, (_, i) => 0.05 + 0.04 * (i + 1))];
    const whole = ruleForecast(flatThenLeak);
    const recent = recentGrowth(flatThenLeak);
    expect(whole.r2).toBeLessThan(0.7);
    expect(recent.r2).toBeGreaterThan(0.99);
    expect(recent.slope).toBeCloseTo(0.04, 5);
    expect(recent.etaS).toBeLessThan(20);
    const noisy = Array.from({ length: 30 }, (_, i) => 0.4 + (i % 2 ? 0.01 : -0.01));
    expect(recentGrowth(noisy)).toEqual(ruleForecast(noisy));
    // A unit that freed memory lately: the steeper recent line is a fall, not a leak; the whole line stays.
    const freeing = [...Array.from({ length: 20 }, () => 0.6), ...Array.from({ length: 10 }, (_, i) => 0.6 - 0.03 * (i + 1))];
    expect(recentGrowth(freeing)).toEqual(ruleForecast(freeing));
  });

  test("on the committed trace, the rule finds the 10 MiB/s leak before its OOM kill (the whole 30 s line found it too late, or never)", async () => {
    const trace = readTrace(join(import.meta.dirname, "..", "traces", "sample", "sample.json.gz"));
    const leak = trace.labels.find((l) => l.class === "leak")!;
    const findings = (await replay(trace, { leak: "rule", anomaly: "rule" }, {})).filter((f) => f.class === "leak" && f.unit === "leaky");
    const restarts = columnOf(trace, "unit.leaky.restarts");
    const oom = restarts.find((p, i) => i > 0 && p.ts >= leak.start && p.v > restarts[i - 1]!.v)!;
    expect(findings.length).toBeGreaterThan(0);
    expect(findings[0]!.time).toBeGreaterThanOrEqual(leak.start);
    expect(findings[0]!.time).toBeLessThan(oom.ts);
  });
});

describe("processes outside every unit", () => {
  test("a spinner in no unit is found on its second hot scan, at the share of a CPU it really used over the time between scans", async () => {
    const { spawnSync } = await import("node:child_process");
    // Started through a shell that exits at once, so its parent is not this process (the agent's children are its own).
    const outside = (script: string) => Number(spawnSync("sh", ["-c", `sh -c '${script}' </dev/null >/dev/null 2>&1 & echo $!`], { encoding: "utf8" }).stdout.trim());
    const pid = outside("while :; do :; done");
    const sleeper = outside("sleep 30");
    expect(pid).toBeGreaterThan(1);
    expect(sleeper).toBeGreaterThan(1);
    try {
      const mon = scriptedMonitor(() => [], {}, "/nonexistent");
      // Scans due every 0.3 s, taken 1.2 s apart (like a tick slowed by the budget): the share must come from the 1.2 s.
      const d = new Detector({ ...DEFAULT_DETECTOR, outsideScanMs: 300, hogPercent: 30 });
      const found = [];
      for (let i = 0; i < 3; i++) {
        found.push(...(await d.onTick(await mon.sample(Date.now()), mon)).filter((f) => f.class === "outside-hog"));
        await Bun.sleep(1200);
      }
      const mine = found.filter((f) => f.pid === pid);
      expect(mine).toHaveLength(1);
      // One single-threaded spinner cannot use more than one CPU; with the configured 0.3 s it would look like 400%.
      expect(Number(mine[0]!.inputs.cpu_percent)).toBeGreaterThan(30);
      expect(Number(mine[0]!.inputs.cpu_percent)).toBeLessThanOrEqual(105);
      expect(mine[0]!.summary).toMatch(new RegExp(`^process ${pid} \\(sh\\) belongs to no unit and uses \\d+% of a CPU$`));
      // A process that merely sleeps is no finding (other busy processes of this machine may be: they are not looked at here).
      expect(found.some((f) => f.pid === sleeper)).toBe(false);
    } finally {
      process.kill(pid, "SIGKILL");
      process.kill(sleeper, "SIGKILL");
    }
  }, 20_000);
});

// The status strip's CPU figure (sys.cpu_pct): the system's CPU use between
// two samples, from /proc/stat. A stale or since-boot figure is what made the
// console show "CPU 92%" for minutes on an idle device.
import { describe, expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuUseSincePrevious, Monitor } from "../../agents/monitor/monitor.ts";

// user nice system idle iowait irq softirq steal
const stat = (user: number, system: number, idle: number, iowait = 0) => `cpu  ${user} 0 ${system} ${idle} ${iowait} 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n`;

describe("sys.cpu_pct", () => {
  test("covers exactly the time between two readings; the first gives no figure; a counter that goes back gives none", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-cpu-"));
    try {
      const path = join(dir, "stat");
      const read = cpuUseSincePrevious(path);
      writeFileSync(path, stat(9000, 1000, 100, 0)); // busy since boot: 99%
      expect(read()).toEqual({});
      writeFileSync(path, stat(9010, 1000, 190, 0)); // then 10 busy ticks of 100
      expect(read()["sys.cpu_pct"]).toBeCloseTo(10, 5);
      writeFileSync(path, stat(9010, 1000, 250, 50)); // idle and I/O wait only
      expect(read()["sys.cpu_pct"]).toBeCloseTo(0, 5);
      writeFileSync(path, stat(10, 10, 10, 0)); // counters reset (another machine's file): no figure
      expect(read()).toEqual({});
      writeFileSync(path, "garbage\n");
      expect(read()).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the monitor's samples carry it from the second sample on", async () => {
    const m = new Monitor({ list: async () => [], status: async () => undefined });
    const first = await m.sample(1_000);
    expect(first.system["sys.cpu_pct"]).toBeUndefined();
    await Bun.sleep(200);
    const second = await m.sample(10_000);
    expect(second.system["sys.cpu_pct"]).toBeGreaterThanOrEqual(0);
    expect(second.system["sys.cpu_pct"]).toBeLessThanOrEqual(100);
  });
});

// The status strip's CPU figure (sys.cpu_pct): the system's CPU use between
// two samples, from /proc/stat. A stale or since-boot figure is what made the
// console show "CPU 92%" for minutes on an idle device.
import { describe, expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuUseSincePrevious, Monitor } from "../../agents/monitor/monitor.ts";
import { fsUsePercent, meminfo, netBytes, netRateSincePrevious } from "../../agents/monitor/procfs.ts";

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

// The network and disk figures, read from /proc/net/dev and statfs (no process is started for them).
const netdev = (eth: [number, number], lo: [number, number], wlan?: [number, number]) =>
  "Inter-|   Receive                                                |  Transmit\n" +
  " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
  `    lo: ${lo[0]} 10 0 0 0 0 0 0 ${lo[1]} 10 0 0 0 0 0 0\n` +
  `  eth0: ${eth[0]} 20 0 0 0 0 0 0 ${eth[1]} 20 0 0 0 0 0 0\n` +
  (wlan ? `wlan0: ${wlan[0]} 5 0 0 0 0 0 0 ${wlan[1]} 5 0 0 0 0 0 0\n` : "");

describe("net.rx_kbps and net.tx_kbps", () => {
  test("sum every interface but loopback, per second between two readings; the first, a reset counter or garbage give none", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-net-"));
    try {
      const path = join(dir, "dev");
      let now = 0;
      const read = netRateSincePrevious(path, () => now);
      writeFileSync(path, netdev([1_000_000, 500_000], [9e9, 9e9]));
      expect(read()).toEqual({});
      now = 2000;
      // eth0 +20 KiB in, +10 KiB out; loopback's 1 GB is not network traffic; wlan0 appears with 4 KiB each way.
      writeFileSync(path, netdev([1_000_000 + 20 * 1024, 500_000 + 10 * 1024], [1e10, 1e10], [4096, 4096]));
      const r = read();
      expect(r["net.rx_kbps"]).toBeCloseTo(12, 5);
      expect(r["net.tx_kbps"]).toBeCloseTo(7, 5);
      now = 3000;
      writeFileSync(path, netdev([10, 10], [0, 0]));
      expect(read()).toEqual({});
      now = 4000;
      writeFileSync(path, "garbage");
      expect(read()).toEqual({});
      expect(netBytes(join(dir, "missing"))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("this machine's counters read as numbers", () => {
    const b = netBytes();
    expect(b === undefined || (Number.isFinite(b.rx) && Number.isFinite(b.tx))).toBe(true);
  });
});

describe("disk.use_pct", () => {
  test("is df's Use%: used over used plus available, for the file system holding the path", () => {
    const use = fsUsePercent(tmpdir())!;
    expect(use).toBeGreaterThan(0);
    expect(use).toBeLessThanOrEqual(100);
    const df = Bun.spawnSync(["df", "-P", tmpdir()]).stdout.toString().trim().split("\n").pop()!.split(/\s+/);
    const [used, avail] = [Number(df[2]), Number(df[3])];
    expect(use).toBeCloseTo((100 * used) / (used + avail), 0);
    expect(fsUsePercent(join(tmpdir(), "no-such-dir-paio"))).toBeUndefined();
  });
});

describe("sys.mem_pct and sys.mem_avail_mb", () => {
  test("come from MemTotal and MemAvailable of /proc/meminfo; a file without them gives nothing", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-mem-"));
    try {
      const path = join(dir, "meminfo");
      writeFileSync(path, "MemTotal:        2000000 kB\nMemFree:          100000 kB\nMemAvailable:     500000 kB\nBuffers:           1000 kB\n");
      expect(meminfo(path)).toEqual({ total: 2_048_000_000, available: 512_000_000 });
      writeFileSync(path, "MemTotal:        2000000 kB\nMemFree:          100000 kB\n");
      expect(meminfo(path)).toBeUndefined();
      expect(meminfo(join(dir, "missing"))).toBeUndefined();
      const mine = meminfo()!;
      expect(mine.available).toBeGreaterThan(0);
      expect(mine.available).toBeLessThanOrEqual(mine.total);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Monitor: once a tick (1 s by default) the agent samples the system and every
// unit into ring buffers, and keeps a frame of all values for the knowledge
// base. System-wide figures come straight from /proc and statfs (memory,
// CPU, pressure, load, network, disk), without starting a process; each
// collector is run only as often as its measured CPU cost allows within the
// monitor's share of the agent's budget (a collector that costs 2 ms runs
// every few seconds, one that costs 0.1 ms every tick). Per-unit figures come
// straight from the units' cgroup files, which is cheap. The SoC's
// temperature and the CPU frequency come from the kernel's thermal and
// cpufreq files (thermal.ts), every few seconds.

import { join } from "node:path";
import type { UnitStatus, UnitSummary } from "../../init/control/protocol.ts";
import { Ring } from "./ring.ts";
import { existsSync } from "node:fs";
import { busyBetween, cgroupSample, cpuTimes, fsUsePercent, KeptFiles, loadavg, meminfo, netRateSincePrevious, pressure, type CgroupSample } from "./procfs.ts";
import { readThermal, socZone, sysfsRoot, type ThermalReading } from "./thermal.ts";

export interface UnitSample extends CgroupSample {
  state: string;
  restarts: number;
  /** CPU use over the last tick, percent of one core. */
  cpuPercent?: number;
  healthLatencyMs?: number;
  /** Run-queue wait per second of the last tick, µs (patched kernel only). */
  waitUsPerS?: number;
  /** Ports the unit file declares ("8080/tcp"): expected listeners, not incidents. */
  ports?: string[];
}

export interface Tick {
  ts: number;
  system: Record<string, number>;
  units: Map<string, UnitSample>;
  /** The latest thermal reading (taken every few seconds, so possibly from an earlier tick). */
  thermal?: ThermalReading;
}

export interface Collector {
  name: string;
  /** Runs the collector; returns metric values to merge into the system sample. */
  run(): Promise<Record<string, number>>;
  /** Never more often than this, ms. */
  minPeriodMs: number;
  /** Measured CPU cost per run, ms (an average). */
  costMs: number;
  lastRun: number;
  last: Record<string, number>;
}

function collector(name: string, minPeriodMs: number, run: () => Promise<Record<string, number>>): Collector {
  return { name, run, minPeriodMs, costMs: 0, lastRun: 0, last: {} };
}

/**
 * The whole system's CPU use since the previous reading, percent (100 = every
 * core busy), from /proc/stat's first line: one file read, and a figure that
 * always covers exactly the time between two samples. The first reading has
 * nothing to compare with and gives no figure.
 */
export function cpuUseSincePrevious(path = "/proc/stat"): () => Record<string, number> {
  let prev: { busy: number; total: number } | undefined;
  return (): Record<string, number> => {
    const now = cpuTimes(path);
    const pct = busyBetween(prev, now);
    prev = now;
    return pct === undefined ? {} : { "sys.cpu_pct": pct };
  };
}

export function systemCollectors(): Collector[] {
  const cpu = cpuUseSincePrevious();
  const net = netRateSincePrevious();
  return [
    collector("memory", 1000, async (): Promise<Record<string, number>> => {
      const m = meminfo();
      return m && m.total ? { "sys.mem_pct": (100 * (m.total - m.available)) / m.total, "sys.mem_avail_mb": m.available / 2 ** 20 } : {};
    }),
    collector("cpu", 1000, async () => cpu()),
    collector("pressure", 1000, async () => {
      const la = loadavg();
      return { ...pressure(), ...(la ? { "sys.load1": la.load1, "sys.procs": la.procs } : {}) };
    }),
    collector("network", 5000, async () => net()),
    collector("disk", 30_000, async (): Promise<Record<string, number>> => {
      // The data partition where there is one (on the image, /var/lib/paio is its own file system), else the root.
      const use = fsUsePercent(existsSync("/var/lib/paio") ? "/var/lib/paio" : "/");
      return use === undefined ? {} : { "disk.use_pct": use };
    }),
  ];
}

export interface UnitSource {
  list(): Promise<UnitSummary[]>;
  status(unit: string): Promise<UnitStatus | undefined>;
}

/** How often the monitor reads every unit's full status (health latency, limits, exits) even when its state did not change. */
export const STATUS_POLL_MS = 30_000;

export class Monitor {
  readonly ticks: Ring<Tick>;
  private prevCpu = new Map<string, { us: number; wait?: number; at: number }>();
  private healthLatency = new Map<string, number>();
  private lastStatusPoll = 0;
  /** Every unit's cgroup files, kept open between ticks. */
  readonly cgroupFiles = new KeptFiles();
  /** Each unit's state, since and restart count when its status was last read. */
  private marks = new Map<string, string>();
  units: UnitSummary[] = [];
  statuses = new Map<string, UnitStatus>();
  /** The latest reading of the thermal zones and CPU frequency. */
  thermal: ThermalReading | undefined;
  private lastThermal = -Infinity;
  private sysfsRoot: string;
  private thermalPeriodMs: number;
  /** Whether the thermal period follows the reading's measured cost (unless a fixed period was given). */
  private thermalAdaptive: boolean;
  private thermalCostMs = 0;

  constructor(
    private source: UnitSource,
    readonly collectors: Collector[] = systemCollectors(),
    private cgroupRoot = join(process.env.PAIO_CGROUP_ROOT ?? "/sys/fs/cgroup", "paio"),
    /** CPU the monitor may spend, ms per second. */
    private budgetMsPerS = 4,
    /** Ticks kept in memory: the longest window a detector reads is 121 ticks (history beyond is in the knowledge base). */
    capacity = 240,
    opts: { sysfsRoot?: string; thermalPeriodMs?: number } = {},
  ) {
    this.ticks = new Ring(capacity);
    this.sysfsRoot = opts.sysfsRoot ?? sysfsRoot();
    this.thermalPeriodMs = opts.thermalPeriodMs ?? 2000;
    this.thermalAdaptive = opts.thermalPeriodMs === undefined;
  }

  /** How often each collector may run given its measured cost: its share of the budget. */
  periodOf(c: Collector): number {
    const share = this.budgetMsPerS / this.collectors.length;
    return Math.max(c.minPeriodMs, share > 0 ? (c.costMs / share) * 1000 : c.minPeriodMs);
  }

  async sample(now = Date.now()): Promise<Tick> {
    const system: Record<string, number> = {};
    for (const c of this.collectors) {
      if (now - c.lastRun >= this.periodOf(c)) {
        const before = process.cpuUsage();
        try {
          c.last = await c.run();
        } catch {
          c.last = {};
        }
        const used = process.cpuUsage(before);
        const ms = (used.user + used.system) / 1000;
        c.costMs = c.costMs === 0 ? ms : 0.8 * c.costMs + 0.2 * ms;
        c.lastRun = now;
      }
      Object.assign(system, c.last);
    }
    // Like a collector: every 2 s, or less often if reading the zones costs more than a collector's share (ACPI zones can be slow).
    const share = this.budgetMsPerS / (this.collectors.length + 1);
    const period = this.thermalAdaptive && share > 0 ? Math.max(this.thermalPeriodMs, (this.thermalCostMs / share) * 1000) : this.thermalPeriodMs;
    if (now - this.lastThermal >= period) {
      this.lastThermal = now;
      const before = process.cpuUsage();
      try {
        this.thermal = readThermal(this.sysfsRoot);
      } catch {
        this.thermal = undefined;
      }
      const used = process.cpuUsage(before);
      const ms = (used.user + used.system) / 1000;
      this.thermalCostMs = this.thermalCostMs === 0 ? ms : 0.8 * this.thermalCostMs + 0.2 * ms;
    }
    const soc = this.thermal && socZone(this.thermal);
    if (soc) system["sys.temp_c"] = soc.tempC;
    const cur = this.thermal?.cpufreq[0]?.curKHz;
    if (cur !== undefined) system["sys.cpu_mhz"] = cur / 1000;
    this.units = await this.source.list();
    const present = new Set(this.units.map((u) => u.name));
    for (const name of this.marks.keys()) {
      if (present.has(name)) continue;
      // A unit that is gone: its files are closed, its records dropped.
      this.marks.delete(name);
      this.statuses.delete(name);
      this.healthLatency.delete(name);
      this.prevCpu.delete(name);
      this.cgroupFiles.forget(join(this.cgroupRoot, name));
    }
    // Health latency and limits change slowly: ask the supervisor every 30 s; a unit whose state or restart count changed, at once (its status holds its failed exits).
    const poll = now - this.lastStatusPoll >= STATUS_POLL_MS;
    if (poll) this.lastStatusPoll = now;
    for (const u of this.units) {
      const mark = `${u.state} ${u.since} ${u.restarts}`;
      if (!poll && this.marks.get(u.name) === mark) continue;
      this.marks.set(u.name, mark);
      const st = await this.source.status(u.name);
      if (!st) continue;
      this.statuses.set(u.name, st);
      if (st.health?.last) this.healthLatency.set(u.name, st.health.last.latency_ms);
    }
    const units = new Map<string, UnitSample>();
    for (const u of this.units) {
      const cg = cgroupSample(join(this.cgroupRoot, u.name), this.cgroupFiles);
      const prev = this.prevCpu.get(u.name);
      const s: UnitSample = { ...cg, state: u.state, restarts: u.restarts, healthLatencyMs: this.healthLatency.get(u.name), ports: u.ports };
      if (prev && cg.cpuUsageUs !== undefined && now > prev.at && cg.cpuUsageUs >= prev.us) {
        s.cpuPercent = ((cg.cpuUsageUs - prev.us) / ((now - prev.at) * 1000)) * 100;
        if (cg.waitUs !== undefined && prev.wait !== undefined) s.waitUsPerS = ((cg.waitUs - prev.wait) * 1000) / (now - prev.at);
      }
      if (cg.cpuUsageUs !== undefined) this.prevCpu.set(u.name, { us: cg.cpuUsageUs, wait: cg.waitUs, at: now });
      units.set(u.name, s);
    }
    const tick: Tick = { ts: now, system, units, thermal: this.thermal };
    this.ticks.push(tick);
    return tick;
  }

  /** The values of one series over the last n ticks ("sys.cpu_pct", or "unit.NAME.memoryCurrent"). */
  series(name: string, n: number): number[] {
    return seriesOf(this.ticks.last(n), name);
  }
}

/** One series ("sys.cpu_pct", or "unit.NAME.memoryCurrent") over the given ticks, its finite values only. */
export function seriesOf(ticks: readonly Tick[], name: string): number[] {
  const out: number[] = [];
  const m = /^unit\.([^.]+(?:\.[^.]+)*)\.(\w+)$/.exec(name);
  for (const t of ticks) {
    const v = m ? (t.units.get(m[1]!) as unknown as Record<string, number> | undefined)?.[m[2]!] : t.system[name];
    if (typeof v === "number" && Number.isFinite(v)) out.push(v);
  }
  return out;
}

/** One flat frame of a tick for the knowledge base. */
export function frameOf(t: Tick): Record<string, number> {
  const values: Record<string, number> = { ...t.system };
  for (const [name, u] of t.units) {
    const put = (k: string, v: number | undefined) => {
      if (v !== undefined && Number.isFinite(v)) values[`unit.${name}.${k}`] = v;
    };
    put("cpu_pct", u.cpuPercent);
    put("mem_mb", u.memoryCurrent === undefined ? undefined : u.memoryCurrent / 2 ** 20);
    put("pids", u.pidsCurrent);
    put("restarts", u.restarts);
    put("health_ms", u.healthLatencyMs);
    put("wait_us_s", u.waitUsPerS);
  }
  return values;
}

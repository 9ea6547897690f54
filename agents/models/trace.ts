// A metric trace with fault labels, as `make traces` records it from the
// image (tests/traces/record.ts), and its replay: the frames turned back into
// the monitor's ticks, so the agent's own detector (agents/analyze/detect.ts)
// can be run over them exactly as it runs on a device.
//
// Format (JSON, gzip): { format: "paio-trace/1", scenario, seed, date,
// commit, machine, units: { NAME: { memory_max_mb?, pids_max? } },
// labels: [{ class, unit, start, end, detail }], metrics: [NAME...],
// frames: [[ts, value-or-null per metric]...] }. Times are the guest's, in ms.

import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { UnitStatus } from "../../init/control/protocol.ts";
import { seriesOf, type Monitor, type Tick, type UnitSample } from "../monitor/monitor.ts";
import { judgedForAnomaly } from "../analyze/anomaly.ts";

export const TRACE_FORMAT = "paio-trace/1";

/** Fault classes in traces, named as the agent's findings are where one exists. */
export const TRACE_CLASSES = ["leak", "cpu-hog", "fork-bomb", "crash", "hung", "disk-full", "outside-hog"] as const;
export type TraceClass = (typeof TRACE_CLASSES)[number];

export interface TraceLabel {
  class: TraceClass;
  unit: string | null;
  start: number;
  end: number;
  detail: string;
}

export interface Trace {
  format: typeof TRACE_FORMAT;
  scenario: string;
  seed: number;
  date: string;
  commit: string;
  machine: string;
  units: Record<string, { memory_max_mb?: number; pids_max?: number }>;
  labels: TraceLabel[];
  metrics: string[];
  frames: (number | null)[][];
}

export function readTrace(file: string): Trace {
  const t = JSON.parse(new TextDecoder().decode(Bun.gunzipSync(readFileSync(file)))) as Trace;
  if (t.format !== TRACE_FORMAT) throw new Error(`${file}: not a ${TRACE_FORMAT} trace (format ${JSON.stringify(t.format)})`);
  return t;
}

/** Frame metric names per unit field (agents/monitor/monitor.ts frameOf), with the factor back to the sample's unit. */
const UNIT_FIELDS: Record<string, { field: keyof UnitSample; scale: number }> = {
  cpu_pct: { field: "cpuPercent", scale: 1 },
  mem_mb: { field: "memoryCurrent", scale: 2 ** 20 },
  pids: { field: "pidsCurrent", scale: 1 },
  restarts: { field: "restarts", scale: 1 },
  health_ms: { field: "healthLatencyMs", scale: 1 },
  wait_us_s: { field: "waitUsPerS", scale: 1 },
};

/** The trace's frames as the monitor's ticks (units with their limits from the trace, all seen running). */
export function replayTicks(trace: Trace): Tick[] {
  type Col = { unit: string; field: string; scale: number } | { system: string };
  const cols: Col[] = trace.metrics.map((m) => {
    const u = /^unit\.(.+)\.([a-z_]+)$/.exec(m);
    const f = u ? UNIT_FIELDS[u[2]!] : undefined;
    return u && f ? { unit: u[1]!, field: f.field, scale: f.scale } : { system: m };
  });
  return trace.frames.map((f) => {
    const system: Record<string, number> = {};
    const units = new Map<string, UnitSample>();
    cols.forEach((c, i) => {
      const v = f[i + 1];
      if (v === null || v === undefined) return;
      if ("system" in c) {
        system[c.system] = v;
        return;
      }
      let s = units.get(c.unit);
      if (!s) {
        const lim = trace.units[c.unit] ?? {};
        units.set(c.unit, (s = { state: "running", restarts: 0, memoryMax: lim.memory_max_mb !== undefined ? lim.memory_max_mb * 2 ** 20 : undefined }));
      }
      (s as unknown as Record<string, number>)[c.field] = v * c.scale;
    });
    return { ts: f[0]!, system, units };
  });
}

/**
 * What the detector reads of the monitor, over replayed ticks: the series
 * (as Monitor.series does) and each unit's limits and health check.
 */
export class ReplayMonitor {
  readonly ticks: Tick[] = [];
  readonly statuses = new Map<string, UnitStatus>();

  constructor(trace: Trace) {
    const healthChecked = new Set(trace.metrics.map((m) => /^unit\.(.+)\.health_ms$/.exec(m)?.[1]).filter((u): u is string => !!u));
    for (const [name, lim] of Object.entries(trace.units)) this.statuses.set(name, { name, limits: { pids_max: lim.pids_max }, health: healthChecked.has(name) ? {} : undefined } as unknown as UnitStatus);
    for (const name of healthChecked) if (!this.statuses.has(name)) this.statuses.set(name, { name, limits: {}, health: {} } as unknown as UnitStatus);
  }

  push(t: Tick): void {
    this.ticks.push(t);
    if (this.ticks.length > 600) this.ticks.shift();
  }

  series(name: string, n: number): number[] {
    return seriesOf(this.ticks.slice(-n), name);
  }

  /** Typed as the monitor the detector expects: it reads only `series` and `statuses`. */
  asMonitor(): Monitor {
    return this as unknown as Monitor;
  }
}

/** A finding or a window this long after a fault's end still belongs to it (the system settles; the detector needs a few looks). */
export const GRACE_MS = 30_000;

/** Whether a time is quiet running: inside no fault label, nor in the grace after one. */
export function quietAt(trace: Trace, ts: number): boolean {
  return !trace.labels.some((l) => ts >= l.start && ts <= l.end + GRACE_MS);
}

/** One column of a trace as points in time, the frames that lack it left out. */
export function columnOf(trace: Trace, metric: string): { ts: number; v: number }[] {
  const i = trace.metrics.indexOf(metric);
  if (i < 0) return [];
  return trace.frames.map((f) => ({ ts: f[0]!, v: f[i + 1] })).filter((p): p is { ts: number; v: number } => typeof p.v === "number");
}

/** The system metrics of a trace that the anomaly detector judges (agents/analyze/anomaly.ts). */
export function anomalyMetrics(trace: Trace): string[] {
  return trace.metrics.filter((m) => !m.startsWith("unit.") && judgedForAnomaly(m));
}

/**
 * Memory-forecast windows of a trace: for every unit with a memory limit,
 * `window` seconds of memory.current as fractions of memory.max and the
 * fraction `horizon` seconds after the last, every `stride` frames. Frames
 * are the agent's 1 s ticks; a window that spans a gap (a slowed agent) is
 * left out.
 */
export function memoryWindows(trace: Trace, window: number, horizon: number, stride: number): { w: number[]; actual: number; ts: number }[] {
  const rows: { w: number[]; actual: number; ts: number }[] = [];
  for (const [unit, lim] of Object.entries(trace.units)) {
    if (!lim.memory_max_mb) continue;
    const pts = columnOf(trace, `unit.${unit}.mem_mb`);
    for (let k = window - 1; k + horizon < pts.length; k += stride) {
      const span = pts.slice(k - window + 1, k + horizon + 1);
      if (span.at(-1)!.ts - span[0]!.ts > (window + horizon) * 1500) continue;
      rows.push({ w: span.slice(0, window).map((p) => p.v / lim.memory_max_mb!), actual: span.at(-1)!.v / lim.memory_max_mb!, ts: span[window - 1]!.ts });
    }
  }
  return rows;
}

/** The traces of the named scenarios found in the folders (a later folder's copy wins), and the names not found. */
export function loadTraces(names: readonly string[], dirs: readonly string[]): { traces: Trace[]; missing: string[] } {
  const files = new Map<string, string>();
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).filter((f) => f.endsWith(".json.gz"))) files.set(f.replace(/\.json\.gz$/, ""), join(d, f));
  }
  const traces: Trace[] = [];
  const missing: string[] = [];
  for (const name of names) {
    const f = files.get(name);
    if (!f) {
      missing.push(name);
      continue;
    }
    const t = readTrace(f);
    if (t.scenario !== name) throw new Error(`${f}: holds a trace of scenario ${JSON.stringify(t.scenario)}, not ${JSON.stringify(name)}; record it again with make traces`);
    traces.push(t);
  }
  return { traces, missing };
}

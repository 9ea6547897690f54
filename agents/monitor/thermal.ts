// The SoC's temperature and CPU throttling, straight from the kernel's sysfs:
//   /sys/class/thermal/thermal_zone*/{type,temp,trip_point_N_temp,trip_point_N_type}
//   /sys/class/thermal/cooling_device*/{type,cur_state,max_state}
//   /sys/devices/system/cpu/cpu*/cpufreq/{cpuinfo_max_freq,scaling_cur_freq,scaling_max_freq,scaling_governor}
// The root is PAIO_SYSFS_ROOT (default /sys), so tests read a tree of real
// files built in a temporary directory. A machine without thermal zones (a
// QEMU guest) has "no thermal sensors"; a file that is missing, unreadable
// or holds garbage is left out with the reason, never a crash.
//
// Throttling. The Raspberry Pi's firmware lowers the ARM clock when the SoC
// is hot, and mainline kernels have no get_throttled to ask it; what shows is
// the frequency. A running frequency under the hardware's maximum is normal
// when the CPU idles (the governor lowers it), so it counts as throttling
// only when the CPU is busy or the governor is "performance" (which always
// asks for the maximum). A kernel cooling device of the CPU frequency in a
// state above 0 is the kernel's own throttling and always counts.

import { readdirSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";

export function sysfsRoot(env: Record<string, string | undefined> = process.env): string {
  return env.PAIO_SYSFS_ROOT || "/sys";
}

export interface TripPoint {
  index: number;
  /** "passive", "active", "hot", "critical" (whatever the driver says). */
  type: string;
  tempC: number;
}

export interface ThermalZone {
  /** The directory: "thermal_zone0". */
  name: string;
  /** The driver's name for it: "cpu-thermal", "x86_pkg_temp", "acpitz". */
  type: string;
  tempC: number;
  trips: TripPoint[];
}

export interface CpuFreqPolicy {
  /** The CPUs that share it: "cpu0-3" or "cpu0". */
  cpus: string;
  maxKHz: number;
  curKHz?: number;
  /** scaling_max_freq: the policy's present ceiling (a person's setting or the kernel's cooling). */
  limitKHz?: number;
  governor?: string;
}

export interface CoolingDevice {
  name: string;
  type: string;
  cur: number;
  max: number;
}

export interface ThermalReading {
  zones: ThermalZone[];
  cpufreq: CpuFreqPolicy[];
  cooling: CoolingDevice[];
  /** What was left out, and why: a person reads these in `paio status --json`. */
  ignored: { path: string; reason: string }[];
}

/** Plausible SoC temperatures, °C: a reading outside is a broken sensor, not a fire. */
const MIN_C = -40;
const MAX_C = 150;

type Read = { ok: true; text: string } | { ok: false; reason: string };

function read(path: string): Read {
  try {
    return { ok: true, text: readFileSync(path, "utf8").trim() };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === "ENOENT" ? "missing" : `cannot be read (${code ?? (e as Error).message})` };
  }
}

/** Garbage is shown, not trusted: printable ASCII, at most 24 characters. */
function shown(text: string): string {
  const t = text.replace(/[^\x20-\x7e]/g, "?");
  return t.length > 24 ? `${t.slice(0, 24)}…` : t;
}

function integer(text: string): number | undefined {
  return /^-?\d{1,12}$/.test(text) ? Number(text) : undefined;
}

function list(dir: string, re: RegExp): string[] {
  try {
    return readdirSync(dir).filter((n) => re.test(n)).sort((a, b) => Number(/\d+/.exec(a)?.[0] ?? 0) - Number(/\d+/.exec(b)?.[0] ?? 0));
  } catch {
    return [];
  }
}

/** Millidegrees (the kernel's unit) to °C, or why the text is not a temperature. */
function celsius(text: string): { c: number } | { reason: string } {
  const n = integer(text);
  if (n === undefined) return { reason: `'${shown(text)}' is not a temperature in millidegrees` };
  const c = n / 1000;
  if (c < MIN_C || c > MAX_C) return { reason: `${c} °C is not plausible (outside ${MIN_C}..${MAX_C} °C)` };
  return { c };
}

export function readThermal(root = sysfsRoot()): ThermalReading {
  const out: ThermalReading = { zones: [], cpufreq: [], cooling: [], ignored: [] };
  const thermal = join(root, "class", "thermal");
  for (const name of list(thermal, /^thermal_zone\d+$/)) {
    const dir = join(thermal, name);
    const type = read(join(dir, "type"));
    const temp = read(join(dir, "temp"));
    if (!temp.ok) {
      out.ignored.push({ path: join(dir, "temp"), reason: temp.reason });
      continue;
    }
    const c = celsius(temp.text);
    if ("reason" in c) {
      out.ignored.push({ path: join(dir, "temp"), reason: c.reason });
      continue;
    }
    const trips: TripPoint[] = [];
    let files: string[] = [];
    try {
      files = readdirSync(dir);
    } catch {
      // the zone went away meanwhile: no trip points
    }
    for (const f of files) {
      const m = /^trip_point_(\d+)_temp$/.exec(f);
      if (!m) continue;
      const t = read(join(dir, f));
      const tt = read(join(dir, `trip_point_${m[1]}_type`));
      const tc = t.ok ? celsius(t.text) : { reason: t.reason };
      // Drivers park unused trip points at 0 or far out of range; a trip point that cannot be a temperature is left out.
      if ("reason" in tc || tc.c <= 0) {
        out.ignored.push({ path: join(dir, f), reason: "reason" in tc ? tc.reason : `${tc.c} °C is not a usable trip point` });
        continue;
      }
      trips.push({ index: Number(m[1]), type: tt.ok ? shown(tt.text) : "unknown", tempC: tc.c });
    }
    trips.sort((a, b) => a.index - b.index);
    out.zones.push({ name, type: type.ok && type.text ? shown(type.text) : name, tempC: c.c, trips });
  }
  for (const name of list(thermal, /^cooling_device\d+$/)) {
    const dir = join(thermal, name);
    const type = read(join(dir, "type"));
    const cur = read(join(dir, "cur_state"));
    const max = read(join(dir, "max_state"));
    const c = cur.ok ? integer(cur.text) : undefined;
    const m = max.ok ? integer(max.text) : undefined;
    if (c === undefined || m === undefined || c < 0 || m < 0) {
      out.ignored.push({ path: dir, reason: !cur.ok ? `cur_state ${cur.reason}` : !max.ok ? `max_state ${max.reason}` : `cur_state '${shown(cur.text)}' or max_state '${shown(max.text)}' is not a number` });
      continue;
    }
    out.cooling.push({ name, type: type.ok ? shown(type.text) : "unknown", cur: c, max: m });
  }
  const cpuDir = join(root, "devices", "system", "cpu");
  const seen = new Map<string, { cpus: number[]; p: CpuFreqPolicy }>();
  for (const name of list(cpuDir, /^cpu\d+$/)) {
    const dir = join(cpuDir, name, "cpufreq");
    let key: string;
    try {
      // cpuN/cpufreq links to the policy the CPU shares with its siblings: one entry per policy.
      key = realpathSync(dir);
    } catch {
      continue; // no cpufreq for this CPU
    }
    const cpu = Number(name.slice(3));
    const known = seen.get(key);
    if (known) {
      known.cpus.push(cpu);
      continue;
    }
    const max = read(join(dir, "cpuinfo_max_freq"));
    const maxKHz = max.ok ? integer(max.text) : undefined;
    if (maxKHz === undefined || maxKHz <= 0) {
      out.ignored.push({ path: join(dir, "cpuinfo_max_freq"), reason: max.ok ? `'${shown(max.text)}' is not a frequency in kHz` : max.reason });
      continue;
    }
    const cur = read(join(dir, "scaling_cur_freq"));
    const lim = read(join(dir, "scaling_max_freq"));
    const gov = read(join(dir, "scaling_governor"));
    const curKHz = cur.ok ? integer(cur.text) : undefined;
    const limitKHz = lim.ok ? integer(lim.text) : undefined;
    if (cur.ok && (curKHz === undefined || curKHz <= 0)) out.ignored.push({ path: join(dir, "scaling_cur_freq"), reason: `'${shown(cur.text)}' is not a frequency in kHz` });
    seen.set(key, {
      cpus: [cpu],
      p: { cpus: "", maxKHz, curKHz: curKHz !== undefined && curKHz > 0 ? curKHz : undefined, limitKHz: limitKHz !== undefined && limitKHz > 0 ? limitKHz : undefined, governor: gov.ok ? shown(gov.text) : undefined },
    });
  }
  for (const { cpus, p } of seen.values()) {
    cpus.sort((a, b) => a - b);
    const contiguous = cpus.every((c, i) => c === cpus[0]! + i);
    p.cpus = cpus.length === 1 ? `cpu${cpus[0]}` : contiguous ? `cpu${cpus[0]}-${cpus[cpus.length - 1]}` : `cpu${cpus.join(",")}`;
    out.cpufreq.push(p);
  }
  return out;
}

/** Zone types that are the SoC or its CPU; on a machine where none matches, every zone counts. */
const SOC_TYPES = /cpu|soc|pkg|core|arm|apu/i;

/** The zones that stand for the SoC. */
export function socZones(r: ThermalReading): ThermalZone[] {
  const soc = r.zones.filter((z) => SOC_TYPES.test(z.type));
  return soc.length ? soc : r.zones;
}

/** The SoC's temperature: its hottest zone. */
export function socZone(r: ThermalReading): ThermalZone | undefined {
  return socZones(r).reduce<ThermalZone | undefined>((h, z) => (!h || z.tempC > h.tempC ? z : h), undefined);
}

/** The running frequency must be this far under the maximum to count (a governor rounds to its steps). */
const UNDER = 0.9;

export interface Throttle {
  /** true: throttled; false: not; undefined: cannot tell (no cpufreq, or an idle CPU under an on-demand governor). */
  throttled: boolean | undefined;
  /** Why, in words. */
  reason: string;
}

/**
 * Whether the CPU is throttled now. `busyPercent` is the CPU use of the whole
 * system (100 = every core busy); a frequency under the maximum counts only at
 * `busyAt` or more, or under the performance governor.
 */
export function throttleOf(r: ThermalReading, busyPercent?: number, busyAt = 75): Throttle {
  const cooling = r.cooling.filter((c) => /cpufreq|processor|cpu/i.test(c.type) && c.cur > 0);
  if (cooling.length) return { throttled: true, reason: cooling.map((c) => `the kernel's cooling device ${c.type} is at state ${c.cur} of ${c.max}`).join("; ") };
  if (r.cpufreq.length === 0) return { throttled: undefined, reason: "no CPU frequency information (no cpufreq)" };
  const busy = busyPercent !== undefined && busyPercent >= busyAt;
  const slow: string[] = [];
  const idle: string[] = [];
  for (const p of r.cpufreq) {
    if (p.curKHz === undefined || p.curKHz >= UNDER * p.maxKHz) continue;
    const what = `${p.cpus} at ${mhz(p.curKHz)} of ${mhz(p.maxKHz)} MHz`;
    if (busy || p.governor === "performance") slow.push(`${what}${p.governor === "performance" ? " under the performance governor" : ` while the CPU is ${Math.round(busyPercent!)}% busy`}`);
    else idle.push(what);
  }
  if (slow.length) return { throttled: true, reason: `frequency capped: ${slow.join("; ")}` };
  if (idle.length) return { throttled: busyPercent === undefined ? undefined : false, reason: `${idle.join("; ")}, which is normal for a CPU that is not busy` };
  return { throttled: false, reason: `${r.cpufreq.map((p) => `${p.cpus} at ${p.curKHz === undefined ? "?" : mhz(p.curKHz)} of ${mhz(p.maxKHz)} MHz`).join("; ")}` };
}

function mhz(khz: number): string {
  return String(Math.round(khz / 1000));
}

/** The SoC in one line for a person: "SoC 54.3 °C (cpu-thermal, critical at 90 °C); not throttled (cpu0-3 at 1500 of 1500 MHz)". */
export function socLine(r: ThermalReading, t: Throttle): string {
  const z = socZone(r);
  const temp = z ? `SoC ${z.tempC.toFixed(1)} °C (${z.type}${z.trips.length ? `, ${z.trips.map((p) => `${p.type} at ${+p.tempC.toFixed(1)} °C`).join(", ")}` : ""})` : "no thermal sensors";
  const thr = t.throttled === true ? `throttled: ${t.reason}` : t.throttled === false ? `not throttled (${t.reason})` : r.cpufreq.length ? `throttling unknown (${t.reason})` : "";
  return [temp, thr].filter(Boolean).join("; ");
}

/** What `paio status --json` and the agent's status say about the SoC. */
export interface SocStatus {
  sensors: number;
  temperature_c?: number;
  zone?: string;
  trips?: { type: string; temperature_c: number }[];
  throttled?: boolean;
  throttle_reason?: string;
  frequency_mhz?: number;
  max_frequency_mhz?: number;
  ignored?: { path: string; reason: string }[];
  text: string;
}

export function socStatus(r: ThermalReading, t: Throttle): SocStatus {
  const z = socZone(r);
  const p = r.cpufreq[0];
  return {
    sensors: r.zones.length,
    temperature_c: z ? +z.tempC.toFixed(1) : undefined,
    zone: z?.type,
    trips: z?.trips.map((x) => ({ type: x.type, temperature_c: x.tempC })),
    throttled: t.throttled,
    throttle_reason: r.cpufreq.length || t.throttled ? t.reason : undefined,
    frequency_mhz: p?.curKHz === undefined ? undefined : Math.round(p.curKHz / 1000),
    max_frequency_mhz: p ? Math.round(p.maxKHz / 1000) : undefined,
    ignored: r.ignored.length ? r.ignored : undefined,
    text: socLine(r, t),
  };
}

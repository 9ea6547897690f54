// Analyze: turns supervisor events and monitor ticks into findings — a unit
// and a class of trouble, with the inputs and the rule or model score that
// raised it. Findings are facts for the planner; deciding what to do is not
// done here. Every detector has hysteresis (a condition must hold for several
// ticks, or repeat within a window) so that one slow tick never raises one.

import type { UnitEvent, UnitStatus, UnitSummary } from "../../init/control/protocol.ts";
import type { Monitor, Tick } from "../monitor/monitor.ts";
import { cgroupOf, listeningPorts, processes, socketOwner, type ProcInfo } from "../monitor/procfs.ts";
import { DIM, RunningStats, anomalyFeatures, judgedForAnomaly, ruleAnomalous } from "./anomaly.ts";
import { WINDOW, forecastInput, modelForecast, ruleForecast, type Forecast } from "./forecast.ts";

export type FindingClass =
  | "crash" | "oom" | "hung" | "unhealthy" | "leak" | "cpu-hog" | "fork-bomb"
  | "outside-hog" | "outside-fork-bomb" | "new-port" | "anomaly" | "network-down" | "soc-hot";

export interface Finding {
  class: FindingClass;
  unit: string | null;
  /** What distinguishes this trouble within its class: "exit=3", "signal=SIGSEGV", "port=4444". */
  detail: string;
  /** One sentence a person reads. */
  summary: string;
  /** What the detector saw: a small summary of the metrics window. */
  inputs: Record<string, unknown>;
  /** The model score or the rule that fired. */
  evidence: { by: "model" | "rule"; name: string; score?: number; threshold?: number; rule?: string };
  pid?: number;
  time: number;
}

export function signatureOf(f: Pick<Finding, "class" | "unit" | "detail">): string {
  return `${f.class}:${f.unit ?? "-"}${f.detail ? `:${f.detail}` : ""}`;
}

export interface DetectorConfig {
  crashLoopCount: number;
  crashLoopWindowMs: number;
  hogPercent: number;
  hogTicks: number;
  leakTicks: number;
  /** Act on a predicted OOM when it is this close, seconds. */
  leakEtaS: number;
  forkPidsPerTick: number;
  /** How many system metrics must be unusual at the same tick for an anomaly (chosen on the training traces: 3 found none of their faults, 1 raised hundreds of false alarms a day). */
  anomalyMetrics: number;
  /** How often every process is looked at for hogs outside the units, and the listening sockets for new ports. */
  outsideScanMs: number;
  portBaselineMs: number;
  allowedPorts: number[];
  /**
   * Who decides a leak when the forecast model is loaded: "both" (the model
   * says the limit is near and the rule's line says the growth is steady),
   * "model" alone, or "rule" alone. And the same for anomalies. The agent
   * takes these from the evaluation each model passed (its manifest entry,
   * agents/models/evaluate.ts): a model decides only where it beat the rule.
   */
  leakDecision: Decision;
  anomalyDecision: Decision;
}

export type Decision = "rule" | "model" | "both";

export const DEFAULT_DETECTOR: DetectorConfig = {
  crashLoopCount: 3,
  crashLoopWindowMs: 60_000,
  hogPercent: 70,
  hogTicks: 8,
  leakTicks: 3,
  leakEtaS: 40,
  forkPidsPerTick: 15,
  anomalyMetrics: 2,
  outsideScanMs: 15_000,
  portBaselineMs: 30_000,
  allowedPorts: [],
  leakDecision: "both",
  anomalyDecision: "model",
};

/** A model the detector may use; absent or failing, the rule answers. */
export interface Scorer {
  /** Returns one output value per input row, or undefined when the model cannot answer now. */
  score(rows: Float32Array[]): Promise<Float32Array | undefined>;
  threshold?: number;
}

interface UnitTrack {
  crashes: number[];
  /** The last failed exits, oldest first: their reasons go into a finding. */
  exits: { time: number; reason: string }[];
  unhealthy: number[];
  lastCrash?: string;
  hogTicks: number;
  leakTicks: number;
  pidsHistory: number[];
}

/**
 * A process that belongs to no unit and is not PAIO's own: not in a unit's
 * group, the quarantine or the retraining group, not PID 1, not the agent or
 * its supervisor, and not a child of the agent (its retraining worker, which
 * runs outside any group where there is no cgroup v2).
 */
export function isOutsider(p: ProcInfo, selfPids: number[] = [process.pid, process.ppid]): boolean {
  if (p.cgroup.startsWith("/paio/") || p.cgroup.startsWith("/paio-quarantine") || p.cgroup.startsWith("/paio-retrain")) return false;
  return p.pid !== 1 && !selfPids.includes(p.pid) && p.ppid !== selfPids[0];
}

export class Detector {
  private tracks = new Map<string, UnitTrack>();
  private stats = new Map<string, RunningStats>();
  private lastOutsideScan = 0;
  private prevTicks = new Map<number, number>();
  private outsideHot = new Map<number, number>();
  private knownPorts: Set<number> | undefined;
  private startedAt = Date.now();
  private lastAnomaly = 0;
  /** The latest forecast per unit, for explanations. */
  forecasts = new Map<string, Forecast>();
  /** Which path answered last: "model" or "rule" per analysis. */
  used = { forecast: "rule" as "model" | "rule", anomaly: "rule" as "model" | "rule" };

  constructor(
    private cfg: DetectorConfig = DEFAULT_DETECTOR,
    private models: { forecast?: Scorer; anomaly?: Scorer } = {},
    private selfPids: number[] = [process.pid, process.ppid],
  ) {}

  private track(unit: string): UnitTrack {
    let t = this.tracks.get(unit);
    if (!t) this.tracks.set(unit, (t = { crashes: [], exits: [], unhealthy: [], hogTicks: 0, leakTicks: 0, pidsHistory: [] }));
    return t;
  }

  /** Supervisor events: crash loops, failed units and repeated health failures. */
  onUnitEvent(e: UnitEvent): Finding[] {
    const t = this.track(e.unit);
    const out: Finding[] = [];
    if (e.to === "backoff" || e.to === "failed") {
      const f = this.failure(e.unit, e.time, e.reason, e.to === "failed");
      if (f) out.push(f);
    }
    if (e.to === "unhealthy") {
      t.unhealthy = [...t.unhealthy.filter((x) => e.time - x < 300_000), e.time];
      if (t.unhealthy.length >= 2) {
        const hung = /no CPU|stopped|not running/.test(e.reason);
        out.push({
          class: hung ? "hung" : "unhealthy",
          unit: e.unit,
          detail: "",
          summary: `${e.unit} failed its health checks ${t.unhealthy.length} times in 5 min${hung ? " and used no CPU meanwhile (hung)" : ""}`,
          inputs: { unhealthy_events: t.unhealthy.length, reason: e.reason },
          evidence: { by: "rule", name: "repeated-unhealthy", rule: "2 unhealthy verdicts within 5 min" },
          time: e.time,
        });
      }
    }
    return out;
  }

  /**
   * The supervisor's own record, read at every tick: the failed exits each
   * unit's status keeps, and units that are failed now. What the event
   * stream did not bring — the agent was starting, restarting or
   * reconnecting, or a unit failed faster than it could look — is counted
   * here, each exit once, like an event.
   */
  reconcile(units: readonly UnitSummary[], statuses: ReadonlyMap<string, UnitStatus>, now: number): Finding[] {
    const out: Finding[] = [];
    for (const u of units) {
      const failedNow = u.state === "failed";
      let last: Finding | undefined;
      for (const x of statuses.get(u.name)?.exits ?? []) {
        // The exit that made the unit failed is counted with its failed state, below.
        if (failedNow && x.time === u.since) continue;
        // An exit older than the crash window cannot start a crash loop now, nor can one of a unit that is failed now (its failure is the finding): both are counted, and named with the failure.
        last = this.failure(u.name, x.time, x.reason, false, failedNow || now - x.time > this.cfg.crashLoopWindowMs) ?? last;
      }
      if (failedNow) last = this.failure(u.name, u.since, u.reason, true) ?? last;
      // One finding per unit and pass: the latest says the most.
      if (last) out.push(last);
    }
    return out;
  }

  /** Failed exits and failed states already counted, per unit (by the time of their state change): an event and the supervisor's record of it count once. */
  private seen = new Map<string, Set<number>>();
  /** Per unit, the time up to which an earlier run of the agent counted everything (kept in the knowledge base). */
  readonly seenUpTo = new Map<string, number>();
  /** Set when seenUpTo moved: the agent writes it down. */
  seenChanged = false;

  private see(unit: string, time: number): boolean {
    if (time <= (this.seenUpTo.get(unit) ?? -Infinity)) return false;
    const set = this.seen.get(unit) ?? this.seen.set(unit, new Set()).get(unit)!;
    if (set.has(time)) return false;
    set.add(time);
    // The supervisor keeps 10 exits: a few more times are enough to tell them apart.
    if (set.size > 64) set.delete(set.values().next().value!);
    this.seenUpTo.set(unit, Math.max(time, this.seenUpTo.get(unit) ?? -Infinity));
    this.seenChanged = true;
    return true;
  }

  /**
   * One failed exit (`failed` false) or a unit gone to `failed`: counted once,
   * whether it came as an event or from the supervisor's record. Three
   * crashes within the window are a crash loop; a failed unit is always a
   * finding, however few crashes came before (a start limit, restart =
   * "never", a start that cannot work).
   */
  private failure(unit: string, time: number, reason: string, failed: boolean, stale = false): Finding | undefined {
    // What a person or the agent asked for is not a failure.
    if (/requested|by request|marked failed by/.test(reason)) {
      this.see(unit, time);
      return undefined;
    }
    if (!this.see(unit, time)) return undefined;
    const t = this.track(unit);
    const crash = crashOf(reason);
    if (crash) {
      t.lastCrash = crash.detail;
      t.exits = [...t.exits.slice(-9), { time, reason: reason.split(";")[0]! }];
      t.crashes = [...t.crashes.filter((x) => time - x < this.cfg.crashLoopWindowMs), time];
    }
    const oom = (crash?.detail ?? t.lastCrash) === "oom";
    const detail = oom ? "" : (crash?.detail ?? t.lastCrash ?? "failed");
    const recent = t.exits.filter((x) => time - x.time < this.cfg.crashLoopWindowMs);
    const inputs = {
      crashes: t.crashes.length,
      window_s: this.cfg.crashLoopWindowMs / 1000,
      last_reason: reason,
      exits: recent.map((x) => ({ time: x.time, reason: x.reason })),
      exit_codes: recent.map((x) => exitCodeOf(x.reason)).filter((c): c is number | string => c !== undefined),
    };
    const window = `${Math.round(this.cfg.crashLoopWindowMs / 1000)} s`;
    if (failed) {
      const before = recent.length < 2 ? "" : ` after ${recent.length} ${oom ? "OOM kills" : "crashes"} in ${Math.max(1, Math.round((time - recent[0]!.time) / 1000))} s (${codesText(inputs.exit_codes)})`;
      return {
        class: oom ? "oom" : "crash",
        unit,
        detail,
        summary: `${unit} failed (${reason.split(";")[0]})${before}`,
        inputs: { ...inputs, state: "failed" },
        evidence: { by: "rule", name: "unit-failed", rule: "the supervisor gave the unit up (state failed)" },
        time,
      };
    }
    if (!crash || stale || t.crashes.length < this.cfg.crashLoopCount) return undefined;
    return {
      class: oom ? "oom" : "crash",
      unit,
      detail,
      summary: oom ? `${unit} was OOM-killed ${t.crashes.length} times in ${window}` : `${unit} crashed ${t.crashes.length} times in ${window} (${detail.replace("=", " ")})`,
      inputs,
      evidence: { by: "rule", name: "crash-loop", rule: `${this.cfg.crashLoopCount} crashes within ${this.cfg.crashLoopWindowMs / 1000} s` },
      time,
    };
  }

  /** Crashes seen for a unit since `since` (the planner's outcome check). */
  crashesSince(unit: string, since: number): number {
    const t = this.tracks.get(unit);
    return t ? t.crashes.filter((x) => x > since).length + t.unhealthy.filter((x) => x > since).length : 0;
  }

  async onTick(tick: Tick, mon: Monitor): Promise<Finding[]> {
    const out: Finding[] = [];
    out.push(...(await this.leaks(tick, mon)));
    out.push(...this.hogs(tick, mon));
    out.push(...this.forkBombs(tick, mon));
    out.push(...(await this.anomalies(tick, mon)));
    if (tick.ts - this.lastOutsideScan >= this.cfg.outsideScanMs) {
      const sinceMs = tick.ts - this.lastOutsideScan;
      this.lastOutsideScan = tick.ts;
      out.push(...this.outside(tick, sinceMs));
      out.push(...this.ports(tick));
    }
    return out;
  }

  private async leaks(tick: Tick, mon: Monitor): Promise<Finding[]> {
    const out: Finding[] = [];
    const windows: { unit: string; w: number[] }[] = [];
    for (const [unit, s] of tick.units) {
      if (!s.memoryMax || !Number.isFinite(s.memoryMax) || s.state === "inactive" || s.state === "failed") continue;
      const mem = mon.series(`unit.${unit}.memoryCurrent`, WINDOW);
      if (mem.length < 10) continue;
      windows.push({ unit, w: mem.map((m) => m / s.memoryMax!) });
    }
    if (windows.length === 0) return out;
    let predicted: Float32Array | undefined;
    if (this.models.forecast && this.cfg.leakDecision !== "rule") predicted = await this.models.forecast.score(windows.map((x) => forecastInput(x.w)));
    this.used.forecast = predicted ? "model" : "rule";
    windows.forEach(({ unit, w }, i) => {
      const rule = recentGrowth(w);
      const f = predicted ? modelForecast(w, predicted[i]!) : rule;
      this.forecasts.set(unit, f);
      const last = w[w.length - 1]!;
      // "both": the model that the limit is near, the line that the growth is steady; "model": the model alone.
      const growing = predicted && this.cfg.leakDecision === "model" ? f.predicted > last : rule.slope > 0 && rule.r2 > 0.7;
      const soon = f.predicted >= 0.98 || f.etaS <= this.cfg.leakEtaS;
      const t = this.track(unit);
      t.leakTicks = growing && soon && last > 0.25 ? t.leakTicks + 1 : 0;
      if (t.leakTicks === this.cfg.leakTicks) {
        out.push({
          class: "leak",
          unit,
          detail: "",
          summary: `${unit}'s memory grows steadily (${(rule.slope * 100).toFixed(1)}% of its limit per second, now ${(last * 100).toFixed(0)}%): it will be OOM-killed in about ${Math.round(f.etaS)} s`,
          inputs: { memory_fraction: +last.toFixed(3), slope_per_s: +rule.slope.toFixed(5), r2: +rule.r2.toFixed(3), window_s: w.length, eta_s: Math.round(f.etaS), memory_max: tick.units.get(unit)!.memoryMax },
          evidence: f.by === "model"
            ? { by: "model", name: "memory-forecast", score: +f.predicted.toFixed(3), threshold: 0.98, rule: `predicted fraction of memory.max in 30 s, or ETA under ${this.cfg.leakEtaS} s` }
            : { by: "rule", name: "linear-trend", score: +f.predicted.toFixed(3), threshold: 0.98, rule: `straight-line fit (R² ${rule.r2.toFixed(2)}); ETA under ${this.cfg.leakEtaS} s` },
          time: tick.ts,
        });
      }
    });
    return out;
  }

  /** A unit using most of a core for a while, while some other unit's latency suffers. */
  private hogs(tick: Tick, mon: Monitor): Finding[] {
    const out: Finding[] = [];
    const victims: { unit: string; latency: number; baseline: number }[] = [];
    for (const [unit, s] of tick.units) {
      const st = mon.statuses.get(unit);
      if (!st?.health && !st?.latency_sensitive) continue;
      const lat = mon.series(`unit.${unit}.healthLatencyMs`, 120);
      if (lat.length < 2) continue;
      const baseline = Math.min(...lat);
      const now = s.healthLatencyMs ?? 0;
      const waiting = (s.waitUsPerS ?? 0) > 200_000;
      if (now > Math.max(3 * baseline, 150) || waiting) victims.push({ unit, latency: now, baseline });
    }
    const psi = tick.system["psi.cpu"] ?? 0;
    for (const [unit, s] of tick.units) {
      const t = this.track(unit);
      const hot = (s.cpuPercent ?? 0) >= this.cfg.hogPercent;
      const others = victims.filter((v) => v.unit !== unit);
      t.hogTicks = hot && (others.length > 0 || psi > 40) ? t.hogTicks + 1 : 0;
      if (t.hogTicks === this.cfg.hogTicks) {
        const v = others[0];
        out.push({
          class: "cpu-hog",
          unit,
          detail: "",
          summary: `${unit} uses ${Math.round(s.cpuPercent ?? 0)}% of a CPU${v ? ` while ${v.unit}'s health check takes ${v.latency} ms (normally ${v.baseline} ms)` : ` while CPU pressure is ${psi.toFixed(0)}%`}`,
          inputs: { cpu_percent: Math.round(s.cpuPercent ?? 0), ticks: t.hogTicks, victims: others.map((o) => ({ unit: o.unit, latency_ms: o.latency, baseline_ms: o.baseline })), psi_cpu_some: psi },
          evidence: { by: "rule", name: "cpu-hog", rule: `≥ ${this.cfg.hogPercent}% CPU for ${this.cfg.hogTicks} s while another unit's health latency is over 3× its best (or CPU pressure over 40%)` },
          time: tick.ts,
        });
      }
    }
    return out;
  }

  private forkBombs(tick: Tick, mon: Monitor): Finding[] {
    const out: Finding[] = [];
    for (const [unit, s] of tick.units) {
      if (s.pidsCurrent === undefined) continue;
      const t = this.track(unit);
      t.pidsHistory = [...t.pidsHistory.slice(-4), s.pidsCurrent];
      const growth = s.pidsCurrent - t.pidsHistory[0]!;
      const max = mon.statuses.get(unit)?.limits.pids_max;
      const nearMax = max !== undefined && s.pidsCurrent >= 0.9 * max;
      // Pinned at its pids.max: a bomb that filled the group before the agent first looked (a busy device ticks slowly) shows no growth.
      const pinned = max !== undefined && t.pidsHistory.length >= 2 && t.pidsHistory.slice(-2).every((p) => p >= 0.9 * max);
      if (growth >= this.cfg.forkPidsPerTick * Math.max(1, t.pidsHistory.length - 1) || (nearMax && growth > 0) || pinned) {
        t.pidsHistory = [];
        out.push({
          class: "fork-bomb",
          unit,
          detail: "",
          summary: `${unit}'s process count grows fast: ${s.pidsCurrent} processes, +${growth} in ${t.pidsHistory.length || 5} s${nearMax ? ` (pids.max ${max})` : ""}`,
          inputs: { pids: s.pidsCurrent, growth, pids_max: max },
          evidence: { by: "rule", name: "pids-growth", rule: `+${this.cfg.forkPidsPerTick} processes a second, or 90% of pids.max reached or held` },
          time: tick.ts,
        });
      }
    }
    return out;
  }

  /** Processes outside every unit: a CPU hog or a fork bomb started by hand or by an intruder. */
  private outside(tick: Tick, sinceMs: number): Finding[] {
    const out: Finding[] = [];
    const procs = processes(false);
    const hz = 100;
    // The time since the last scan, not the configured period: a slowed tick (the agent over its budget) scans less often.
    const dtS = sinceMs / 1000;
    const pctOf = (p: ProcInfo) => {
      const prev = this.prevTicks.get(p.pid);
      return prev === undefined ? undefined : ((p.ticks - prev) / hz / dtS) * 100;
    };
    // Only a process that could be a finding has its cgroup read (one file per process, on a board most of a scan's
    // cost): one hot enough to be a hog, or one of 40 or more of the same name.
    const named = new Map<string, number>();
    for (const p of procs) named.set(p.comm, (named.get(p.comm) ?? 0) + 1);
    const outsiders = procs.filter((p) => {
      if ((pctOf(p) ?? 0) < this.cfg.hogPercent && named.get(p.comm)! < 40) return false;
      p.cgroup = cgroupOf(p.pid);
      return isOutsider(p, this.selfPids);
    });
    const next = new Map<number, number>();
    for (const p of procs) next.set(p.pid, p.ticks);
    const hotNow = new Map<number, number>();
    for (const p of outsiders) {
      const pct = pctOf(p);
      if (pct === undefined || pct < this.cfg.hogPercent) continue;
      const hot = (this.outsideHot.get(p.pid) ?? 0) + 1;
      hotNow.set(p.pid, hot);
      if (hot === 2) {
        out.push({
          class: "outside-hog",
          unit: null,
          detail: `comm=${safeComm(p.comm)}`,
          summary: `process ${p.pid} (${safeComm(p.comm)}) belongs to no unit and uses ${Math.round(pct)}% of a CPU`,
          inputs: { pid: p.pid, comm: safeComm(p.comm), cpu_percent: Math.round(pct), cgroup: p.cgroup },
          evidence: { by: "rule", name: "outside-hog", rule: `≥ ${this.cfg.hogPercent}% CPU over two scans ${+dtS.toFixed(1)} s apart, outside every unit` },
          pid: p.pid,
          time: tick.ts,
        });
      }
    }
    this.prevTicks = next;
    // A process that was not hot at this scan starts again from nought (and one that exited is forgotten).
    this.outsideHot = hotNow;
    // A fork bomb outside units: many processes with the same name under one parent line.
    const byComm = new Map<string, ProcInfo[]>();
    for (const p of outsiders) (byComm.get(p.comm) ?? byComm.set(p.comm, []).get(p.comm)!).push(p);
    for (const [comm, list] of byComm) {
      if (list.length < 40) continue;
      const pids = new Set(list.map((p) => p.pid));
      const root = list.find((p) => !pids.has(p.ppid)) ?? list[0]!;
      out.push({
        class: "outside-fork-bomb",
        unit: null,
        detail: `comm=${safeComm(comm)}`,
        summary: `${list.length} processes named ${safeComm(comm)} outside every unit, growing from process ${root.pid}`,
        inputs: { processes: list.length, root_pid: root.pid, comm: safeComm(comm) },
        evidence: { by: "rule", name: "outside-fork-bomb", rule: "40 or more processes of one name outside every unit" },
        pid: root.pid,
        time: tick.ts,
      });
    }
    return out;
  }

  private ports(tick: Tick): Finding[] {
    const out: Finding[] = [];
    const ports = listeningPorts();
    if (!this.knownPorts || tick.ts - this.startedAt < this.cfg.portBaselineMs) {
      this.knownPorts = new Set([...(this.knownPorts ?? []), ...ports.keys(), ...this.cfg.allowedPorts]);
      return out;
    }
    for (const [port, inodes] of ports) {
      if (this.knownPorts.has(port)) continue;
      this.knownPorts.add(port);
      const pid = socketOwner(inodes);
      const cg = pid ? cgroupOf(pid) : "";
      const unit = /^\/paio\/([^/]+)/.exec(cg)?.[1] ?? null;
      // A port the unit's file declares is expected: the firewall opened it for that unit.
      if (unit && tick.units.get(unit)?.ports?.includes(`${port}/tcp`)) continue;
      out.push({
        class: "new-port",
        unit,
        detail: `port=${port}`,
        summary: `a new listening TCP port ${port} appeared${pid ? `, opened by process ${pid}` : ""}${unit ? ` of unit ${unit}` : " outside every unit"}`,
        inputs: { port, pid, cgroup: cg },
        evidence: { by: "rule", name: "new-port", rule: "a listening port not open at start, not in the policy's ports.allowed, and not declared in its unit's ports" },
        pid,
        time: tick.ts,
      });
    }
    return out;
  }

  /** Several metrics anomalous at once: an incident to explain, not to heal. */
  private async anomalies(tick: Tick, mon: Monitor): Promise<Finding[]> {
    const names = Object.keys(tick.system).filter(judgedForAnomaly);
    const rows: Float32Array[] = [];
    const rowNames: string[] = [];
    for (const n of names) {
      const values = mon.series(n, DIM + 1);
      let st = this.stats.get(n);
      if (!st) this.stats.set(n, (st = new RunningStats()));
      if (values.length >= 2) st.add(values[values.length - 1]! - values[values.length - 2]!);
      if (st.n < 30) continue;
      const x = anomalyFeatures(values, st);
      if (x) {
        rows.push(x);
        rowNames.push(n);
      }
    }
    if (rows.length === 0) return [];
    const scores = this.models.anomaly && this.cfg.anomalyDecision !== "rule" ? await this.models.anomaly.score(rows) : undefined;
    this.used.anomaly = scores ? "model" : "rule";
    const threshold = this.models.anomaly?.threshold ?? Infinity;
    const byModel = (i: number) => scores![i]! > threshold;
    const flagged = rowNames.filter((_, i) => (!scores ? ruleAnomalous(rows[i]!) : this.cfg.anomalyDecision === "both" ? byModel(i) && ruleAnomalous(rows[i]!) : byModel(i)));
    if (flagged.length < this.cfg.anomalyMetrics || tick.ts - this.lastAnomaly < 60_000) return [];
    this.lastAnomaly = tick.ts;
    return [{
      class: "anomaly",
      unit: null,
      detail: "",
      summary: `${flagged.length} metrics changed unusually at once: ${flagged.slice(0, 5).join(", ")}`,
      inputs: { metrics: flagged, checked: rowNames.length },
      evidence: scores
        ? {
            by: "model",
            name: "anomaly",
            // The highest distance among the flagged metrics: what `paio why` shows beside the threshold.
            score: +Math.max(...rowNames.map((n, i) => (flagged.includes(n) ? scores[i]! : -Infinity))).toFixed(3),
            threshold: this.models.anomaly!.threshold,
            rule: `${this.cfg.anomalyMetrics} or more metrics beyond the model's distance threshold${this.cfg.anomalyDecision === "both" ? " and over 6 standard deviations" : ""}`,
          }
        : { by: "rule", name: "z-score", rule: `${this.cfg.anomalyMetrics} or more metrics whose latest change is over 6 standard deviations` },
      time: tick.ts,
    }];
  }
}

/**
 * The straight line through the window, or through its last 10 s when the
 * growth began inside the window: a leak that started 8 s ago is a clean
 * line over those 8 s but a poor one over 30 s that are mostly flat, and
 * waiting for the flat part to leave the window costs the lead time.
 */
export function recentGrowth(w: number[]): Forecast {
  const full = ruleForecast(w);
  if (w.length <= RECENT_S) return full;
  const recent = ruleForecast(w.slice(-RECENT_S));
  return recent.r2 > 0.7 && recent.slope > full.slope ? recent : full;
}

const RECENT_S = 10;

/** What a failed exit's reason says: its detail for a signature ("exit=3", "signal=SIGSEGV", "oom", "start"), or undefined when it is no crash. */
export function crashOf(reason: string): { detail: string } | undefined {
  const m = /OOM kill|exited with status (\d+)|killed by signal (\w+)|cannot start |never moved into its cgroup|exit status unknown/.exec(reason);
  if (!m) return undefined;
  if (m[0].startsWith("OOM")) return { detail: "oom" };
  if (m[1] !== undefined) return { detail: `exit=${m[1]}` };
  if (m[2] !== undefined) return { detail: `signal=${m[2]}` };
  return { detail: m[0].startsWith("cannot") || m[0].startsWith("never") ? "start" : "exit=?" };
}

/** An exit's code for a person: the status (3), the signal ("SIGSEGV"), "OOM" or "no start". */
export function exitCodeOf(reason: string): number | string | undefined {
  const c = crashOf(reason)?.detail;
  if (!c) return undefined;
  if (c.startsWith("exit=")) return /^\d+$/.test(c.slice(5)) ? Number(c.slice(5)) : "unknown";
  if (c.startsWith("signal=")) return c.slice(7);
  return c === "oom" ? "OOM" : "no start";
}

/** "exit 3 ×5", "exit 1, SIGSEGV": the codes of a run of exits, repeats counted. */
export function codesText(codes: readonly (number | string)[]): string {
  const runs: { code: number | string; n: number }[] = [];
  for (const c of codes) {
    const last = runs[runs.length - 1];
    if (last && last.code === c) last.n++;
    else runs.push({ code: c, n: 1 });
  }
  return runs.map((r) => `${typeof r.code === "number" ? `exit ${r.code}` : r.code}${r.n > 1 ? ` ×${r.n}` : ""}`).join(", ");
}

/** A process name is data, not text to trust: printable ASCII only, at most 32 characters. */
export function safeComm(comm: string): string {
  return comm.replace(/[^\x20-\x7e]/g, "?").slice(0, 32);
}

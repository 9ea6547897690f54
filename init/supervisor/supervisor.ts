// The supervisor: loads unit files, starts units in dependency order, keeps
// the state file, takes back the units of a previous supervisor, applies
// reloads, serves the control socket and stops everything in reverse order.

import { appendFileSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { LimitsInput, ReloadResult, TaskPriorityResult, UnitStatus, UnitSummary } from "../control/protocol.ts";
import { errnoText, readConfigFile } from "../../lib/config/read.ts";
import { Cgroups } from "./cgroup.ts";
import { hintKernel, readHint } from "./latency-hint.ts";
import { checkDependencies, dependents } from "./dependencies.ts";
import { startTime, uptimeSeconds } from "./proc.ts";
import { readState, writeState } from "./state-file.ts";
import { parseUnitFile, type Limits, type Unit } from "./unit-file.ts";
import { rotateIfLarge } from "./unit-log.ts";
import { UnitRunner, type StateChange } from "./unit-runner.ts";
import { CPU_PERIOD_US, formatPort, parseCpuMax, parseSize } from "../../lib/config/measure.ts";
import { checkTimezone } from "../../lib/provision/plan.ts";

export interface SupervisorConfig {
  unitDirs: string[];
  runDir: string;
  stateDir: string;
  say: (line: string) => void;
}

export function configFromEnv(env: Record<string, string | undefined>): SupervisorConfig {
  return {
    unitDirs: (env.PAIO_UNIT_DIRS ?? "/etc/paio/units:/var/lib/paio/units").split(":").filter(Boolean),
    runDir: env.PAIO_RUN_DIR ?? "/run/paio",
    stateDir: env.PAIO_STATE_DIR ?? "/var/lib/paio",
    say: (line) => console.log(`paio: ${line}`),
  };
}

export interface LoadResult {
  units: Map<string, Unit>;
  /** Units that may run, dependencies first. */
  order: Unit[];
  errors: string[];
  notes: string[];
}

/** Reads every *.toml in the unit directories; a later directory overrides an earlier one. */
export function loadUnits(dirs: string[]): LoadResult {
  const units = new Map<string, Unit>();
  const errors: string[] = [];
  const notes: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith(".toml")).sort();
    } catch {
      continue; // a missing directory simply has no units
    }
    for (const file of names) {
      const path = join(dir, file);
      // Never blocks, never leads elsewhere: a FIFO, a device, or a link of any kind is refused, not read.
      const read = readConfigFile(path, undefined, { links: "refuse" });
      if (!read.ok) {
        errors.push(read.error);
        continue;
      }
      const result = parseUnitFile(read.text, path);
      if (!result.ok) {
        errors.push(result.error);
        continue;
      }
      const previous = units.get(result.unit.name);
      if (previous) notes.push(`${result.unit.name}: ${path} overrides ${previous.path}`);
      units.set(result.unit.name, result.unit);
    }
  }
  const deps = checkDependencies(units);
  for (const [name, why] of deps.refused) {
    errors.push(why);
    units.delete(name);
  }
  return { units, order: deps.order, errors, notes };
}

/** Everything about a unit except its limits and ports: a change here needs a restart. */
function identity(u: Unit): string {
  const { limits: _limits, path: _path, ports: _ports, ...rest } = u;
  return JSON.stringify(rest);
}

export class SupervisorError extends Error {
  constructor(readonly code: "no-such-unit" | "bad-request" | "failed", message: string) {
    super(message);
  }
}

export class Supervisor {
  readonly runners = new Map<string, UnitRunner>();
  readonly cgroups = new Cgroups();
  private baseEnv: Record<string, string>;
  private listeners = new Set<(c: StateChange) => void>();
  readonly logDir: string;
  private watchdogFd: number | undefined;

  constructor(private cfg: SupervisorConfig) {
    this.baseEnv = {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: process.env.HOME ?? "/root",
      TERM: process.env.TERM ?? "linux",
    };
    // The device's time zone (first-boot settings, docs/provisioning.md), for the units' clocks.
    const tz = readConfigFile(join(cfg.stateDir, "timezone"), 256);
    const zone = tz.ok ? checkTimezone(tz.text.trim()) : undefined;
    if (zone?.ok) this.baseEnv.TZ = zone.value;
    this.logDir = join(cfg.stateDir, "logs");
  }

  say(line: string): void {
    this.cfg.say(line);
  }

  onChange(fn: (c: StateChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Tells subscribers about a change that is not a change of state (declared ports, say). */
  announce(r: UnitRunner, reason: string): void {
    this.changed({ unit: r.name, from: r.state, to: r.state, reason, pid: r.pid, time: Date.now() });
  }

  private changed(c: StateChange): void {
    this.saveState();
    for (const fn of this.listeners) fn(c);
    // A unit that fails or stops takes down the units that require it.
    if (c.to === "failed" || (c.to === "inactive" && c.from === "stopping")) {
      for (const name of dependents([...this.runners.values()].map((r) => r.unit), c.unit)) {
        const r = this.runners.get(name);
        if (r?.active) void r.stop(`stopped because it requires '${c.unit}', which is ${c.to}`);
      }
    }
  }

  private saveState(): void {
    const units: Record<string, { pid: number; startTime: number; exec: string[] }> = {};
    for (const r of this.runners.values()) {
      if (r.pid !== undefined && r.startTime !== undefined) units[r.name] = { pid: r.pid, startTime: r.startTime, exec: r.unit.exec };
    }
    try {
      writeState(this.cfg.runDir, { supervisorPid: process.pid, units });
    } catch (e) {
      this.say(`warning: cannot write the state file in ${this.cfg.runDir}: ${errnoText(e)}`);
    }
  }

  /** Persistent bookkeeping on the data partition; a full or broken disk is reported, never fatal. */
  private recordBoot(): void {
    const dir = join(this.cfg.stateDir, "supervisor");
    const file = join(dir, "boots.log");
    try {
      mkdirSync(join(this.cfg.stateDir, "units"), { recursive: true });
      mkdirSync(dir, { recursive: true });
      const record = `${new Date().toISOString()} pid=${process.pid} uptime=${uptimeSeconds().toFixed(2)}\n`;
      // A new file each start (written aside, then renamed) needs a fresh block: a full disk shows here.
      // One full block, padded: a few bytes would fit inside the inode (ext4 inline data) and hide it.
      const last = join(dir, "last-start");
      writeFileSync(`${last}.tmp`, record.padEnd(4096, "\n"));
      renameSync(`${last}.tmp`, last);
      appendFileSync(file, record);
    } catch (e) {
      this.say(
        `warning: cannot write ${(e as NodeJS.ErrnoException).path ?? file}: ${errnoText(e)}; persistent state is not being updated — ` +
          `free space on the data partition (${this.cfg.stateDir}) or check /run/paio/data-status`,
      );
    }
  }

  private runnerFor(unit: Unit): UnitRunner {
    return new UnitRunner(unit, {
      cgroups: this.cgroups,
      logDir: this.logDir,
      baseEnv: this.baseEnv,
      say: (line) => this.say(line),
      changed: (c) => this.changed(c),
    });
  }

  /** The unit files the last load refused, each "FILE field ...: what is wrong" (the update gate reads them). */
  refused: string[] = [];

  private report(result: LoadResult): void {
    this.refused = [...result.errors];
    for (const note of result.notes) this.say(`note: ${note}`);
    for (const error of result.errors) this.say(`unit error: ${error}; fix the file, then run 'paio reload'`);
  }

  start(): void {
    try {
      mkdirSync(this.cfg.runDir, { recursive: true });
      writeFileSync(join(this.cfg.runDir, "supervisor.pid"), `${process.pid}\n`);
    } catch (e) {
      this.say(`warning: cannot create ${this.cfg.runDir}: ${errnoText(e)}`);
    }
    this.recordBoot();
    if (!this.cgroups.available) this.say(`note: ${this.cgroups.why}; limits are not enforced, stops use process groups`);
    const result = loadUnits(this.cfg.unitDirs);
    this.report(result);
    const previous = readState(this.cfg.runDir);
    for (const unit of result.order) {
      const runner = this.runnerFor(unit);
      this.runners.set(unit.name, runner);
      const rec = previous?.units[unit.name];
      const inGroup = (pid: number) => !this.cgroups.available || this.cgroups.procs(unit.name).includes(pid);
      if (rec && startTime(rec.pid) === rec.startTime && JSON.stringify(rec.exec) === JSON.stringify(unit.exec) && inGroup(rec.pid)) {
        runner.adopt(rec.pid, rec.startTime);
      } else {
        // A unit whose main process died while no supervisor watched may have left children.
        this.cgroups.kill(unit.name);
        runner.start("started at boot");
      }
    }
    this.saveState();
    setInterval(() => {
      for (const name of this.runners.keys()) rotateIfLarge(this.logDir, name);
    }, 10_000).unref();
    this.startWatchdog();
    const refused = result.errors.length;
    this.say(
      `supervisor ready (uptime ${uptimeSeconds().toFixed(2)} s, ${this.runners.size} units started` +
        `${refused ? `, ${refused} refused` : ""})`,
    );
  }

  /**
   * The hardware watchdog resets the machine unless it hears from us. It is
   * fed only while the supervisor's event loop runs on time, so a stuck
   * supervisor leads to a reset.
   */
  private startWatchdog(): void {
    // Only the system's supervisor (PID 1's child) owns the watchdog; PAIO_WATCHDOG names another
    // device; paio.watchdog=off|/dev/X on the kernel command line turns it off or picks one.
    const dev = process.env.PAIO_WATCHDOG ?? (process.ppid === 1 ? cmdlineWatchdog() ?? "/dev/watchdog" : undefined);
    if (dev === "off") this.say("watchdog: not used (paio.watchdog=off on the kernel command line)");
    if (!dev || dev === "none" || dev === "off") return;
    try {
      if (!statSync(dev).isCharacterDevice()) return;
      this.watchdogFd = openSync(dev, "r+"); // never create: it must be the driver's device
    } catch {
      return; // no watchdog on this machine
    }
    this.say(`watchdog: feeding ${dev} while the supervisor's loop is healthy`);
    let last = performance.now();
    setInterval(() => {
      const now = performance.now();
      const lag = now - last - 1000;
      last = now;
      if (lag < 5000 && this.watchdogFd !== undefined) writeSync(this.watchdogFd, "1");
    }, 1000);
  }

  /** Stops feeding the watchdog and disarms it (the magic 'V'), for a clean shutdown. */
  private closeWatchdog(): void {
    if (this.watchdogFd === undefined) return;
    try {
      writeSync(this.watchdogFd, "V");
      closeSync(this.watchdogFd);
    } catch {
      // nothing to do
    }
    this.watchdogFd = undefined;
  }

  runner(name: string): UnitRunner {
    const r = this.runners.get(name);
    if (!r) throw new SupervisorError("no-such-unit", `no unit named '${name}'; 'paio units' lists them`);
    return r;
  }

  /** Applies added, removed and changed unit files; unchanged running units are not touched. */
  async reload(): Promise<ReloadResult> {
    const result = loadUnits(this.cfg.unitDirs);
    this.report(result);
    const out: ReloadResult = { added: [], removed: [], changed: [], unchanged: [], errors: result.errors };
    for (const [name, runner] of [...this.runners]) {
      if (!result.units.has(name)) {
        await runner.stop("unit file removed");
        this.cgroups.remove(name);
        this.runners.delete(name);
        out.removed.push(name);
      }
    }
    for (const unit of result.order) {
      const existing = this.runners.get(unit.name);
      if (!existing) {
        const runner = this.runnerFor(unit);
        this.runners.set(unit.name, runner);
        runner.start("unit file added");
        out.added.push(unit.name);
      } else if (identity(existing.unit) !== identity(unit)) {
        const wasActive = existing.active;
        await existing.stop("unit file changed");
        existing.unit = unit;
        // A changed file is the newer decision: what was set at run time goes, as its limits do.
        existing.runtime = {};
        if (wasActive || unit.restart === "always") existing.start("unit file changed", true);
        out.changed.push(unit.name);
      } else if (JSON.stringify(existing.unit.limits) !== JSON.stringify(unit.limits) || JSON.stringify(existing.unit.ports) !== JSON.stringify(unit.ports)) {
        const portsChanged = JSON.stringify(existing.unit.ports) !== JSON.stringify(unit.ports);
        existing.unit = unit;
        existing.runtime = {};
        existing.setLimits(unit.limits); // a limit removed from the file is removed from the cgroup too
        if (portsChanged) this.announce(existing, `declared ports now ${unit.ports.map(formatPort).join(", ") || "none"}`);
        out.changed.push(unit.name);
      } else {
        out.unchanged.push(unit.name);
      }
    }
    this.saveState();
    this.say(`reloaded: ${out.added.length} added, ${out.removed.length} removed, ${out.changed.length} changed, ${out.unchanged.length} unchanged`);
    return out;
  }

  setLimits(name: string, input: LimitsInput): Limits {
    const runner = this.runner(name);
    const limits: Limits = { ...runner.unit.limits };
    if (input.cpu_weight !== undefined) {
      if (!Number.isInteger(input.cpu_weight) || input.cpu_weight < 1 || input.cpu_weight > 10000) throw new SupervisorError("bad-request", "cpu_weight must be a whole number from 1 to 10000");
      limits.cpuWeight = input.cpu_weight;
    }
    if (input.cpu_max !== undefined) {
      if (input.cpu_max === null) delete limits.cpuMaxUs;
      else {
        const q = parseCpuMax(input.cpu_max);
        if (q === undefined) throw new SupervisorError("bad-request", `cpu_max must be a percentage of one CPU such as "50%", got ${JSON.stringify(input.cpu_max)}`);
        limits.cpuMaxUs = q;
      }
    }
    if (input.memory_max !== undefined) {
      if (input.memory_max === null) delete limits.memoryMax;
      else {
        const b = parseSize(input.memory_max);
        if (b === undefined || b < 1 << 20) throw new SupervisorError("bad-request", `memory_max must be a size of at least 1M such as "128M", got ${JSON.stringify(input.memory_max)}`);
        limits.memoryMax = b;
      }
    }
    if (input.pids_max !== undefined) {
      if (input.pids_max === null) delete limits.pidsMax;
      else if (!Number.isInteger(input.pids_max) || input.pids_max < 1) throw new SupervisorError("bad-request", "pids_max must be a positive whole number");
      else limits.pidsMax = input.pids_max;
    }
    if (input.latency_nice !== undefined) {
      if (input.latency_nice === null || input.latency_nice === 0) delete limits.latencyNice;
      else if (!this.cgroups.latencyHooks) throw new SupervisorError("bad-request", "latency_nice needs a kernel with PAIO's scheduling patches (no cpu.latency.nice here); use cpu_weight");
      else limits.latencyNice = input.latency_nice;
    }
    if (input.uclamp_min !== undefined) {
      if (input.uclamp_min === null || input.uclamp_min === 0) delete limits.uclampMin;
      else if (!this.cgroups.uclamp) throw new SupervisorError("bad-request", "uclamp_min needs cpu.uclamp.min, which this kernel does not have (CONFIG_UCLAMP_TASK_GROUP); use cpu_weight");
      else limits.uclampMin = input.uclamp_min;
    }
    runner.setLimits(limits);
    this.say(`${name}: limits changed`);
    return limits;
  }

  /**
   * Sets the per-task latency hint and/or nice of every task of a unit (and
   * of its main process at each later start). The hint needs the patched
   * kernel's per-task hint: elsewhere it is refused and nothing changes.
   */
  setTaskPriority(name: string, input: { latency_nice?: number | null; nice?: number | null }): TaskPriorityResult {
    const runner = this.runner(name);
    const k = hintKernel(this.cgroups);
    if (k.kernel !== "per-task" && input.latency_nice !== undefined && input.latency_nice !== null) {
      throw new SupervisorError("bad-request", `latency_nice per task needs a kernel with the per-task latency hint (${k.why}); use set-limits latency_nice (cpu.latency.nice) or nice`);
    }
    // Without the per-task hint none was ever set by request: taking it back changes no task.
    const r = runner.setTaskPriority({ latencyNice: k.kernel === "per-task" ? input.latency_nice : undefined, nice: input.nice });
    const what = [r.latencyNice !== undefined ? `latency nice ${r.latencyNice}` : "", r.nice !== undefined ? `nice ${r.nice}` : ""].filter(Boolean).join(" and ") || "nothing";
    if (r.failed.length && r.tasks === 0) throw new SupervisorError("failed", `${name}: ${what} not set: ${r.failed.join("; ")}`);
    this.say(`${name}: ${what} per task by request (${runner.active ? `${r.tasks} task${r.tasks === 1 ? "" : "s"} now` : "from its next start"})${r.failed.length ? `; not everywhere: ${r.failed.join("; ")}` : ""}`);
    return { unit: name, latency_nice: r.latencyNice, nice: r.nice, tasks: r.tasks, failed: r.failed };
  }

  /**
   * Moves a process that belongs to no unit (and, with it, nothing else) into
   * the quarantine group next to the units' groups, then freezes it or limits
   * it to a tenth of a CPU and 64 processes: how the agent contains a CPU hog
   * or a fork bomb started outside any unit.
   */
  contain(pid: number, how: "freeze" | "limit"): { pid: number; group: string; how: string } {
    if (!this.cgroups.available) throw new SupervisorError("failed", `cannot contain processes: ${this.cgroups.why}`);
    let cg: string;
    try {
      cg = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    } catch {
      throw new SupervisorError("bad-request", `no process ${pid}`);
    }
    const path = /^0::(.*)$/m.exec(cg)?.[1] ?? "";
    const unit = /^\/paio\/([^/]+)/.exec(path)?.[1];
    if (unit) throw new SupervisorError("bad-request", `process ${pid} belongs to unit '${unit}'; freeze or limit the unit instead`);
    if (pid === process.pid || pid === 1) throw new SupervisorError("bad-request", `process ${pid} is ${pid === 1 ? "PID 1" : "the supervisor"}`);
    const group = this.cgroups.quarantine(pid, how);
    this.say(`process ${pid}: contained in ${group} (${how})`);
    return { pid, group, how };
  }

  summary(r: UnitRunner): UnitSummary {
    return {
      name: r.name, description: r.unit.description, state: r.state, reason: r.reason, pid: r.pid, since: r.since, restarts: r.restarts,
      ports: r.unit.ports.map(formatPort),
    };
  }

  status(name: string): UnitStatus {
    const r = this.runner(name);
    const l = r.unit.limits;
    const stats = this.cgroups.available ? this.cgroups.stats(name) : undefined;
    return {
      ...this.summary(r),
      frozen: r.frozen,
      exits: r.exits.slice(),
      latency_sensitive: r.unit.latencySensitive,
      exec: r.unit.exec,
      restart: r.unit.restart,
      limits: {
        cpu_weight: l.cpuWeight,
        cpu_max: l.cpuMaxUs === undefined ? undefined : `${+((l.cpuMaxUs / CPU_PERIOD_US) * 100).toFixed(1)}%`,
        memory_max: l.memoryMax,
        pids_max: l.pidsMax,
        latency_nice: l.latencyNice,
        uclamp_min: l.uclampMin,
      },
      latency_hint: readHint(name, r.pid, r.taskWants().latencyNice, this.cgroups),
      cgroup: stats && { memory_current: stats.memoryCurrent, pids_current: stats.pidsCurrent, cpu_usage_us: stats.cpuUsageUs, oom_kills: stats.oomKills },
      health: r.unit.health && {
        type: r.unit.health.type,
        last: r.lastCheck && { result: r.lastCheck.result, latency_ms: r.lastCheck.latencyMs, at: r.lastCheck.at },
      },
    };
  }

  /** Stops every unit, dependents before what they depend on. */
  async stopAll(): Promise<number> {
    const order = checkDependencies(new Map([...this.runners].map(([n, r]) => [n, r.unit]))).order.reverse();
    const names = new Set(order.map((u) => u.name));
    const rest = [...this.runners.keys()].filter((n) => !names.has(n));
    let n = 0;
    for (const name of [...order.map((u) => u.name), ...rest]) {
      const r = this.runners.get(name)!;
      if (r.active || r.state === "backoff") n++;
      await r.stop("system shutdown");
    }
    this.saveState();
    this.closeWatchdog();
    return n;
  }
}

/** paio.watchdog= from the kernel command line: "off", or the device to feed. */
function cmdlineWatchdog(): string | undefined {
  try {
    return /(?:^|\s)paio\.watchdog=(\S+)/.exec(readFileSync("/proc/cmdline", "utf8"))?.[1];
  } catch {
    return undefined;
  }
}

// Runs one unit through its states:
//
//   inactive -> starting -> running <-> degraded
//                  |           |           |
//                  |           v           v
//                  |       unhealthy -> stopping -> backoff -> starting ...
//                  v
//   (exit) -> backoff -> starting ...   or -> failed (start limit, or no restart)
//   stop   -> stopping -> inactive
//
// Each change is one named move of the table in unit-states.ts, from which
// the model checked with SPIN (model/) is generated.
//
// Every change carries a reason (exit status, signal, OOM kill, health
// failure, start limit, request). The process starts through a tiny shell
// wrapper that waits until the supervisor has put it into the unit's cgroup,
// so not even an early child escapes the group.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, readFileSync } from "node:fs";
import type { Cgroups } from "./cgroup.ts";
import { judgeTimeout, runCheck, sampleProcs, stoppedPass } from "./health.ts";
import { startTime } from "./proc.ts";
import type { Limits, Unit } from "./unit-file.ts";
import { applyAtStart, applyToTasks, hintKernel, type TaskResult, type TaskWants } from "./latency-hint.ts";
import { appendUnitLog, openUnitLog } from "./unit-log.ts";
import { formatDuration } from "../../lib/config/measure.ts";
import { allowedFrom, UNIT_MOVES, type UnitMoveName } from "./unit-states.ts";

import type { UnitEvent, UnitState } from "../control/protocol.ts";

export type { UnitState };

/** A change of state, as the control socket's subscribers see it (less the "event" tag). */
export type StateChange = Omit<UnitEvent, "event">;

export interface RunnerContext {
  cgroups: Cgroups;
  logDir: string;
  baseEnv: Record<string, string>;
  say(line: string): void;
  changed(change: StateChange): void;
}

/** A unit that ran this long started well: its restart delay goes back to the first one. */
export const STABLE_RUN_MS = 10_000;
/** How many failed exits a unit's status keeps. */
export const MAX_EXITS = 10;
const ADOPTED_POLL_MS = 100;

/**
 * With cgroups, a unit starts as this shell wrapper, which waits (up to 5 s)
 * until the supervisor has moved it into the unit's group and then execs the
 * program: no child can be forked outside the group. It polls its own
 * /proc/self/cgroup rather than waiting on a pipe, so a supervisor that dies
 * at that moment leaves nothing half-started behind.
 */
const CGROUP_WRAPPER =
  'i=0; while ! grep -qx "0::/paio/$0" /proc/self/cgroup; do i=$((i+1)); [ $i -gt 2500 ] && exit 111; usleep 2000 2>/dev/null || sleep 0.002; done; exec "$@"';

function lookupUser(name: string): { uid: number; gid: number } | undefined {
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const f = line.split(":");
      if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // no passwd file
  }
  return undefined;
}

function signalName(signal: NodeJS.Signals | null): string {
  return signal ?? "";
}

export class UnitRunner {
  state: UnitState = "inactive";
  reason = "not started yet";
  pid: number | undefined;
  startTime: number | undefined;
  restarts = 0;
  since = Date.now();
  lastCheck: { result: string; latencyMs: number; at: number } | undefined;
  /** Frozen by request (cgroup.freeze): health checks pause, since a frozen unit cannot answer them. */
  frozen = false;
  /** The last failed exits, oldest first, each with the time of the state change it caused: a client that was not listening then (an agent starting) still learns of them. */
  exits: { time: number; reason: string }[] = [];
  /** Per-task settings made by request (set-task-priority): applied to the unit's tasks at once and to its main process at each start, until its file changes. */
  runtime: { latencyNice?: number; nice?: number } = {};
  private child: ChildProcess | undefined;
  private startedAt = 0;
  private delay: number;
  private startHistory: number[] = [];
  private timers = new Set<Timer>();
  private failures = 0;
  private checking = false;
  private oomAtStart = 0;
  private stopWaiters: (() => void)[] = [];
  /** Why the running process is being stopped: decides what happens after it exits. */
  private stopIntent: "stop" | "restart" | undefined;
  private stopReason = "";
  private adoptedPoll: Timer | undefined;

  constructor(
    public unit: Unit,
    private ctx: RunnerContext,
  ) {
    this.delay = unit.restartDelayMs;
  }

  get name(): string {
    return this.unit.name;
  }

  get active(): boolean {
    return this.state === "starting" || this.state === "running" || this.state === "degraded" || this.state === "unhealthy" || this.state === "stopping";
  }

  /**
   * Every change of state is a move of the table in unit-states.ts (the
   * model checked with SPIN is made from the same table). A move the table
   * does not allow from the current state is a bug: it is still made, since
   * the unit must go on being supervised, but said and kept for the tests.
   */
  private go(move: UnitMoveName, reason: string): void {
    if (!allowedFrom(move, this.state)) {
      const text = `${move} from ${this.state} is not in the unit state table`;
      UnitRunner.offTable.push(`${this.name}: ${text}`);
      this.ctx.say(`${this.name}: internal error: ${text} (init/supervisor/unit-states.ts)`);
    }
    this.setState(UNIT_MOVES[move].to, reason);
  }

  /** Moves made that the table does not allow (each "unit: move from state ..."); always empty unless the runner has a bug. */
  static offTable: string[] = [];

  /** Only go() calls this. */
  private setState(to: UnitState, reason: string): void {
    const from = this.state;
    this.state = to;
    this.reason = reason;
    this.since = Date.now();
    this.ctx.changed({ unit: this.name, from, to, reason, pid: this.pid, time: this.since });
  }

  private later(ms: number, fn: () => void): Timer {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    clearInterval(this.adoptedPoll);
    this.adoptedPoll = undefined;
  }

  /** Starts the unit. A start by request (manual) also clears a 'failed' state and the start limit. */
  start(reason = "start requested", manual = false): void {
    if (this.active) return;
    this.clearTimers();
    if (manual) {
      this.startHistory = [];
      this.delay = this.unit.restartDelayMs;
    }
    const now = Date.now();
    const { burst, intervalMs } = this.unit.startLimit;
    this.startHistory = this.startHistory.filter((t) => now - t < intervalMs);
    if (this.startHistory.length >= burst) {
      this.go("start-limit", `start limit reached: ${burst} starts within ${formatDuration(intervalMs)}; start it by hand when fixed`);
      this.ctx.say(`${this.name}: failed: ${this.reason}`);
      return;
    }
    this.startHistory.push(now);
    this.spawnProcess(reason);
  }

  private spawnProcess(reason: string): void {
    const { exec, env, name, user } = this.unit;
    this.startedAt = Date.now();
    let ids: { uid: number; gid: number } | undefined;
    if (user) {
      ids = lookupUser(user);
      if (!ids) {
        this.go("no-such-user", `user '${user}' does not exist in /etc/passwd`);
        this.ctx.say(`${name}: failed: ${this.reason}`);
        return;
      }
    }
    const { cgroups } = this.ctx;
    try {
      cgroups.create(name);
      cgroups.apply(name, this.groupLimits());
    } catch (e) {
      this.ctx.say(`${name}: warning: cannot set up its cgroup: ${(e as Error).message}`);
    }
    this.oomAtStart = cgroups.oomKills(name);
    const log = openUnitLog(this.ctx.logDir, name, (line) => this.ctx.say(line));
    let child: ChildProcess;
    try {
      const [cmd, ...args] = cgroups.available ? ["/bin/sh", "-c", CGROUP_WRAPPER, name, ...exec] : exec;
      child = spawn(cmd!, args, {
        detached: true, // setsid(): a session and process group of its own
        stdio: ["ignore", log, log],
        env: { ...this.ctx.baseEnv, ...env, PAIO_UNIT: name },
        uid: ids?.uid,
        gid: ids?.gid,
      });
    } catch (e) {
      if (typeof log === "number") closeSync(log);
      this.afterExit(null, null, `cannot start ${exec[0]}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return;
    }
    if (typeof log === "number") closeSync(log);
    if (child.pid === undefined) {
      child.once("error", (err: NodeJS.ErrnoException) => this.afterExit(null, null, `cannot start ${exec[0]}: ${err.code ?? err.message}`));
      return;
    }
    child.on("error", () => {});
    this.child = child;
    this.pid = child.pid;
    // Before it joins its group: the wrapper execs the program only then, so the program and all it forks inherit the hint.
    appendUnitLog(this.ctx.logDir, name, applyAtStart(child.pid, this.taskWants(), cgroups, () => cgroups.latencyNice(name)));
    try {
      cgroups.join(name, child.pid);
    } catch (e) {
      this.ctx.say(`${name}: warning: cannot move pid ${child.pid} into its cgroup: ${(e as Error).message}`);
    }
    this.startTime = startTime(child.pid);
    this.startedAt = Date.now();
    this.failures = 0;
    child.once("exit", (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.afterExit(code, signal, undefined);
    });
    const health = this.unit.health;
    this.go(health ? "started-checked" : "started", health ? `${reason}; health checks begin after ${formatDuration(health.graceMs)}` : reason);
    this.ctx.say(`${name}: started (pid ${child.pid})`);
    if (health) this.later(health.graceMs, () => this.healthLoop());
  }

  /** Takes over a process started by an earlier supervisor (it is not our child: poll it). */
  adopt(pid: number, start: number): void {
    this.pid = pid;
    this.startTime = start;
    this.startedAt = Date.now();
    this.oomAtStart = this.ctx.cgroups.oomKills(this.name);
    this.go("adopted", `adopted running process ${pid} after a supervisor restart`);
    this.ctx.say(`${this.name}: adopted running process (pid ${pid})`);
    this.watchAdopted(pid, start);
    if (this.unit.health) this.later(this.unit.health.intervalMs, () => this.healthLoop());
  }

  /** An adopted process is not our child: notice its end by polling its start time. */
  private watchAdopted(pid: number, start: number): void {
    this.adoptedPoll = setInterval(() => {
      if (startTime(pid) === start) return;
      clearInterval(this.adoptedPoll);
      this.adoptedPoll = undefined;
      this.afterExit(null, null, undefined, true);
    }, ADOPTED_POLL_MS);
  }

  private exitReason(code: number | null, signal: NodeJS.Signals | null, adopted: boolean): { why: string; failed: boolean } {
    const ooms = this.ctx.cgroups.oomKills(this.name);
    if (ooms > this.oomAtStart) return { why: `OOM kill: the unit used more than memory.max`, failed: true };
    if (signal) return { why: `killed by signal ${signalName(signal)}`, failed: true };
    if (adopted) return { why: "exited (exit status unknown: adopted after a supervisor restart)", failed: true };
    if (code === 111 && this.ctx.cgroups.available) return { why: "it was never moved into its cgroup (start wrapper gave up)", failed: true };
    return { why: `exited with status ${code}`, failed: code !== 0 };
  }

  private afterExit(code: number | null, signal: NodeJS.Signals | null, startError: string | undefined, adopted = false): void {
    this.clearTimers();
    const ranMs = Date.now() - this.startedAt;
    const { why, failed } = startError ? { why: startError, failed: true } : this.exitReason(code, signal, adopted);
    // Whatever the main process left behind in its group goes with it.
    this.ctx.cgroups.kill(this.name);
    this.killGroup("SIGKILL");
    this.pid = undefined;
    this.startTime = undefined;
    const intent = this.stopIntent;
    this.stopIntent = undefined;
    if (intent === "stop") {
      this.go("stopped", `${this.stopReason} (${why})`);
      this.ctx.say(`${this.name}: stopped`);
      this.resolveStop();
      return;
    }
    if (intent === "restart") {
      this.resolveStop();
      this.restarts++;
      this.go("stopped-for-restart", this.stopReason);
      this.later(0, () => this.start(this.stopReason));
      return;
    }
    const policy = this.unit.restart;
    if (policy === "never" || (policy === "on-failure" && !failed)) {
      this.go(failed ? "exited-failed" : "exited-clean", `${why}; not restarted (restart = "${policy}")`);
      if (failed) this.noteExit(why);
      this.ctx.say(`${this.name}: ${why}; not restarting (restart = "${policy}")`);
      return;
    }
    if (ranMs >= STABLE_RUN_MS) this.delay = this.unit.restartDelayMs;
    const delay = this.delay;
    this.delay = Math.min(this.delay * 2, this.unit.restartDelayMaxMs);
    this.restarts++;
    this.go("exited", `${why}; restarting in ${formatDuration(delay)}`);
    if (failed) this.noteExit(why);
    this.ctx.say(`${this.name}: ${why}; restarting in ${delay} ms`);
    this.later(delay, () => this.start(`restart after: ${why}`));
  }

  private noteExit(why: string): void {
    this.exits = [...this.exits.slice(-(MAX_EXITS - 1)), { time: this.since, reason: why }];
  }

  private resolveStop(): void {
    for (const w of this.stopWaiters.splice(0)) w();
  }

  private killGroup(signal: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        // gone
      }
    }
  }

  /** Stops the unit (stop.signal, then the whole cgroup after stop.timeout). */
  async stop(reason = "stop requested"): Promise<void> {
    await this.terminate("stop", reason);
    if (this.state === "backoff" || this.state === "failed" || this.state === "starting") {
      this.clearTimers();
      this.go("stopped-idle", reason);
    }
  }

  async restart(reason = "restart requested"): Promise<void> {
    if (!this.active) {
      this.start(reason, true);
      return;
    }
    await this.terminate("restart", reason);
  }

  private async terminate(intent: "stop" | "restart", reason: string): Promise<void> {
    if (this.pid === undefined || !this.active) return;
    this.clearTimers();
    if (this.frozen) {
      // A frozen process cannot handle its stop signal, and a restarted one would join a frozen group.
      this.ctx.cgroups.freeze(this.name, false);
      this.frozen = false;
    }
    this.stopIntent = intent;
    this.stopReason = reason;
    const done = new Promise<void>((resolve) => this.stopWaiters.push(resolve));
    this.go("stopping", reason);
    const pid = this.pid;
    try {
      process.kill(pid, this.unit.stop.signal);
      // A stopped (SIGSTOP) process would never see the signal: let it run to handle it.
      process.kill(pid, "SIGCONT");
    } catch {
      // already gone
    }
    const killTimer = setTimeout(() => {
      this.ctx.say(`${this.name}: did not stop within ${formatDuration(this.unit.stop.timeoutMs)}; killing its cgroup`);
      this.ctx.cgroups.kill(this.name);
      this.killGroup("SIGKILL");
    }, this.unit.stop.timeoutMs);
    // An adopted process whose watch clearTimers() ended: watch it again until it is gone.
    if (this.adoptedPoll === undefined && this.child === undefined && this.startTime !== undefined) this.watchAdopted(pid, this.startTime);
    await done;
    clearTimeout(killTimer);
  }

  /** Freezes or thaws the unit's cgroup. Health checks pause while it is frozen. */
  setFrozen(frozen: boolean): void {
    if (!this.active) throw new Error(`${this.name} is ${this.state}; only a running unit can be ${frozen ? "frozen" : "thawed"}`);
    this.ctx.cgroups.freeze(this.name, frozen);
    const was = this.frozen;
    this.frozen = frozen;
    if (was && !frozen && this.unit.health) this.later(this.unit.health.intervalMs, () => this.healthLoop());
  }

  /** Stops the unit and leaves it failed until a person starts it (the last rung of the agent's ladder). */
  async markFailed(reason: string): Promise<void> {
    if (this.frozen) {
      this.ctx.cgroups.freeze(this.name, false);
      this.frozen = false;
    }
    await this.stop(reason);
    this.clearTimers();
    this.go("marked-failed", reason);
    this.ctx.say(`${this.name}: failed: ${reason}`);
  }

  /** Replaces the unit's limits and applies them to its cgroup at once (an absent limit is removed). */
  setLimits(limits: Limits): void {
    this.unit = { ...this.unit, limits };
    this.ctx.cgroups.apply(this.name, this.groupLimits());
  }

  /** The limits its group gets: the unit file's latency_nice is the group's hint too, unless one was set at run time. */
  private groupLimits(): Limits {
    const { limits, latencyNice } = this.unit;
    return limits.latencyNice === undefined && latencyNice !== undefined ? { ...limits, latencyNice } : limits;
  }

  /** What its tasks should get: the hint set by request, else the unit file's; and a nice set by request. */
  taskWants(): TaskWants {
    const { latencyNice, nice } = this.runtime;
    if (latencyNice !== undefined) return { latencyNice, from: "request", nice };
    return { latencyNice: this.unit.latencyNice, from: "unit file", nice };
  }

  /**
   * Records per-task settings and applies them to every task the unit runs
   * now. A setting taken back (null) goes back to what a start gives: the
   * unit file's hint, or 0; for nice on a stock kernel, the file's hint too
   * (its fallback there).
   */
  setTaskPriority(change: { latencyNice?: number | null; nice?: number | null }): TaskResult & { latencyNice?: number; nice?: number } {
    const next = { ...this.runtime };
    if (change.latencyNice !== undefined) next.latencyNice = change.latencyNice ?? undefined;
    if (change.nice !== undefined) next.nice = change.nice ?? undefined;
    this.runtime = next;
    const fileNice = hintKernel(this.ctx.cgroups).kernel === "none" ? this.unit.latencyNice : undefined;
    const wants = {
      latencyNice: change.latencyNice === undefined ? undefined : (this.taskWants().latencyNice ?? 0),
      nice: change.nice === undefined ? undefined : (next.nice ?? fileNice ?? 0),
    };
    const done = this.active && this.pid !== undefined ? applyToTasks(this.name, this.pid, wants, this.ctx.cgroups) : { tasks: 0, failed: [] };
    return { ...done, ...wants };
  }

  private unitCpuUs(): { cpuUs: number; states: string[] } {
    const pids = this.ctx.cgroups.available ? this.ctx.cgroups.procs(this.name) : this.pid ? [this.pid] : [];
    const sample = sampleProcs(pids);
    const fromCgroup = this.ctx.cgroups.cpuUsageUs(this.name);
    return { cpuUs: fromCgroup ?? sample.cpuUs, states: sample.states };
  }

  private healthLoop(): void {
    const spec = this.unit.health;
    if (!spec || !this.active || this.state === "stopping" || this.checking || this.frozen) return;
    this.checking = true;
    const before = this.unitCpuUs();
    const t0 = performance.now();
    void runCheck(spec).then((result) => {
      this.checking = false;
      if (!this.active || this.state === "stopping" || this.frozen) return;
      const latencyMs = Math.round(performance.now() - t0);
      const after = this.unitCpuUs();
      let failure: string | undefined;
      const stopped = result.kind === "pass" ? stoppedPass(after.states) : undefined;
      if (stopped) {
        failure = stopped;
      } else if (result.kind === "pass") {
        this.failures = 0;
        this.lastCheck = { result: "pass", latencyMs, at: Date.now() };
        if (this.state !== "running") this.go("check-passed", `health check passed (${latencyMs} ms)`);
      } else if (result.kind === "fail") {
        failure = result.why;
      } else {
        const verdict = judgeTimeout(before.cpuUs, after.cpuUs, after.states);
        if (verdict.kind === "slow") {
          this.lastCheck = { result: "timeout-busy", latencyMs, at: Date.now() };
          if (this.state !== "degraded") {
            this.go("check-slow", `health check timed out after ${formatDuration(spec.timeoutMs)} while the unit was busy (using CPU): slow, not dead`);
            this.ctx.say(`${this.name}: degraded: ${this.reason}`);
          }
        } else {
          failure = verdict.why;
        }
      }
      if (failure !== undefined) {
        this.failures++;
        this.lastCheck = { result: `fail: ${failure}`, latencyMs, at: Date.now() };
        if (this.failures >= spec.retries) {
          const why = `health check failed ${this.failures} times in a row: ${failure}`;
          this.go("checks-failed", why);
          this.ctx.say(`${this.name}: unhealthy: ${why}; restarting`);
          void this.terminate("restart", `restart after: ${why}`);
          return;
        }
      }
      this.later(spec.intervalMs, () => this.healthLoop());
    });
  }
}

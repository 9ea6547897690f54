// Runs one unit: starts its process in a session of its own, watches it, and
// restarts it by its restart policy with exponential backoff. A process taken
// over from a previous supervisor (adopted) is not our child, so it is
// watched by polling /proc instead of by its exit.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync } from "node:fs";
import { startTime } from "./proc.ts";
import type { Unit } from "./unit-file.ts";
import { openUnitLog } from "./unit-log.ts";

export const RESTART_DELAY_FIRST_MS = 200;
export const RESTART_DELAY_MAX_MS = 10_000;
/** A unit that ran this long is considered to have started well: the backoff resets. */
export const STABLE_RUN_MS = 10_000;
const ADOPTED_POLL_MS = 500;

export type UnitState = "inactive" | "running" | "backoff" | "stopping" | "exited";

export interface RunnerHooks {
  say(line: string): void;
  /** Called whenever the running process changes, so the state file is rewritten. */
  changed(): void;
  runDir: string;
  baseEnv: Record<string, string>;
}

export function describeExit(code: number | null, signal: string | null): string {
  if (signal) return `killed by ${signal}`;
  if (code === null) return "ended (exit status unknown: it was adopted)";
  return `exited with status ${code}`;
}

export class UnitRunner {
  state: UnitState = "inactive";
  pid: number | undefined;
  startTime: number | undefined;
  private child: ChildProcess | undefined;
  private startedAt = 0;
  private delay = RESTART_DELAY_FIRST_MS;
  private timer: Timer | undefined;
  private poller: Timer | undefined;
  private stopWaiters: (() => void)[] = [];

  constructor(
    public unit: Unit,
    private hooks: RunnerHooks,
  ) {}

  get name(): string {
    return this.unit.name;
  }

  start(): void {
    if (this.state === "running" || this.state === "stopping") return;
    clearTimeout(this.timer);
    const { exec, env, name } = this.unit;
    const log = openUnitLog(this.hooks.runDir, name);
    let child: ChildProcess;
    try {
      child = spawn(exec[0]!, exec.slice(1), {
        detached: true, // setsid(): its own session and process group, so a stop reaches all its children
        stdio: ["ignore", log, log],
        env: { ...this.hooks.baseEnv, ...env, PAIO_UNIT: name },
      });
    } catch (e) {
      if (typeof log === "number") closeSync(log);
      this.onExit(null, null, `cannot start ${exec[0]}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return;
    }
    if (typeof log === "number") closeSync(log); // the child holds its own copy
    this.child = child;
    this.startedAt = Date.now();
    this.state = "running";
    child.once("error", (err: NodeJS.ErrnoException) => {
      // spawn failures (missing program, no permission) arrive here, before any exit
      if (this.child === child && child.pid === undefined) {
        this.child = undefined;
        this.onExit(null, null, `cannot start ${exec[0]}: ${err.code ?? err.message}`);
      }
    });
    child.once("exit", (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.onExit(code, signal, undefined);
    });
    if (child.pid !== undefined) {
      this.pid = child.pid;
      this.startTime = startTime(child.pid);
      this.hooks.changed(); // the state file first: whoever reads the line may look at it
      this.hooks.say(`${name}: started (pid ${child.pid})`);
    }
  }

  /** Takes over a process started by an earlier supervisor. */
  adopt(pid: number, start: number): void {
    this.pid = pid;
    this.startTime = start;
    this.state = "running";
    this.startedAt = Date.now();
    this.hooks.say(`${this.name}: adopted running process (pid ${pid})`);
    this.poller = setInterval(() => {
      if (startTime(pid) !== start) {
        clearInterval(this.poller);
        this.poller = undefined;
        this.onExit(null, null, undefined);
      }
    }, ADOPTED_POLL_MS);
  }

  private onExit(code: number | null, signal: string | null, startError: string | undefined): void {
    const ranMs = Date.now() - this.startedAt;
    this.pid = undefined;
    this.startTime = undefined;
    this.hooks.changed();
    if (this.state === "stopping") {
      this.state = "inactive";
      this.hooks.say(`${this.name}: stopped`);
      for (const w of this.stopWaiters.splice(0)) w();
      return;
    }
    const failed = startError !== undefined || signal !== null || code !== 0;
    const what = startError ?? describeExit(code, signal);
    const policy = this.unit.restart;
    if (policy === "never" || (policy === "on-failure" && !failed)) {
      this.state = "exited";
      this.hooks.say(`${this.name}: ${what}; not restarting (restart = "${policy}")`);
      return;
    }
    if (ranMs >= STABLE_RUN_MS) this.delay = RESTART_DELAY_FIRST_MS;
    const delay = this.delay;
    this.delay = Math.min(this.delay * 2, RESTART_DELAY_MAX_MS);
    this.state = "backoff";
    this.hooks.say(`${this.name}: ${what}; restarting in ${delay} ms`);
    this.timer = setTimeout(() => this.start(), delay);
  }

  /** Sends SIGTERM to the unit's process group, then SIGKILL after timeoutMs. */
  async stop(timeoutMs = 5000): Promise<void> {
    clearTimeout(this.timer);
    const pid = this.pid;
    if (this.state !== "running" || pid === undefined) {
      this.state = "inactive";
      return;
    }
    this.state = "stopping";
    const done = new Promise<void>((resolve) => this.stopWaiters.push(resolve));
    signalGroup(pid, "SIGTERM");
    const killTimer = setTimeout(() => {
      this.hooks.say(`${this.name}: did not stop within ${timeoutMs} ms; killing it`);
      signalGroup(pid, "SIGKILL");
    }, timeoutMs);
    await done;
    clearTimeout(killTimer);
    // Whatever the unit left behind in its process group goes too.
    signalGroup(pid, "SIGKILL");
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

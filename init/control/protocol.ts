// The supervisor's control protocol: JSON lines over the Unix socket
// /run/paio/control.sock. One request line gets one response line with the
// same id; `subscribe` turns the connection into a stream of events.
// This module is the single definition the CLI, the agent and the console use.

import { isLatencyNice, LATENCY_NICE_RANGE } from "../../lib/sched-latency.ts";

export const CONTROL_SOCKET = "/run/paio/control.sock";
/** A request line longer than this is refused (and the connection closed). */
export const MAX_REQUEST_BYTES = 64 * 1024;

export type UnitState = "inactive" | "starting" | "running" | "degraded" | "unhealthy" | "stopping" | "backoff" | "failed";

export interface LimitsInput {
  cpu_weight?: number;
  /** e.g. "50%" of one CPU, or null to remove the limit */
  cpu_max?: string | null;
  /** e.g. "128M", or null to remove the limit */
  memory_max?: string | null;
  pids_max?: number | null;
  /** cpu.latency.nice, -20..19, on a kernel with PAIO's scheduling patches; null gives the group back the unit file's latency_nice (or 0). */
  latency_nice?: number | null;
  /** cpu.uclamp.min in percent (0..100), on a kernel that has it; null resets it to 0. */
  uclamp_min?: number | null;
}

export type Request =
  | { id?: string | number; op: "list" }
  | { id?: string | number; op: "status"; unit: string }
  | { id?: string | number; op: "start" | "stop" | "restart"; unit: string }
  | { id?: string | number; op: "reload" }
  | { id?: string | number; op: "logs"; unit: string; lines?: number }
  | { id?: string | number; op: "set-limits"; unit: string; limits: LimitsInput }
  /**
   * Per-task settings on every task (thread) of a unit now, and on its main process at each later start:
   * `latency_nice`, the kernel's per-task latency hint (patched kernel only), and/or plain `nice`;
   * each -20..19, or null to go back to the unit file's latency_nice (or 0).
   */
  | { id?: string | number; op: "set-task-priority"; unit: string; latency_nice?: number | null; nice?: number | null }
  /** Freezes (or thaws) every process of a unit: the agent's "isolate" remedy. */
  | { id?: string | number; op: "freeze"; unit: string; frozen: boolean }
  /** Stops a unit and leaves it failed (with the reason) until started by hand. */
  | { id?: string | number; op: "mark-failed"; unit: string; reason: string }
  /** Moves a process that belongs to no unit into the quarantine group, frozen or limited. */
  | { id?: string | number; op: "contain"; pid: number; how: "freeze" | "limit" }
  /** Sends one of the signals a unit documents (the network unit: SIGHUP re-apply, SIGUSR1 renew, SIGUSR2 bounce links) to its main process. */
  | { id?: string | number; op: "signal"; unit: string; signal: UnitSignal }
  /** Replaces the ports a unit declares, until its file is reloaded ("8080/tcp"); the firewall follows. */
  | { id?: string | number; op: "set-ports"; unit: string; ports: string[] }
  | { id?: string | number; op: "subscribe"; logs?: string }
  /** A system unit (root) announces a change of state to every subscriber, e.g. the network unit's link events. */
  | { id?: string | number; op: "publish"; event: PublishedEvent };

export const UNIT_SIGNALS = ["SIGHUP", "SIGUSR1", "SIGUSR2"] as const;
export type UnitSignal = (typeof UNIT_SIGNALS)[number];

/** Events a system unit may publish; the name says who speaks. */
export const PUBLISHED_EVENTS = ["network"] as const;
export interface PublishedEvent {
  event: (typeof PUBLISHED_EVENTS)[number];
  /** What happened, e.g. "link-down", "address", "gateway-unreachable". */
  kind: string;
  /** One sentence for a person. */
  message: string;
  /** The interface or other subject it concerns. */
  subject?: string;
  time: number;
}
/** A published event is small: it is a notice, not a data channel. */
export const MAX_PUBLISHED_BYTES = 4096;

export type Op = Request["op"];
/** Operations a member of group `paio` may use; everything else needs root. */
export const READ_OPS: readonly Op[] = ["list", "status", "logs", "subscribe"];
export const ALL_OPS: readonly Op[] = ["list", "status", "start", "stop", "restart", "reload", "logs", "set-limits", "set-task-priority", "freeze", "mark-failed", "contain", "subscribe", "publish", "signal", "set-ports"];

export interface UnitSummary {
  name: string;
  description: string;
  state: UnitState;
  reason: string;
  pid?: number;
  since: number;
  restarts: number;
  /** Declared ports, "8080/tcp": open in the firewall while the unit runs. */
  ports: string[];
}

export interface UnitStatus extends UnitSummary {
  /** True while the unit's cgroup is frozen (its health checks pause meanwhile). */
  frozen: boolean;
  /** The last failed exits (up to 10, oldest first), each at the time of the state change it caused ("exited with status 3"). */
  exits?: { time: number; reason: string }[];
  exec: string[];
  restart: string;
  limits: { cpu_weight?: number; cpu_max?: string; memory_max?: number; pids_max?: number; latency_nice?: number; uclamp_min?: number };
  /** Unit file settings the agent reads. */
  latency_sensitive: boolean;
  /** The latency hint in force, read back from the kernel. */
  latency_hint?: LatencyHint;
  cgroup?: { memory_current?: number; pids_current?: number; cpu_usage_us?: number; oom_kills: number };
  health?: { type: string; last?: { result: string; latency_ms: number; at: number } };
}

export interface LatencyHint {
  /** What the kernel offers: "per-task" (sched_setattr and cpu.latency.nice), "cgroup" (cpu.latency.nice only), "none" (stock kernel). */
  kernel: "per-task" | "cgroup" | "none";
  /** The main process. */
  pid?: number;
  /** The main process's per-task hint, on a kernel that has it. */
  task?: number;
  /** The unit's cgroup's cpu.latency.nice, on a kernel that has it. */
  cgroup?: number;
  /** The main process's nice. */
  nice?: number;
  /** What the unit asks for per task: set by request, else its unit file's latency_nice. */
  wanted?: number;
}

/** What set-task-priority did. */
export interface TaskPriorityResult {
  unit: string;
  latency_nice?: number;
  nice?: number;
  /** Tasks changed now (0 for a unit that is not running: its next start gets them). */
  tasks: number;
  /** Why some tasks could not be changed. */
  failed: string[];
}

export interface ReloadResult {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
  errors: string[];
}

export interface UnitEvent {
  event: "unit";
  unit: string;
  from: UnitState;
  to: UnitState;
  reason: string;
  pid?: number;
  time: number;
}

export interface LogEvent {
  event: "log";
  unit: string;
  lines: string[];
}

export type ErrorCode = "bad-request" | "too-large" | "not-permitted" | "no-such-unit" | "failed";

export type Response =
  | { id?: string | number; ok: true; result: unknown }
  | { id?: string | number; ok: false; error: { code: ErrorCode; message: string } };

/**
 * Checks a parsed JSON value against the request shapes; returns the request
 * or a message that says what is wrong.
 */
export function validateRequest(v: unknown): { ok: true; req: Request } | { ok: false; message: string } {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { ok: false, message: "a request is a JSON object with an 'op' field" };
  const r = v as Record<string, unknown>;
  if (r.id !== undefined && typeof r.id !== "string" && typeof r.id !== "number") return { ok: false, message: "'id' must be a string or a number" };
  if (typeof r.op !== "string" || !(ALL_OPS as readonly string[]).includes(r.op)) {
    return { ok: false, message: `'op' must be one of ${ALL_OPS.join(", ")}` };
  }
  const needsUnit = ["status", "start", "stop", "restart", "logs", "set-limits", "set-task-priority", "freeze", "mark-failed", "signal", "set-ports"].includes(r.op);
  if (r.op === "set-ports" && (!Array.isArray(r.ports) || r.ports.length > 64 || !r.ports.every((p) => typeof p === "string" && /^\d{1,5}\/(tcp|udp)$/.test(p) && Number(p.split("/")[0]) >= 1 && Number(p.split("/")[0]) <= 65535))) {
    return { ok: false, message: "'set-ports' needs 'ports', at most 64 strings such as \"8080/tcp\" or \"5683/udp\"" };
  }
  if (r.op === "signal" && !(UNIT_SIGNALS as readonly unknown[]).includes(r.signal)) return { ok: false, message: `'signal' needs 'signal', one of ${UNIT_SIGNALS.join(", ")}` };
  if (needsUnit && (typeof r.unit !== "string" || r.unit.length === 0 || r.unit.length > 200)) return { ok: false, message: `'${r.op}' needs 'unit', a unit name` };
  if (r.op === "logs" && r.lines !== undefined && (typeof r.lines !== "number" || !Number.isInteger(r.lines) || r.lines < 1 || r.lines > 10000)) {
    return { ok: false, message: "'lines' must be a whole number from 1 to 10000" };
  }
  if (r.op === "set-task-priority") {
    if (r.latency_nice === undefined && r.nice === undefined) return { ok: false, message: "'set-task-priority' needs 'latency_nice' or 'nice' (or both)" };
    for (const k of ["latency_nice", "nice"] as const) {
      if (r[k] !== undefined && r[k] !== null && !isLatencyNice(r[k])) return { ok: false, message: `'${k}' must be ${LATENCY_NICE_RANGE}, or null` };
    }
  }
  if (r.op === "freeze" && typeof r.frozen !== "boolean") return { ok: false, message: "'freeze' needs 'frozen', true or false" };
  if (r.op === "mark-failed" && (typeof r.reason !== "string" || r.reason.length === 0 || r.reason.length > 500)) return { ok: false, message: "'mark-failed' needs 'reason', a string of at most 500 characters" };
  if (r.op === "contain") {
    if (typeof r.pid !== "number" || !Number.isInteger(r.pid) || r.pid < 2) return { ok: false, message: "'contain' needs 'pid', a process id above 1" };
    if (r.how !== "freeze" && r.how !== "limit") return { ok: false, message: "'how' must be 'freeze' or 'limit'" };
  }
  if (r.op === "subscribe" && r.logs !== undefined && typeof r.logs !== "string") return { ok: false, message: "'logs' must be a unit name" };
  if (r.op === "publish") {
    const e = r.event as Record<string, unknown> | undefined;
    if (typeof e !== "object" || e === null || Array.isArray(e)) return { ok: false, message: "'publish' needs 'event', an object" };
    if (!(PUBLISHED_EVENTS as readonly unknown[]).includes(e.event)) return { ok: false, message: `'event.event' must be one of ${PUBLISHED_EVENTS.join(", ")}` };
    if (typeof e.kind !== "string" || !/^[a-z][a-z0-9-]{0,39}$/.test(e.kind)) return { ok: false, message: "'event.kind' must be a short lower-case word such as \"link-down\"" };
    if (typeof e.message !== "string" || e.message.length > 500) return { ok: false, message: "'event.message' must be a string of at most 500 characters" };
    if (e.subject !== undefined && (typeof e.subject !== "string" || e.subject.length > 64)) return { ok: false, message: "'event.subject' must be a string of at most 64 characters" };
    if (typeof e.time !== "number" || !Number.isFinite(e.time)) return { ok: false, message: "'event.time' must be a time in milliseconds" };
    if (JSON.stringify(e).length > MAX_PUBLISHED_BYTES) return { ok: false, message: `'event' must be at most ${MAX_PUBLISHED_BYTES} bytes` };
  }
  if (r.op === "set-limits") {
    const l = r.limits;
    if (typeof l !== "object" || l === null || Array.isArray(l)) return { ok: false, message: "'set-limits' needs 'limits', an object" };
    const known = ["cpu_weight", "cpu_max", "memory_max", "pids_max", "latency_nice", "uclamp_min"];
    for (const [k, val] of Object.entries(l)) {
      if (!known.includes(k)) return { ok: false, message: `unknown limit '${k}'; known: ${known.join(", ")}` };
      const isNum = typeof val === "number" && Number.isFinite(val);
      if ((k === "cpu_max" || k === "memory_max") && !(val === null || typeof val === "string")) return { ok: false, message: `'${k}' must be a string such as ${k === "cpu_max" ? '"50%"' : '"128M"'}, or null` };
      if ((k === "cpu_weight" || k === "pids_max") && !(isNum || (val === null && k === "pids_max"))) return { ok: false, message: `'${k}' must be a number` };
      if (k === "latency_nice" && !(val === null || isLatencyNice(val))) return { ok: false, message: `'latency_nice' must be ${LATENCY_NICE_RANGE}, or null` };
      if (k === "uclamp_min" && !(val === null || (isNum && (val as number) >= 0 && (val as number) <= 100))) return { ok: false, message: "'uclamp_min' must be a percentage from 0 to 100, or null" };
    }
  }
  return { ok: true, req: r as unknown as Request };
}

// Unit files: TOML in /etc/paio/units/ and /var/lib/paio/units/; the unit's
// name is the file name without ".toml". Field names follow systemd where the
// meaning is the same. Parsing is a pure function from (text, path) to a unit
// or an error that names the file, the line and field, and what is expected.
// docs/units.md documents every field.

import { formatPort, parseCpuMax, parsePort, parseSize, type Port } from "../../lib/config/measure.ts";
import { bool, checkKeys, duration, FieldError, fieldLine, int, isTable, oneOf, parseTomlFile, str, stringArray, type Doc } from "../../lib/config/toml.ts";
import { isLatencyNice, LATENCY_NICE_RANGE } from "../../lib/sched-latency.ts";

export type RestartPolicy = "always" | "on-failure" | "never";
export type HealthType = "exec" | "tcp" | "http" | "file";

export interface HealthSpec {
  type: HealthType;
  /** exec: a command (argv); tcp: host:port; http: URL; file: path of the heartbeat file. */
  target: string | string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  graceMs: number;
}

export interface Limits {
  cpuWeight?: number;
  /** µs of CPU time per 100 ms period. */
  cpuMaxUs?: number;
  memoryMax?: number;
  pidsMax?: number;
  /** cpu.latency.nice (patched kernels only), set at run time (set-limits); the unit file's latency_nice is Unit.latencyNice. */
  latencyNice?: number;
  /** cpu.uclamp.min in percent (kernels with CONFIG_UCLAMP_TASK_GROUP), set at run time (set-limits). */
  uclampMin?: number;
}

export interface Unit {
  name: string;
  path: string;
  description: string;
  exec: string[];
  env: Record<string, string>;
  user?: string;
  after: string[];
  requires: string[];
  restart: RestartPolicy;
  restartDelayMs: number;
  restartDelayMaxMs: number;
  startLimit: { burst: number; intervalMs: number };
  health?: HealthSpec;
  limits: Limits;
  stop: { signal: NodeJS.Signals; timeoutMs: number };
  /** Wake-up latency matters more than throughput: the agent gives it the kernel's latency hint. */
  latencySensitive: boolean;
  /** The kernel's latency hint for the unit's processes, -20..19 (latency_nice): set on the main process when it starts, inherited by what it forks. */
  latencyNice?: number;
  /** Ports the unit listens on: the firewall opens them while it runs. */
  ports: Port[];
}

export type ParseResult = { ok: true; unit: Unit } | { ok: false; error: string };

export const UNIT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]*$/;
const TOP_FIELDS = [
  "description", "exec", "env", "user", "after", "requires", "restart", "restart_delay", "restart_delay_max",
  "start_limit", "health", "limits", "stop", "latency_sensitive", "latency_nice", "ports",
] as const;
const SECTION_FIELDS: Record<string, readonly string[]> = {
  start_limit: ["burst", "interval"],
  health: ["type", "target", "interval", "timeout", "retries", "grace"],
  limits: ["cpu_weight", "cpu_max", "memory_max", "pids_max"],
  stop: ["signal", "timeout"],
};
const RESTART_VALUES: RestartPolicy[] = ["always", "on-failure", "never"];
const HEALTH_TYPES: HealthType[] = ["exec", "tcp", "http", "file"];
const SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGKILL"];

export function unitNameOf(path: string): string {
  return (path.split("/").pop() ?? path).replace(/\.toml$/, "");
}

function section(doc: Doc, name: string): Doc {
  const v = doc[name];
  if (v === undefined) return {};
  if (!isTable(v)) throw new FieldError(name, `expected a table ([${name}] or ${name} = { ... })`);
  checkKeys(v, SECTION_FIELDS[name]!, `${name}.`);
  return v;
}

function parseHealth(h: Doc): HealthSpec | undefined {
  if (Object.keys(h).length === 0) return undefined;
  if (h.type === undefined) throw new FieldError("health.type", `missing; expected one of ${HEALTH_TYPES.map((x) => `"${x}"`).join(", ")}`);
  const type = oneOf(h.type, "health.type", HEALTH_TYPES);
  if (h.target === undefined) throw new FieldError("health.target", "missing; expected what to check (a command, host:port, URL or file path)");
  let target: string | string[];
  switch (type) {
    case "exec":
      target = typeof h.target === "string" ? ["/bin/sh", "-c", h.target] : stringArray(h.target, "health.target", '["/usr/bin/check"]');
      break;
    case "tcp":
      target = typeof h.target === "number" ? `127.0.0.1:${h.target}` : str(h.target, "health.target");
      if (!/^[^\s:]+:\d{1,5}$/.test(target)) throw new FieldError("health.target", `expected host:port or a port number, got ${JSON.stringify(h.target)}`);
      break;
    case "http":
      target = str(h.target, "health.target");
      if (!/^http:\/\/[^\s/]+/.test(target)) throw new FieldError("health.target", `expected an http:// URL, got ${JSON.stringify(h.target)}`);
      break;
    case "file":
      target = str(h.target, "health.target");
      if (!target.startsWith("/")) throw new FieldError("health.target", `expected an absolute file path, got ${JSON.stringify(h.target)}`);
      break;
  }
  const spec: HealthSpec = {
    type,
    target,
    intervalMs: h.interval === undefined ? 5000 : duration(h.interval, "health.interval"),
    timeoutMs: h.timeout === undefined ? 2000 : duration(h.timeout, "health.timeout"),
    retries: h.retries === undefined ? 3 : int(h.retries, "health.retries", 1, 100),
    graceMs: h.grace === undefined ? 10_000 : duration(h.grace, "health.grace"),
  };
  if (spec.timeoutMs >= spec.intervalMs) throw new FieldError("health.timeout", `must be shorter than health.interval (${h.interval ?? "5s"})`);
  return spec;
}

function parseLimits(l: Doc): Limits {
  const limits: Limits = {};
  if (l.cpu_weight !== undefined) limits.cpuWeight = int(l.cpu_weight, "limits.cpu_weight", 1, 10000);
  if (l.cpu_max !== undefined) {
    const q = typeof l.cpu_max === "string" ? parseCpuMax(l.cpu_max) : undefined;
    if (q === undefined) throw new FieldError("limits.cpu_max", `expected a percentage of one CPU such as "50%" or "150%", got ${JSON.stringify(l.cpu_max)}`);
    limits.cpuMaxUs = q;
  }
  if (l.memory_max !== undefined) {
    const b = typeof l.memory_max === "string" ? parseSize(l.memory_max) : typeof l.memory_max === "number" ? l.memory_max : undefined;
    if (b === undefined || b < 1024 * 1024) throw new FieldError("limits.memory_max", `expected a size of at least 1M such as "128M" or "1G", got ${JSON.stringify(l.memory_max)}`);
    limits.memoryMax = b;
  }
  if (l.pids_max !== undefined) limits.pidsMax = int(l.pids_max, "limits.pids_max", 1, 4_194_304);
  return limits;
}

function parseLatencyNice(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (!isLatencyNice(v)) throw new FieldError("latency_nice", `expected ${LATENCY_NICE_RANGE} (lower: woken sooner), e.g. latency_nice = -10; got ${JSON.stringify(v)}`);
  return v;
}

function parsePorts(v: unknown): Port[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new FieldError("ports", 'expected an array of ports, e.g. ports = [8080, "5683/udp"]');
  const ports: Port[] = [];
  for (const item of v) {
    const p = parsePort(item);
    if (!p) throw new FieldError("ports", `${JSON.stringify(item)} is not a port: expected a number from 1 to 65535, or "PORT/tcp" or "PORT/udp"`);
    if (ports.some((q) => formatPort(q) === formatPort(p))) throw new FieldError("ports", `${formatPort(p)} is listed twice`);
    ports.push(p);
  }
  return ports;
}

function parseDoc(doc: Doc, name: string, path: string): Unit {
  checkKeys(doc, TOP_FIELDS, "");
  if (doc.exec === undefined) throw new FieldError("exec", `missing; expected the command as an array of strings, e.g. exec = ["/usr/bin/app", "--flag"]`);
  const exec = stringArray(doc.exec, "exec", '["/usr/bin/app", "--flag"]');
  if (exec.length === 0 || exec[0] === "") throw new FieldError("exec", "empty; expected at least the program to run");
  const env = doc.env === undefined ? {} : doc.env;
  if (!isTable(env)) throw new FieldError("env", `expected a table of strings, e.g. env = { LOG_LEVEL = "info" }`);
  for (const [k, v] of Object.entries(env)) str(v, `env.${k}`);
  const deps = (field: string): string[] => {
    if (doc[field] === undefined) return [];
    const list = stringArray(doc[field], field, '["network", "mqtt-bridge"]');
    for (const d of list) if (!UNIT_NAME_RE.test(d)) throw new FieldError(field, `'${d}' is not a unit name`);
    return list;
  };
  const sl = section(doc, "start_limit");
  const stop = section(doc, "stop");
  const restartDelayMs = doc.restart_delay === undefined ? 200 : duration(doc.restart_delay, "restart_delay");
  const restartDelayMaxMs = doc.restart_delay_max === undefined ? 30_000 : duration(doc.restart_delay_max, "restart_delay_max");
  if (restartDelayMaxMs < restartDelayMs) throw new FieldError("restart_delay_max", "must not be shorter than restart_delay");
  return {
    name,
    path,
    description: doc.description === undefined ? "" : str(doc.description, "description"),
    exec,
    env: env as Record<string, string>,
    user: doc.user === undefined ? undefined : str(doc.user, "user"),
    after: deps("after"),
    requires: deps("requires"),
    restart: doc.restart === undefined ? "on-failure" : oneOf(doc.restart, "restart", RESTART_VALUES),
    restartDelayMs,
    restartDelayMaxMs,
    startLimit: {
      burst: sl.burst === undefined ? 5 : int(sl.burst, "start_limit.burst", 1, 1000),
      intervalMs: sl.interval === undefined ? 60_000 : duration(sl.interval, "start_limit.interval"),
    },
    health: parseHealth(section(doc, "health")),
    limits: parseLimits(section(doc, "limits")),
    stop: {
      signal: stop.signal === undefined ? "SIGTERM" : (oneOf(stop.signal, "stop.signal", SIGNALS) as NodeJS.Signals),
      timeoutMs: stop.timeout === undefined ? 10_000 : duration(stop.timeout, "stop.timeout"),
    },
    latencySensitive: doc.latency_sensitive === undefined ? false : bool(doc.latency_sensitive, "latency_sensitive"),
    latencyNice: parseLatencyNice(doc.latency_nice),
    ports: parsePorts(doc.ports),
  };
}

export function parseUnitFile(text: string, path: string): ParseResult {
  const name = unitNameOf(path);
  if (!UNIT_NAME_RE.test(name)) {
    return { ok: false, error: `${path}: bad unit name '${name}': use letters, digits, '_', '.', '@' and '-', starting with a letter or digit` };
  }
  const r = parseTomlFile(text, path, (doc) => parseDoc(doc, name, path), (field) => fieldLine(text, field.replace(/^env\..*/, "env")));
  return r.ok ? { ok: true, unit: r.value } : r;
}


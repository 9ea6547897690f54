// Unit files: TOML in /etc/paio/units/ and /var/lib/paio/units/; the unit's
// name is the file name without ".toml". Field names follow systemd where the
// meaning is the same. Parsing is a pure function from (text, path) to a unit
// or an error that names the file, the line and field, and what is expected.
// docs/units.md documents every field.

import { parseCpuMax, parseDuration, parseSize } from "./units-of-measure.ts";

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
  /** cpu.latency.nice (patched kernels only); set at run time by the agent, not in unit files. */
  latencyNice?: number;
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
}

export type ParseResult = { ok: true; unit: Unit } | { ok: false; error: string };

export const UNIT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]*$/;
const TOP_FIELDS = [
  "description", "exec", "env", "user", "after", "requires", "restart", "restart_delay", "restart_delay_max",
  "start_limit", "health", "limits", "stop", "latency_sensitive",
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

/**
 * Bun's TOML parser reports no line numbers. The first line that cannot be
 * part of a valid document is found by parsing growing prefixes: the error is
 * on the line after the longest prefix that still parses. A construct that
 * spans lines (a multi-line array) makes the prefixes inside it fail, but a
 * later complete prefix parses again, so the answer is still the right line.
 */
export function tomlErrorLine(text: string): number {
  const lines = text.split("\n");
  let lastGood = 0;
  for (let k = 1; k <= lines.length; k++) {
    try {
      Bun.TOML.parse(lines.slice(0, k).join("\n"));
      lastGood = k;
    } catch {
      // this prefix does not parse
    }
  }
  return Math.min(lastGood + 1, lines.length);
}

/** The line where `key` is set, inside `[section]` (or at the top), if it can be found. */
export function fieldLine(text: string, field: string): number | undefined {
  const [section, key] = field.includes(".") ? (field.split(".", 2) as [string, string]) : ["", field];
  const lines = text.split("\n");
  let current = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const header = /^\[\s*([A-Za-z0-9_.-]+)\s*\]/.exec(line);
    if (header) {
      current = header[1]!;
      continue;
    }
    const assign = new RegExp(`^${key}\\s*=`);
    const inline = new RegExp(`^${section}\\s*=.*\\b${key}\\s*=`);
    if ((current === section && assign.test(line)) || (section && current === "" && inline.test(line))) return i + 1;
  }
  return undefined;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      dp[i]![j] = Math.min(dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1, dp[i - 1]![j - 1]! + cost);
    }
  }
  return dp[a.length]![b.length]!;
}

/** The closest known name, if it is close enough to be a typo. */
export function suggest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export function unitNameOf(path: string): string {
  return (path.split("/").pop() ?? path).replace(/\.toml$/, "");
}

/** Thrown inside the parser; turned into the error text with file and line. */
class FieldError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

type Doc = Record<string, unknown>;

function isTable(v: unknown): v is Doc {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function stringArray(v: unknown, field: string, example: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new FieldError(field, `expected an array of strings, e.g. ${field.split(".").pop()} = ${example}`);
  return v;
}

function str(v: unknown, field: string): string {
  if (typeof v !== "string") throw new FieldError(field, `expected a string, got ${JSON.stringify(v)}`);
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") throw new FieldError(field, "must be true or false");
  return v;
}

function duration(v: unknown, field: string): number {
  const ms = typeof v === "string" ? parseDuration(v) : undefined;
  if (ms === undefined) throw new FieldError(field, `expected a duration such as "200ms", "10s", "5m", got ${JSON.stringify(v)}`);
  return ms;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new FieldError(field, `expected a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function oneOf<T extends string>(v: unknown, field: string, values: readonly T[]): T {
  if (typeof v !== "string" || !(values as readonly string[]).includes(v)) {
    throw new FieldError(field, `expected one of ${values.map((x) => `"${x}"`).join(", ")}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

function checkKeys(doc: Doc, known: readonly string[], prefix: string): void {
  for (const key of Object.keys(doc)) {
    if (!known.includes(key)) {
      const hint = suggest(key, known);
      throw new FieldError(prefix + key, `unknown field${hint ? ` (did you mean '${prefix}${hint}'?)` : ""}; known fields${prefix ? ` in [${prefix.slice(0, -1)}]` : ""}: ${known.join(", ")}`);
    }
  }
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
  };
}

export function parseUnitFile(text: string, path: string): ParseResult {
  const name = unitNameOf(path);
  if (!UNIT_NAME_RE.test(name)) {
    return { ok: false, error: `${path}: bad unit name '${name}': use letters, digits, '_', '.', '@' and '-', starting with a letter or digit` };
  }
  let doc: Doc;
  try {
    doc = Bun.TOML.parse(text) as Doc;
  } catch (e) {
    const msg = (e as Error).message.replace(/^TOML Parse error:\s*/i, "");
    return { ok: false, error: `${path} line ${tomlErrorLine(text)}: not valid TOML: ${msg}` };
  }
  try {
    return { ok: true, unit: parseDoc(doc, name, path) };
  } catch (e) {
    if (!(e instanceof FieldError)) throw e;
    const line = fieldLine(text, e.field.replace(/^env\..*/, "env"));
    return { ok: false, error: `${path}${line ? ` line ${line}` : ""} field '${e.field}': ${e.message}` };
  }
}

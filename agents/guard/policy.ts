// The policy file: /etc/paio/policy.toml, replaced as a whole by
// /var/lib/paio/policy.toml when that exists (so a device can be given its own
// policy without rebuilding the image). Errors name the file, line and field.
// docs/policy.md documents every field.

import { join } from "node:path";
import { readOptionalConfig } from "../../lib/config/read.ts";
import { tomlErrorLine } from "../../lib/config/toml.ts";
import { parseDuration } from "../../lib/config/measure.ts";
import { DEFAULT_THERMAL, type ThermalPolicy } from "../analyze/thermal.ts";
import { isToolName, type Risk } from "../tools/catalog.ts";
import type { Mode } from "../protocol.ts";

export interface Policy {
  /** Where it came from, for messages. */
  source: string;
  mode: Mode;
  /** Units the agent never changes alone, and a person changes only after confirming. */
  protectedUnits: string[];
  /** Risk levels the agent may act on alone in auto mode. */
  agentAlone: Risk[];
  /** Risk levels a person must confirm. */
  personConfirm: Risk[];
  /** Tools nobody may use. */
  forbidden: string[];
  /** Tools that always need a person's confirmation. */
  alwaysConfirm: string[];
  /** Listening ports that are expected (besides those open when the agent starts). */
  allowedPorts: number[];
  /** When the SoC counts as hot and what the agent does about it (docs/agent.md). */
  thermal: ThermalPolicy;
  /** A/B updates (docs/updates.md): how long a new version has, after it boots, to get every
   *  health-checked unit healthy and the agent running before it is rolled back. */
  update: { commitTimeoutMs: number };
  /** Set when the policy file could not be used: the agent then only proposes. */
  broken?: string;
}

export const DEFAULT_POLICY: Policy = {
  source: "built-in defaults",
  mode: "auto",
  protectedUnits: ["agent", "console", "qemu-exec"],
  agentAlone: ["none", "low", "medium"],
  personConfirm: ["high"],
  forbidden: [],
  alwaysConfirm: [],
  allowedPorts: [],
  thermal: DEFAULT_THERMAL,
  update: { commitTimeoutMs: 120_000 },
};

const RISKS: Risk[] = ["none", "low", "medium", "high"];
const MODES: Mode[] = ["auto", "advise", "off"];
const TOP = ["mode", "protected_units", "agent", "person", "tools", "ports", "thermal", "update"];
const SECTIONS: Record<string, string[]> = {
  agent: ["alone"],
  person: ["confirm"],
  tools: ["forbidden", "confirm"],
  ports: ["allowed"],
  thermal: ["hot_c", "trip_margin_c", "hot_for", "cool_margin_c", "cool_for", "cpu_cap_percent", "throttling"],
  update: ["commit_timeout"],
};

export class PolicyError extends Error {}

export function policyPaths(etc = process.env.PAIO_ETC_DIR ?? "/etc/paio", state = process.env.PAIO_STATE_DIR ?? "/var/lib/paio"): string[] {
  return [join(state, "policy.toml"), join(etc, "policy.toml")];
}

/** The first policy file that exists, parsed; the built-in defaults when none does. */
export function loadPolicy(paths = policyPaths()): Policy {
  for (const p of paths) {
    let text: string | undefined;
    try {
      text = readOptionalConfig(p);
    } catch (e) {
      throw new PolicyError((e as Error).message);
    }
    if (text !== undefined) return parsePolicy(text, p);
  }
  return DEFAULT_POLICY;
}

function lineOf(text: string, field: string): number {
  const key = field.split(".").pop()!;
  const i = text.split("\n").findIndex((l) => new RegExp(`^\\s*${key}\\s*=`).test(l));
  return i + 1;
}

export function parsePolicy(text: string, path: string): Policy {
  let doc: Record<string, unknown>;
  try {
    doc = Bun.TOML.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new PolicyError(`${path} line ${tomlErrorLine(text)}: not valid TOML (${(e as Error).message.replace(/^TOML Parse error:\s*/i, "")})`);
  }
  const fail = (field: string, msg: string): never => {
    const line = lineOf(text, field);
    throw new PolicyError(`${path}${line ? ` line ${line}` : ""} field '${field}': ${msg}`);
  };
  for (const k of Object.keys(doc)) if (!TOP.includes(k)) fail(k, `unknown field; known fields: ${TOP.join(", ")}`);
  const section = (name: string): Record<string, unknown> => {
    const v = doc[name];
    if (v === undefined) return {};
    if (typeof v !== "object" || v === null || Array.isArray(v)) return fail(name, `must be a table, e.g. [${name}]`);
    for (const k of Object.keys(v)) if (!SECTIONS[name]!.includes(k)) fail(`${name}.${k}`, `unknown field; known fields in [${name}]: ${SECTIONS[name]!.join(", ")}`);
    return v as Record<string, unknown>;
  };
  const strings = (v: unknown, field: string): string[] => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) return fail(field, 'must be an array of strings, e.g. ["camera"]');
    return v as string[];
  };
  const risks = (v: unknown, field: string, dflt: Risk[]): Risk[] => {
    if (v === undefined) return dflt;
    const list = strings(v, field);
    for (const r of list) if (!RISKS.includes(r as Risk)) fail(field, `'${r}' is not a risk level; use ${RISKS.join(", ")}`);
    return list as Risk[];
  };
  const tools = (v: unknown, field: string): string[] => {
    if (v === undefined) return [];
    const list = strings(v, field);
    for (const t of list) if (!isToolName(t)) fail(field, `'${t}' is not a tool; see docs/tools.md for the catalog`);
    return list;
  };
  let mode = DEFAULT_POLICY.mode;
  if (doc.mode !== undefined) {
    if (typeof doc.mode !== "string" || !MODES.includes(doc.mode as Mode)) fail("mode", `must be one of ${MODES.join(", ")}`);
    mode = doc.mode as Mode;
  }
  const agent = section("agent");
  const person = section("person");
  const t = section("tools");
  const ports = section("ports");
  let allowedPorts: number[] = [];
  if (ports.allowed !== undefined) {
    if (!Array.isArray(ports.allowed) || !ports.allowed.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) fail("ports.allowed", "must be an array of port numbers, e.g. [80, 443]");
    allowedPorts = ports.allowed as number[];
  }
  const th = section("thermal");
  const celsius = (key: string, min: number, max: number, dflt: number | undefined): number | undefined => {
    const v = th[key];
    if (v === undefined) return dflt;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) return fail(`thermal.${key}`, `must be a number of degrees Celsius from ${min} to ${max}, e.g. ${key === "hot_c" ? 75 : 5}`);
    return v;
  };
  const duration = (key: string, dflt: number): number => {
    const v = th[key];
    if (v === undefined) return dflt;
    const ms = typeof v === "string" ? parseDuration(v) : undefined;
    if (ms === undefined || ms < 1000 || ms > 24 * 3600_000) return fail(`thermal.${key}`, 'must be a duration from 1s to 24h such as "30s" or "2m"');
    return ms;
  };
  const cap = th.cpu_cap_percent;
  if (cap !== undefined && (typeof cap !== "number" || !Number.isInteger(cap) || cap < 2 || cap > 100000)) fail("thermal.cpu_cap_percent", "must be a whole number of percent of one core from 2 to 100000, e.g. 50");
  if (th.throttling !== undefined && typeof th.throttling !== "boolean") fail("thermal.throttling", "must be true or false");
  const thermal: ThermalPolicy = {
    hotC: celsius("hot_c", 30, 125, DEFAULT_THERMAL.hotC),
    tripMarginC: celsius("trip_margin_c", 0, 50, DEFAULT_THERMAL.tripMarginC)!,
    hotForMs: duration("hot_for", DEFAULT_THERMAL.hotForMs),
    coolMarginC: celsius("cool_margin_c", 0, 50, DEFAULT_THERMAL.coolMarginC)!,
    coolForMs: duration("cool_for", DEFAULT_THERMAL.coolForMs),
    cpuCapPercent: (cap as number | undefined) ?? DEFAULT_THERMAL.cpuCapPercent,
    throttling: (th.throttling as boolean | undefined) ?? DEFAULT_THERMAL.throttling,
  };
  const up = section("update");
  let commitTimeoutMs = DEFAULT_POLICY.update.commitTimeoutMs;
  if (up.commit_timeout !== undefined) {
    const ms = typeof up.commit_timeout === "string" ? parseDuration(up.commit_timeout) : undefined;
    if (ms === undefined || ms < 10_000 || ms > 3600_000) fail("update.commit_timeout", 'must be a duration from 10s to 1h such as "120s" or "5m"');
    commitTimeoutMs = ms!;
  }
  return {
    source: path,
    mode,
    protectedUnits: doc.protected_units === undefined ? DEFAULT_POLICY.protectedUnits : strings(doc.protected_units, "protected_units"),
    agentAlone: risks(agent.alone, "agent.alone", DEFAULT_POLICY.agentAlone),
    personConfirm: risks(person.confirm, "person.confirm", DEFAULT_POLICY.personConfirm),
    forbidden: tools(t.forbidden, "tools.forbidden"),
    alwaysConfirm: tools(t.confirm, "tools.confirm"),
    allowedPorts,
    thermal,
    update: { commitTimeoutMs },
  };
}

// The tool catalog: every action PAIO can take, whether the agent decides it or
// a person asks for it at the console, is one of these typed calls. The
// catalog is the contract between language understanding, the agent's planner,
// the guard and the UI: a call that does not validate against it never runs.

export type Effect = "read" | "change" | "dangerous";
/** How much harm a wrong call can do; the policy maps risk levels to who may act alone. */
export type Risk = "none" | "low" | "medium" | "high";

export type SlotType =
  | { kind: "unit" }
  | { kind: "number"; min: number; max: number; integer?: boolean }
  | { kind: "enum"; values: readonly string[] }
  /** Free text of printable characters, at most `max` bytes (a Wi-Fi network's name). */
  | { kind: "text"; max: number }
  /** A secret (a Wi-Fi passphrase): printable ASCII of min..max characters; never shown, logged or audited. */
  | { kind: "secret"; min: number; max: number }
  /** Where to fetch a file from (an update bundle): an absolute path on the device or an http(s) URL, at most `max` bytes. */
  | { kind: "location"; max: number };

export interface SlotSpec {
  name: string;
  type: SlotType;
  optional?: boolean;
  description: string;
}

export interface ToolSpec {
  name: string;
  description: string;
  slots: readonly SlotSpec[];
  effect: Effect;
  risk: Risk;
  /** What the call touches, in words a person reads in a confirmation prompt. */
  effects: readonly string[];
  /** Only the agent proposes this tool; the language model never produces it. */
  agentOnly?: boolean;
}

const unit: SlotSpec = { name: "unit", type: { kind: "unit" }, description: "a unit name" };

export const TOOLS = [
  {
    name: "system.status",
    description: "Show the health of the device: CPU, memory, disk, network, temperature",
    slots: [{ name: "focus", type: { kind: "enum", values: ["cpu", "memory", "disk", "network", "temperature"] }, optional: true, description: "one area to show" }],
    effect: "read", risk: "none", effects: [],
  },
  { name: "unit.list", description: "List the units and their states", slots: [], effect: "read", risk: "none", effects: [] },
  { name: "unit.status", description: "Show one unit's state, limits and resource use", slots: [unit], effect: "read", risk: "none", effects: [] },
  {
    name: "unit.logs",
    description: "Show the last lines of a unit's log",
    slots: [unit, { name: "lines", type: { kind: "number", min: 1, max: 10000, integer: true }, optional: true, description: "how many lines (default 20)" }],
    effect: "read", risk: "none", effects: [],
  },
  { name: "unit.start", description: "Start a unit", slots: [unit], effect: "change", risk: "low", effects: ["starts the unit's processes"] },
  { name: "unit.stop", description: "Stop a unit", slots: [unit], effect: "change", risk: "medium", effects: ["stops the unit; its service is unavailable until started"] },
  { name: "unit.restart", description: "Restart a unit", slots: [unit], effect: "change", risk: "low", effects: ["stops and starts the unit; a short interruption"] },
  {
    name: "unit.limit",
    description: "Limit a unit's CPU and/or memory",
    slots: [
      unit,
      { name: "cpu_percent", type: { kind: "number", min: 1, max: 100000, integer: true }, optional: true, description: "CPU limit, one core = 100" },
      { name: "memory_mb", type: { kind: "number", min: 4, max: 16 * 1024 * 1024, integer: true }, optional: true, description: "memory limit in MiB, 1 GB = 1024" },
    ],
    effect: "change", risk: "medium", effects: ["changes the unit's cgroup limits (cpu.max, memory.max)"],
  },
  {
    name: "unit.prioritize",
    description: "Give a unit higher or lower scheduling priority (a latency hint)",
    slots: [unit, { name: "level", type: { kind: "enum", values: ["high", "normal", "low"] }, description: "high, normal or low" }],
    effect: "change", risk: "low", effects: ["changes the unit's CPU weight and latency hint (per task and per group), or its tasks' nice and cpu.uclamp.min on a stock kernel"],
  },
  {
    name: "process.top",
    description: "Show the processes using the most CPU or memory",
    slots: [
      { name: "by", type: { kind: "enum", values: ["cpu", "memory"] }, description: "cpu or memory" },
      { name: "count", type: { kind: "number", min: 1, max: 100, integer: true }, optional: true, description: "how many (default 5)" },
    ],
    effect: "read", risk: "none", effects: [],
  },
  {
    name: "process.kill",
    description: "Kill a process",
    slots: [{ name: "pid", type: { kind: "number", min: 2, max: 4194304, integer: true }, description: "a process id" }],
    effect: "dangerous", risk: "high", effects: ["sends SIGKILL to the process; its work is lost"],
  },
  { name: "incident.list", description: "List recent incidents and what the agent did", slots: [], effect: "read", risk: "none", effects: [] },
  {
    name: "incident.explain",
    description: "Explain why the agent acted (on one unit, or the latest decision)",
    slots: [{ ...unit, optional: true }],
    effect: "read", risk: "none", effects: [],
  },
  {
    name: "agent.mode",
    description: "Set the agent's autonomy: auto (heal alone), advise (only propose), off",
    slots: [{ name: "mode", type: { kind: "enum", values: ["auto", "advise", "off"] }, description: "auto, advise or off" }],
    effect: "change", risk: "medium", effects: ["changes what the agent may do without asking"],
  },
  {
    name: "network.status",
    description: "Show the network: whether it is up, the addresses, Wi-Fi and time sync",
    slots: [{ name: "focus", type: { kind: "enum", values: ["address", "wifi", "time"] }, optional: true, description: "one part to show" }],
    effect: "read", risk: "none", effects: [],
  },
  {
    name: "network.wifi",
    description: "Connect to a Wi-Fi network with its passphrase",
    slots: [
      { name: "ssid", type: { kind: "text", max: 32 }, description: "the Wi-Fi network's name" },
      { name: "psk", type: { kind: "secret", min: 8, max: 63 }, description: "its passphrase, 8 to 63 characters" },
    ],
    effect: "change", risk: "high", effects: ["writes the Wi-Fi settings to /var/lib/paio/network.toml (the passphrase only as its derived key) and reconnects"],
  },
  {
    name: "network.open_port",
    description: "Open a port in the firewall for a unit, while it runs",
    slots: [unit, { name: "port", type: { kind: "number", min: 1, max: 65535, integer: true }, description: "a TCP port, 1 to 65535" }],
    effect: "change", risk: "high", effects: ["lets anyone on the network reach that port of the unit until it is stopped or reloaded"],
  },
  { name: "update.status", description: "Show the running version, both system slots and the last update event", slots: [], effect: "read", risk: "none", effects: [] },
  {
    name: "update.install",
    description: "Install an update bundle into the other system slot",
    slots: [{ name: "source", type: { kind: "location", max: 1024 }, description: "the bundle: an absolute path on the device or an http:// or https:// URL" }],
    effect: "dangerous", risk: "high",
    effects: ["writes the new version into the other system slot; the device runs it after the next reboot, and goes back by itself if it is not healthy"],
  },
  {
    name: "update.rollback",
    description: "Go back to the version in the other system slot",
    slots: [], effect: "dangerous", risk: "high",
    effects: ["the other system slot boots next; the running version stays until the reboot"],
  },
  { name: "power.reboot", description: "Reboot the device", slots: [], effect: "dangerous", risk: "high", effects: ["every service stops; the device restarts"] },
  { name: "power.poweroff", description: "Power the device off", slots: [], effect: "dangerous", risk: "high", effects: ["every service stops; the device stays off until powered on"] },
  { name: "help", description: "Say what PAIO can do", slots: [], effect: "read", risk: "none", effects: [] },
  { name: "none", description: "Out of scope or not understood: say so and do nothing", slots: [], effect: "read", risk: "none", effects: [] },

  // Remedies the agent's planner uses; a person reaches them through the
  // agent, not through language.
  { name: "unit.freeze", description: "Freeze a unit's processes (cgroup.freeze)", slots: [unit], effect: "change", risk: "medium", effects: ["the unit's processes stop running until thawed"], agentOnly: true },
  { name: "unit.thaw", description: "Thaw a frozen unit", slots: [unit], effect: "change", risk: "low", effects: ["the unit's processes run again"], agentOnly: true },
  {
    name: "unit.mark-failed",
    description: "Stop a unit and leave it failed until a person starts it",
    slots: [unit, { name: "reason", type: { kind: "enum", values: ["ladder-exhausted", "policy"] }, description: "why" }],
    effect: "change", risk: "medium", effects: ["stops the unit and keeps it down"], agentOnly: true,
  },
  {
    name: "unit.restore-cpu",
    description: "Give a unit back the CPU limit it had before the agent lowered it",
    slots: [unit, { name: "cpu_percent", type: { kind: "number", min: 0.1, max: 100000 }, optional: true, description: "the limit to give back, one core = 100; absent: no limit" }],
    effect: "change", risk: "low", effects: ["sets the unit's cpu.max back to what it was"], agentOnly: true,
  },
  { name: "network.renew", description: "Run DHCP (and Wi-Fi association) again on every interface", slots: [], effect: "change", risk: "low", effects: ["each interface asks for its address again; a second without one"], agentOnly: true },
  { name: "network.bounce", description: "Take every network link down and up again, then renew", slots: [], effect: "change", risk: "low", effects: ["every interface goes down for a moment"], agentOnly: true },
  {
    name: "process.contain",
    description: "Move a process that belongs to no unit into the quarantine group and limit or freeze it",
    slots: [
      { name: "pid", type: { kind: "number", min: 2, max: 4194304, integer: true }, description: "a process id" },
      { name: "how", type: { kind: "enum", values: ["freeze", "limit"] }, description: "freeze, or limit to a tenth of a CPU and 64 pids" },
    ],
    effect: "change", risk: "medium", effects: ["moves the process (and its children) into the quarantine cgroup"], agentOnly: true,
  },
] as const satisfies readonly ToolSpec[];

export type ToolName = (typeof TOOLS)[number]["name"];
export type SlotValue = string | number;
export type Args = Record<string, SlotValue>;

/** Who asked for a call: the agent's planner, a person, or the optional LLM backend. */
export type Origin = "agent" | "person" | "llm";

export interface ToolCall {
  tool: ToolName;
  args: Args;
  origin: Origin;
}

const BY_NAME = new Map<string, ToolSpec>(TOOLS.map((t) => [t.name, t]));

export function toolSpec(name: string): ToolSpec | undefined {
  return BY_NAME.get(name);
}

export function isToolName(name: string): name is ToolName {
  return BY_NAME.has(name);
}

/** Tools that language understanding may produce (everything but the agent's own remedies). */
export const PERSON_TOOLS: readonly ToolSpec[] = TOOLS.filter((t) => !("agentOnly" in t && t.agentOnly));

export type Validation = { ok: true; call: ToolCall } | { ok: false; error: string };

/**
 * Checks a call against the catalog: a known tool, known slots only, every
 * required slot present, values of the right type and range, and unit names
 * that exist (when the caller knows the units). Returns a copy with numbers
 * normalised, or an error a person can act on.
 */
export function validateCall(tool: string, args: Record<string, unknown>, origin: Origin, units?: readonly string[]): Validation {
  const spec = BY_NAME.get(tool);
  if (!spec) return { ok: false, error: `unknown tool '${tool}'` };
  if (spec.agentOnly && origin !== "agent") return { ok: false, error: `tool '${tool}' is used by the agent only` };
  const out: Args = {};
  for (const key of Object.keys(args)) {
    if (!spec.slots.some((s) => s.name === key)) {
      const known = spec.slots.map((s) => s.name);
      return { ok: false, error: `tool '${tool}' has no slot '${key}'${known.length ? `; its slots: ${known.join(", ")}` : "; it takes no slots"}` };
    }
  }
  for (const slot of spec.slots) {
    const v = args[slot.name];
    if (v === undefined || v === null || v === "") {
      if (!slot.optional) return { ok: false, error: `tool '${tool}' needs '${slot.name}' (${slot.description})` };
      continue;
    }
    const t = slot.type;
    if (t.kind === "number") {
      const n = typeof v === "number" ? v : typeof v === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : NaN;
      if (!Number.isFinite(n)) return { ok: false, error: `'${slot.name}' must be a number` };
      if (t.integer && !Number.isInteger(n)) return { ok: false, error: `'${slot.name}' must be a whole number` };
      if (n < t.min || n > t.max) return { ok: false, error: `'${slot.name}' must be from ${t.min} to ${t.max}` };
      out[slot.name] = n;
    } else if (t.kind === "text") {
      if (typeof v !== "string" || Buffer.byteLength(v) > t.max || /[\x00-\x1f\x7f]/.test(v)) return { ok: false, error: `'${slot.name}' must be text of at most ${t.max} bytes` };
      out[slot.name] = v;
    } else if (t.kind === "secret") {
      if (typeof v !== "string" || !new RegExp(`^[\\x20-\\x7e]{${t.min},${t.max}}$`).test(v)) return { ok: false, error: `'${slot.name}' must be ${t.min} to ${t.max} printable characters` };
      out[slot.name] = v;
    } else if (t.kind === "location") {
      const problem = typeof v === "string" ? locationProblem(v.trim(), t.max) : "must be text";
      if (problem) return { ok: false, error: `'${slot.name}' ${problem}` };
      out[slot.name] = (v as string).trim();
    } else if (t.kind === "enum") {
      if (typeof v !== "string" || !t.values.includes(v)) return { ok: false, error: `'${slot.name}' must be one of ${t.values.join(", ")}` };
      out[slot.name] = v;
    } else {
      if (typeof v !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/.test(v)) return { ok: false, error: `'${slot.name}' must be a unit name` };
      if (units && !units.includes(v)) return { ok: false, error: `no unit named '${v}'${units.length ? `; units: ${units.join(", ")}` : ""}` };
      out[slot.name] = v;
    }
  }
  if (tool === "unit.limit" && out.cpu_percent === undefined && out.memory_mb === undefined) {
    return { ok: false, error: "tool 'unit.limit' needs cpu_percent or memory_mb (or both)" };
  }
  return { ok: true, call: { tool: tool as ToolName, args: out, origin } };
}

/**
 * Why a location (where an update bundle is) cannot be used, or undefined when
 * it can: an absolute path without '..', or an http(s) URL with a host and no
 * user name or password (the location is shown and audited); never a control
 * character.
 */
export function locationProblem(v: string, max: number): string | undefined {
  const example = "for example /var/lib/paio/paio-0.3.1-x86_64.raucb or http://192.168.1.10:8000/paio.raucb";
  if (v === "") return `must be an absolute path on the device or an http:// or https:// URL (${example})`;
  if (Buffer.byteLength(v) > max) return `must be at most ${max} bytes long`;
  if (/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(v)) return "holds a control character; give the path or URL as plain text";
  if (/\s/.test(v)) return "must not contain spaces (rename the file, or write a space in a URL as %20)";
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(v)?.[1]?.toLowerCase();
  if (scheme !== undefined && !v.startsWith("/")) {
    if (scheme !== "http" && scheme !== "https") return `must be an http:// or https:// URL or an absolute path, not a ${scheme}: URL (${example})`;
    if (!/^https?:\/\/[^/?#\s]/i.test(v)) return `must be a URL of the form ${scheme}://HOST/PATH (${example})`;
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      return `is not a valid URL (${example})`;
    }
    if (url.username || url.password) return "must not carry a user name or password: the URL is shown and written to the audit log";
    if (!url.hostname) return `must name a host (${example})`;
    return undefined;
  }
  if (!v.startsWith("/")) return `must be an absolute path (starting with /) or an http:// or https:// URL (${example})`;
  if (v.split("/").includes("..")) return "must not contain '..': give the bundle's path as it is";
  if (v.endsWith("/")) return "names a folder: give the bundle file's path";
  return undefined;
}

export const HIDDEN = "********";

/** The call's arguments with every secret slot replaced: what may be shown, logged or audited. */
export function shownArgs(call: { tool: string; args: Args }): Args {
  const spec = BY_NAME.get(call.tool);
  const out: Args = {};
  for (const [k, v] of Object.entries(call.args)) out[k] = spec?.slots.find((s) => s.name === k)?.type.kind === "secret" ? HIDDEN : v;
  return out;
}

/** One line a person reads: "unit.restart unit=camera" (secrets hidden). */
export function describeCall(call: { tool: string; args: Args }): string {
  const args = Object.entries(shownArgs(call)).map(([k, v]) => `${k}=${v}`);
  return [call.tool, ...args].join(" ");
}

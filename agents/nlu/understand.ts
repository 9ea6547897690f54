// Language understanding: one utterance a person typed → the tool call it
// asks for, with its slots resolved against the live unit list, the model's
// confidence, whether the guard will want a confirmation, and one sentence
// to say back. Only the person's utterance is ever understood: text that
// comes from data (logs, unit descriptions, process names, model answers) is
// shown, never fed here.

import { DEFAULT_POLICY, type Policy } from "../guard/policy.ts";
import { decide } from "../guard/guard.ts";
import { loadModels, type Model } from "../models/runtime.ts";
import { trustedKeys } from "../models/manifest.ts";
import { describeCall, toolSpec, validateCall, type Args } from "../tools/catalog.ts";
import { FEATURES, featurize, modelWords } from "./features.ts";
import { INTENTS, vocabulary } from "./generator.ts";
import { findUnit, measures, nearUnits, tokens } from "./text.ts";
import { wifiWords, type WifiWords } from "./wifi.ts";
import { sourceWords } from "./source.ts";

export interface PlanStep {
  tool: string;
  args: Args;
  effect: string;
  risk: string;
}

export interface Understanding {
  intent: string;
  slots: Args;
  confidence: number;
  needs_confirmation: boolean;
  plan: PlanStep[];
  reply: string;
  /** Set when nothing should run: the reply asks the person to clarify. */
  clarify?: boolean;
}

/** Below this the understander asks instead of acting. */
export const MIN_CONFIDENCE = 0.6;
/** A tool that only reads changes nothing: a wrong guess costs no more than a question back, so a likely one is answered. */
export const MIN_CONFIDENCE_READ = 0.4;

const UNIT_TOOLS = new Set(["unit.status", "unit.logs", "unit.start", "unit.stop", "unit.restart", "unit.limit", "unit.prioritize", "network.open_port"]);

function has(t: string[], ...words: string[]): boolean {
  return words.some((w) => (w.includes(" ") ? ` ${t.join(" ")} `.includes(` ${w} `) : t.includes(w)));
}

/** The slots of an intent, from the tokens; or the question to ask when one is missing. */
export function slotsFor(intent: string, t: string[], units: readonly string[], wifi: WifiWords, source?: string): { slots: Args } | { ask: string } {
  const m = measures(t);
  const u = findUnit(t, units);
  const slots: Args = {};
  if (UNIT_TOOLS.has(intent) || intent === "incident.explain") {
    if (u && u.rivals.length) return { ask: `Did you mean ${[u.unit, ...u.rivals].join(" or ")}?` };
    if (u) slots.unit = u.unit;
    else if (intent !== "incident.explain") {
      const near = nearUnits(t, units);
      if (near.length) return { ask: `Which unit: ${near.join(" or ")}?` };
      return { ask: `Which unit? ${units.length ? `The units are: ${units.join(", ")}.` : "I know of no units."}` };
    }
  }
  switch (intent) {
    case "system.status": {
      // Heat first: "cpu temp" and "how hot is the processor" ask about the temperature.
      const focus = has(t, "temperature", "temperatures", "temp", "temps", "hot", "warm", "heat", "overheating", "overheat", "thermal", "thermals", "degrees", "celsius", "cooling")
        ? "temperature"
        : has(t, "cpu", "cpus", "processor", "load", "cores") ? "cpu"
        : has(t, "memory", "ram", "mem", "swap") ? "memory"
        : has(t, "disk", "disks", "storage", "space", "sd", "card", "filesystem", "drive", "emmc", "flash") ? "disk"
        : has(t, "network", "net", "wifi", "traffic", "bandwidth", "throughput") ? "network"
        : undefined;
      if (focus) slots.focus = focus;
      break;
    }
    case "unit.logs":
      if (m.plain[0] !== undefined) slots.lines = m.plain[0];
      break;
    case "network.status": {
      const focus = has(t, "ip", "ips", "ipv4", "ipv6", "address", "addr", "addresses", "mac", "dhcp") ? "address"
        : has(t, "wifi", "wi-fi", "wireless", "signal", "wlan", "ssid", "wlan0") ? "wifi"
        : has(t, "clock", "time", "ntp", "synced", "synchronised", "synchronized", "sync", "date", "chrony") ? "time"
        : undefined;
      if (focus) slots.focus = focus;
      break;
    }
    case "network.wifi":
      if (!wifi.ssid || !wifi.psk) return { ask: 'Which Wi-Fi network, and its password? For example: connect to wifi HOME with password "the passphrase".' };
      slots.ssid = wifi.ssid;
      slots.psk = wifi.psk;
      break;
    case "update.install":
      if (!source) return { ask: "Where is the update? Give the bundle's full path on the device or an http:// URL, for example: install the update from /var/lib/paio/paio-0.3.1-x86_64.raucb." };
      slots.source = source;
      break;
    case "network.open_port":
      if (m.plain[0] === undefined) return { ask: `Which port should be open for ${slots.unit}? For example: open port 8080 for ${slots.unit}.` };
      slots.port = m.plain[0];
      break;
    case "unit.limit": {
      let cpu = m.cpuPercent;
      let mem = m.memoryMb;
      // A bare number after "cpu ... at 50" or "memory ... 256".
      if (cpu === undefined && mem === undefined && m.plain[0] !== undefined) {
        if (has(t, "memory", "ram", "mem")) mem = m.plain[0];
        else if (has(t, "cpu", "processor")) cpu = m.plain[0];
      }
      if (cpu !== undefined) slots.cpu_percent = Math.round(cpu);
      if (mem !== undefined) slots.memory_mb = Math.round(mem);
      if (cpu === undefined && mem === undefined) return { ask: `How much may ${slots.unit} use? For example "half a CPU" or "256 MB".` };
      break;
    }
    case "unit.prioritize": {
      const low = has(t, "low", "lower", "lowest", "less", "deprioritize", "deprioritise", "demote", "reduce", "drop", "can wait", "not important", "isnt important", "is not important", "unimportant", "background", "slower", "last", "least", "nice", "bottom", "back of", "behind", "end of the queue");
      const normal = has(t, "normal", "reset", "restore", "default", "usual", "regular", "back to");
      slots.level = normal ? "normal" : low ? "low" : "high";
      break;
    }
    case "process.top":
      slots.by = has(t, "memory", "ram", "mem") ? "memory" : "cpu";
      if (m.plain[0] !== undefined) slots.count = m.plain[0];
      break;
    case "process.kill":
      if (m.plain[0] === undefined) return { ask: "Which process? Give its number (pid); 'top processes' lists them." };
      // The last number: "kill -9 3141" names process 3141, not 9.
      slots.pid = m.plain[m.plain.length - 1]!;
      break;
    case "agent.mode": {
      const advise = has(t, "advise", "advisory", "suggest", "suggestions", "propose", "proposals", "recommend", "recommendations", "only", "ask me", "ask first", "asking me", "approve", "approval", "permission", "confirm", "let me decide", "hands off", "manual", "manually", "check with me");
      const stop = has(t, "stop", "dont", "do not", "no more", "never", "quit", "cease");
      const acting = has(t, "heal", "healing", "fix", "fixing", "act", "acting", "repair", "repairing", "remedies", "actions", "touch", "change", "changes", "anything");
      const auto = has(t, "auto", "automatic", "automatically", "autopilot", "on your own", "by yourself", "yourself", "alone", "autonomy", "autonomous", "autonomously", "without asking", "take over", "resume", "enable", "turn on", "switch on", "on", "heal", "fix things");
      const off = has(t, "off", "disable", "deactivate", "pause", "shut", "stop the agent", "kill the agent", "silence");
      // "stop healing on your own", "turn off automatic healing": the agent still watches and proposes.
      const mode = advise || (stop && (acting || auto) && !has(t, "stop the agent")) || (off && (acting || has(t, "automatic", "automatically")) && !has(t, "agent")) ? "advise"
        : off || stop ? "off"
        : auto ? "auto"
        : undefined;
      if (!mode) return { ask: "Which mode: auto (heal alone), advise (only propose) or off?" };
      slots.mode = mode;
      break;
    }
  }
  return { slots };
}

function replyFor(intent: string, slots: Args, needsConfirmation: boolean): string {
  const u = slots.unit;
  const base: Record<string, string> = {
    "system.status": slots.focus ? `Here is the ${slots.focus} status.` : "Here is how the device is doing.",
    "unit.list": "Here are the units.",
    "unit.status": `Here is the status of ${u}.`,
    "unit.logs": `Here are the last ${slots.lines ?? 20} lines of ${u}'s log.`,
    "unit.start": `Starting ${u}.`,
    "unit.stop": `Stopping ${u}.`,
    "unit.restart": `Restarting ${u}.`,
    "unit.limit": `Limiting ${u} to ${[slots.cpu_percent !== undefined ? `${slots.cpu_percent}% of a CPU` : "", slots.memory_mb !== undefined ? `${slots.memory_mb} MB of memory` : ""].filter(Boolean).join(" and ")}.`,
    "unit.prioritize": `Giving ${u} ${slots.level} priority.`,
    "process.top": `Here are the processes using the most ${slots.by === "memory" ? "memory" : "CPU"}.`,
    "process.kill": `Killing process ${slots.pid}.`,
    "incident.list": "Here are the recent incidents.",
    "incident.explain": u ? `Here is what happened to ${u}, from the audit log.` : "Here are my latest decisions, from the audit log.",
    "agent.mode": `Setting the agent to ${slots.mode} mode.`,
    "network.status": slots.focus === "address" ? "Here are the addresses." : slots.focus === "wifi" ? "Here is the Wi-Fi." : slots.focus === "time" ? "Here is the time sync." : "Here is the network.",
    "network.wifi": `Connecting to Wi-Fi '${slots.ssid}'.`,
    "network.open_port": `Opening port ${slots.port} for ${u}.`,
    "update.status": "Here is the update status: the running version and the other slot.",
    "update.install": `Installing the update from ${slots.source} into the other system slot.`,
    "update.rollback": "Going back to the version in the other system slot.",
    "power.reboot": "Rebooting the device.",
    "power.poweroff": "Powering the device off.",
    help: "Here is what I can do.",
  };
  const text = base[intent] ?? "";
  return needsConfirmation ? `${text.replace(/\.$/, "")}? This needs your confirmation (yes/no).` : text;
}

export class Understander {
  private constructor(private model: Model, readonly policy: Policy) {}

  /** Loads the intent model, verified against the signed manifest. */
  static async load(modelsDir: string, keysDir: string, policy: Policy = DEFAULT_POLICY): Promise<Understander> {
    // No rule can stand in for language: a slow call is waited for, never dropped.
    const { models, statuses } = await loadModels(modelsDir, trustedKeys([keysDir]), { intent: FEATURES }, 1, Infinity);
    const m = models.get("intent");
    if (!m) throw new Error(`the language model cannot be used: ${statuses[0]?.reason ?? "unknown reason"}${statuses[0]?.state === "missing" ? " (run 'make models')" : ""}`);
    return new Understander(m, policy);
  }

  get timing(): { p50?: number; p99?: number } {
    return { p50: this.model.percentile(0.5), p99: this.model.percentile(0.99) };
  }

  async understand(utterance: string, units: readonly string[]): Promise<Understanding> {
    const text = utterance.slice(0, 500);
    // A Wi-Fi name and passphrase become placeholders for the model; the values go to the slots.
    const wifi = wifiWords(text);
    // A path or URL (where an update is) becomes a placeholder too; its value goes to the slot.
    const where = sourceWords(wifi.model);
    const t = tokens(where.model);
    if (t.length === 0) return { intent: "none", slots: {}, confidence: 1, needs_confirmation: false, plan: [], reply: "Say 'help' to see what I can do.", clarify: true };
    const u = findUnit(t, units);
    const probs = await this.model.run([featurize(modelWords(t, u))], FEATURES);
    if (!probs) throw new Error(`the language model failed: ${this.model.reason}`);
    let best = 0;
    for (let i = 1; i < INTENTS.length; i++) if (probs[i]! > probs[best]!) best = i;
    const intent = INTENTS[best]!;
    let confidence = +probs[best]!.toFixed(3);
    // A fuzzy unit name lowers confidence a little: "camra" is probably, not certainly, camera.
    if (u && u.distance > 0) confidence = +(confidence * (1 - 0.02 * u.distance)).toFixed(3);
    if (intent === "none") return { intent, slots: {}, confidence, needs_confirmation: false, plan: [], reply: "That is outside what I can do, so I did nothing. I can show the device's status, units, logs and incidents, start, stop, restart, limit or prioritise units, and more: say 'help'." };
    if (confidence < (toolSpec(intent)?.effect === "read" ? MIN_CONFIDENCE_READ : MIN_CONFIDENCE)) {
      const order = [...INTENTS.keys()].sort((a, b) => probs[b]! - probs[a]!).slice(0, 2).map((i) => toolSpec(INTENTS[i]!)?.description.toLowerCase() ?? INTENTS[i]);
      return { intent, slots: {}, confidence, needs_confirmation: false, plan: [], reply: `I am not sure what you mean. Did you want to ${order.join(", or to ")}? Please say it another way.`, clarify: true };
    }
    if ((intent === "power.reboot" || intent === "power.poweroff") && !u) {
      // "restart cam" where cam is almost a unit's name: a unit was meant more likely than the device.
      // Words the model knows ("when you get a minute") are not taken for a unit's name misspelled.
      const near = nearUnits(t.filter((w) => !vocabulary().has(w)), units);
      if (near.length) return { intent, slots: {}, confidence, needs_confirmation: false, plan: [], reply: `Did you mean ${near.join(" or ")} (a unit), or the whole device? Please say which.`, clarify: true };
    }
    const s = slotsFor(intent, t, units, wifi, where.source);
    if ("ask" in s) return { intent, slots: {}, confidence, needs_confirmation: false, plan: [], reply: s.ask, clarify: true };
    const v = validateCall(intent, s.slots, "person", units);
    if (!v.ok) return { intent, slots: s.slots, confidence, needs_confirmation: false, plan: [], reply: `I cannot do that: ${v.error}.`, clarify: true };
    const spec = toolSpec(intent)!;
    const needs = decide(v.call, this.policy, this.policy.mode).verdict === "confirm";
    return {
      intent,
      slots: v.call.args,
      confidence,
      needs_confirmation: needs,
      plan: [{ tool: intent, args: v.call.args, effect: spec.effect, risk: spec.risk }],
      reply: replyFor(intent, v.call.args, needs),
    };
  }
}

export { describeCall };

// First-boot settings, the common part: what an import would do (a plan of
// checked settings, and the problems found), whichever files they came from
// (PAIO's paio-config.toml or the cloud-init files Raspberry Pi Imager
// writes). The flashing tool makes the same plan from what it is about to
// write and refuses to write when it has a problem; the device applies it.

import { HOSTNAME_RE, IFACE_NAME_RE } from "../config/network.ts";

/** The files on the boot partition, by their name there. */
export const CONFIG_FILE = "paio-config.toml";
export const UNITS_DIR = "paio-units";
export const POLICY_FILE = "paio-policy.toml";
export const USER_DATA = "user-data";
export const NETWORK_CONFIG = "network-config";

/** The interface a Wi-Fi network given without one is joined on, and the wired one for a static address. */
export const DEFAULT_WIFI_IFACE = "wlan0";
export const DEFAULT_WIRED_IFACE = "eth0";

export type PartName = "file" | "hostname" | "timezone" | "ssh" | "network" | "unit" | "policy";

export interface Problem {
  part: PartName;
  /** The file on the boot partition it concerns. */
  file: string;
  /** What is wrong and what to do; names the file, and the line where it is known. */
  message: string;
}

export interface WifiKey {
  iface: string;
  ssid: string;
  pskHex: string;
}

export type Setting =
  | { part: "hostname"; file: string; value: string }
  | { part: "timezone"; file: string; value: string }
  | { part: "ssh"; file: string; keys: string[] }
  /** The device's whole network.toml, Wi-Fi keys already derived (no passphrase in it). */
  | { part: "network"; file: string; text: string; wifi: WifiKey[]; describe: string }
  | { part: "unit"; file: string; name: string; text: string }
  | { part: "policy"; file: string; text: string };

export interface Plan {
  settings: Setting[];
  problems: Problem[];
  /** What was seen and not used, for a person (never an error). */
  notes: string[];
}

export function emptyPlan(): Plan {
  return { settings: [], problems: [], notes: [] };
}

/** What the device already knows that a plan may use. */
export interface PlanContext {
  /** The derived key of a Wi-Fi network whose key was removed from the boot partition after an earlier import. */
  knownKey?: (ssid: string) => string | undefined;
  /** The text new network settings from Imager are merged into (the device's network.toml, else the image's). */
  baseNetwork?: string;
}

export const HOSTNAME_RULE = "letters, digits and '-', at most 63 characters, not starting or ending with '-'";

/** The host name, or an error saying what a host name is. */
export function checkHostname(v: unknown): { ok: true; value: string } | { ok: false; error: string } {
  if (typeof v !== "string") return { ok: false, error: `expected a string such as "cam-01", got ${JSON.stringify(v)}` };
  if (!HOSTNAME_RE.test(v)) return { ok: false, error: `'${v.slice(0, 80)}' is not a host name: ${HOSTNAME_RULE}` };
  return { ok: true, value: v };
}

/** A time zone of the IANA database (as Bun's ICU knows it), canonical; an error otherwise. */
export function checkTimezone(v: unknown): { ok: true; value: string } | { ok: false; error: string } {
  if (typeof v !== "string") return { ok: false, error: `expected a time zone name such as "Europe/Berlin", got ${JSON.stringify(v)}` };
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/.test(v) || v.length > 64) {
    return { ok: false, error: `'${v.slice(0, 80)}' is not a time zone name; use one such as "Europe/Berlin", "America/New_York" or "UTC"` };
  }
  try {
    const zone = new Intl.DateTimeFormat("en", { timeZone: v }).resolvedOptions().timeZone;
    return { ok: true, value: zone };
  } catch {
    return { ok: false, error: `'${v}' is not a time zone this device knows; use a name of the IANA time zone database such as "Europe/Berlin" or "UTC"` };
  }
}

/**
 * network.toml text with the section [interface.NAME] replaced by `lines`
 * (added at the end when there is none); everything else is kept.
 */
export function setInterface(text: string, iface: string, lines: string[]): string {
  if (!IFACE_NAME_RE.test(iface)) throw new Error(`not an interface name: ${iface}`);
  const out: string[] = [];
  let skipping = false;
  for (const line of text.split("\n")) {
    const header = /^\s*\[\s*interface\.("?)([^"\]]+)\1\s*\]/.exec(line);
    if (header) skipping = header[2] === iface;
    else if (/^\s*\[/.test(line)) skipping = false;
    if (!skipping) out.push(line);
  }
  while (out.length && out[out.length - 1]!.trim() === "") out.pop();
  out.push("", `[interface.${iface}]`, ...lines, "");
  return out.join("\n");
}

/** network.toml text as the [network] part of paio-config.toml: top-level keys under [network], tables under network.X. */
export function nestNetwork(text: string): string {
  const out = ["[network]"];
  for (const line of text.split("\n")) {
    const m = /^(\s*)(\[\[?)\s*(.*)$/.exec(line);
    out.push(m ? `${m[1]}${m[2]}network.${m[3]}` : line);
  }
  while (out.length && out[out.length - 1]!.trim() === "") out.pop();
  return `${out.join("\n")}\n`;
}

/**
 * The [network] part of paio-config.toml as network.toml text, every line
 * where it was (other lines left blank), so an error's line number is the
 * line in paio-config.toml. Undefined when the tables are written in a way
 * this cannot follow (dotted keys or an inline table at the top).
 */
export function extractNetwork(text: string, parsed: unknown): string | undefined {
  const out: string[] = [];
  let inside = false;
  for (const line of text.split("\n")) {
    const header = /^\s*(\[\[?)\s*([^\]]*?)\s*(\]\]?)\s*(#.*)?$/.exec(line);
    if (header) {
      const name = header[2]!;
      if (name === "network") {
        inside = true;
        out.push("");
      } else if (/^network\s*\./.test(name)) {
        inside = true;
        out.push(`${header[1]}${name.replace(/^network\s*\.\s*/, "")}${header[3]}`);
      } else {
        inside = false;
        out.push("");
      }
      continue;
    }
    out.push(inside ? line : "");
  }
  const result = out.join("\n");
  try {
    if (stableJson(Bun.TOML.parse(result)) !== stableJson(parsed)) return undefined;
  } catch {
    return undefined;
  }
  return result;
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (typeof v === "object" && v !== null) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** A TOML basic string. */
export function tomlString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

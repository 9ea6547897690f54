// paio-config.toml, PAIO's first-boot settings on the boot partition
// (docs/provisioning.md): [device] hostname and timezone, [ssh]
// authorized_keys, [network] (network.toml's own format, under network.),
// [units] files in paio-units/ and [policy] a policy file beside it. Every
// part is checked with the parser the running system uses for it; a bad part
// is a problem of its own and the other parts still apply.

import { parseNetworkFile, scrubPassphrases } from "../config/network.ts";
import { parsePublicKey } from "../config/ssh-key.ts";
import { checkKeys, FieldError, fieldLine, isTable, parseTomlFile, type Doc } from "../config/toml.ts";
import { parseUnitFile, UNIT_NAME_RE } from "../../init/supervisor/unit-file.ts";
import { parsePolicy } from "../../agents/guard/policy.ts";
import {
  checkHostname, checkTimezone, CONFIG_FILE, emptyPlan, extractNetwork, POLICY_FILE, UNITS_DIR,
  type Plan, type PlanContext, type WifiKey,
} from "./plan.ts";

const TOP = ["version", "device", "ssh", "network", "units", "policy"] as const;
const SECTIONS: Record<string, readonly string[]> = {
  device: ["hostname", "timezone"],
  ssh: ["authorized_keys"],
  units: ["files"],
  policy: ["file"],
};
export const UNIT_FILE_RE = new RegExp(`^${UNITS_DIR}/([A-Za-z0-9][A-Za-z0-9_.@-]*)\\.toml$`);
const POLICY_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*\.toml$/;

/** Reads a file beside paio-config.toml: its text, undefined when it is not there, or the reason it cannot be read. */
export type ReadBeside = (name: string) => { ok: true; text: string } | { ok: false; error: string } | undefined;

/** The structure of paio-config.toml, checked as a whole: wrong here, nothing of the file is used. */
interface Layout {
  doc: Doc;
  unitFiles: string[];
  policyFile?: string;
}

function layout(text: string, file: string): { ok: true; value: Layout } | { ok: false; error: string } {
  const long = longInvalidToml(text, file);
  if (long) return { ok: false, error: long };
  return parseTomlFile(text, file, (doc) => {
    checkKeys(doc, TOP, "");
    if (doc.version !== undefined && doc.version !== 1) throw new FieldError("version", `this device reads version 1 of ${CONFIG_FILE}; got ${JSON.stringify(doc.version)}`);
    for (const [name, known] of Object.entries(SECTIONS)) {
      const v = doc[name];
      if (v === undefined) continue;
      if (!isTable(v)) throw new FieldError(name, `expected a table: [${name}]`);
      checkKeys(v, known, `${name}.`);
    }
    if (doc.network !== undefined && !isTable(doc.network)) throw new FieldError("network", "expected a table: [network], with network.toml's fields under it");
    const units = doc.units as Doc | undefined;
    const unitFiles: string[] = [];
    if (units?.files !== undefined) {
      if (!Array.isArray(units.files) || !units.files.every((f) => typeof f === "string")) {
        throw new FieldError("units.files", `expected an array of file names, e.g. files = ["${UNITS_DIR}/camera.toml"]`);
      }
      for (const f of units.files as string[]) {
        if (!UNIT_FILE_RE.test(f)) throw new FieldError("units.files", `'${f.slice(0, 80)}' is not a unit file in ${UNITS_DIR}/: write "${UNITS_DIR}/NAME.toml" (NAME: letters, digits, '_', '.', '@', '-')`);
        if (unitFiles.some((u) => u.toLowerCase() === f.toLowerCase())) throw new FieldError("units.files", `'${f}' is listed twice (the boot partition ignores case)`);
        unitFiles.push(f);
      }
    }
    const policy = doc.policy as Doc | undefined;
    let policyFile: string | undefined;
    if (policy?.file !== undefined) {
      if (typeof policy.file !== "string" || !POLICY_NAME_RE.test(policy.file) || policy.file.toLowerCase() === CONFIG_FILE) {
        throw new FieldError("policy.file", `expected the name of a policy file beside ${CONFIG_FILE}, e.g. file = "${POLICY_FILE}"`);
      }
      policyFile = policy.file;
    }
    return { doc, unitFiles, policyFile };
  });
}

/**
 * Finding the line of a TOML error parses every prefix of the file, which
 * takes seconds for a long file: a long file that is not valid TOML is
 * refused without the line. Files written by hand or by `paio flash` are a
 * few dozen lines.
 */
const LINE_SEARCH_MAX_LINES = 300;

function longInvalidToml(text: string, file: string): string | undefined {
  if (text.split("\n").length <= LINE_SEARCH_MAX_LINES) return undefined;
  try {
    Bun.TOML.parse(text);
    return undefined;
  } catch (e) {
    return `${file}: not valid TOML (${(e as Error).message.replace(/^TOML Parse error:\s*/i, "")}); check it with a TOML checker, it is too long for this device to find the line`;
  }
}

/** "FILE line N field 'F': message" for a field of paio-config.toml. */
function at(text: string, file: string, field: string, message: string): string {
  const line = fieldLine(text, field);
  return `${file}${line ? ` line ${line}` : ""} field '${field}': ${message}`;
}

/**
 * The [network] part as the device's network.toml text: where an interface
 * names a Wi-Fi network and no key (it was taken off the boot partition after
 * an earlier import), the key the device kept is put back.
 */
function networkPart(text: string, file: string, net: Doc, ctx: PlanContext): { ok: true; text: string; wifi: WifiKey[]; describe: string } | { ok: false; error: string } {
  const extracted = extractNetwork(text, net);
  if (extracted === undefined) {
    return { ok: false, error: `${file}: write the network settings as tables, [network] then [network.wired] and [network.interface.NAME] (dotted keys such as network.hostname = or an inline network = { } are not read)` };
  }
  let body: string = extracted;
  // Keys put back shift the lines after them: error line numbers are mapped back to the file's.
  const inserted: number[] = [];
  const ifaces = isTable(net.interface) ? net.interface : {};
  for (const [name, t] of Object.entries(ifaces)) {
    if (!isTable(t) || typeof t.ssid !== "string" || t.psk !== undefined || t.psk_hex !== undefined) continue;
    const key = ctx.knownKey?.(t.ssid);
    if (!key) continue;
    const ls = body.split("\n");
    let inside = false;
    for (let i = 0; i < ls.length; i++) {
      const header = /^\s*\[\s*interface\.("?)([^"\]]+)\1\s*\]/.exec(ls[i]!);
      if (header) inside = header[2] === name;
      else if (/^\s*\[/.test(ls[i]!)) inside = false;
      else if (inside && /^\s*ssid\s*=/.test(ls[i]!)) {
        ls.splice(i + 1, 0, `psk_hex = "${key}"`);
        inserted.push(i + 2);
        break;
      }
    }
    body = ls.join("\n");
  }
  const parsed = parseNetworkFile(body, file);
  if (!parsed.ok) {
    const fixed = parsed.error
      .replace(/ line (\d+)/, (_, n: string) => ` line ${Number(n) - inserted.filter((x) => x <= Number(n)).length}`)
      .replace(/ field '/, " field 'network.");
    return { ok: false, error: fixed };
  }
  const cfg = parsed.config;
  const wifi = cfg.interfaces.filter((i) => i.wifi).map((i) => ({ iface: i.name, ssid: i.wifi!.ssid, pskHex: i.wifi!.pskHex }));
  // The passphrase never reaches the data partition: psk lines become the derived key.
  const lines = scrubPassphrases(body, cfg).split("\n");
  const clean = `# Network settings imported from ${file} on the boot partition (docs/provisioning.md).\n${lines.join("\n").replace(/\n{3,}/g, "\n\n").trim()}\n`;
  const parts = [
    ...cfg.interfaces.map((i) => `${i.name}: ${i.wifi ? `Wi-Fi '${i.wifi.ssid}', ` : ""}${i.address ? `${i.address}${i.gateway ? ` via ${i.gateway}` : ""}` : i.dhcp ? "DHCP" : "no address"}${i.dns.length ? `, DNS ${i.dns.join(" ")}` : ""}`),
    ...(cfg.wired ? [`other wired interfaces: ${cfg.wired.enabled ? (cfg.wired.dhcp ? "DHCP" : "up, no address") : "down"}`] : []),
  ];
  return { ok: true, text: clean, wifi, describe: parts.join("; ") || "defaults" };
}

/** Checks a unit file as the supervisor does. */
export function checkUnit(text: string, file: string): { ok: true; name: string } | { ok: false; error: string } {
  const long = longInvalidToml(text, file);
  if (long) return { ok: false, error: long };
  const r = parseUnitFile(text, file);
  return r.ok ? { ok: true, name: r.unit.name } : { ok: false, error: r.error };
}

/** Checks a policy file as the agent does. */
export function checkPolicy(text: string, file: string): { ok: true } | { ok: false; error: string } {
  const long = longInvalidToml(text, file);
  if (long) return { ok: false, error: long };
  try {
    parsePolicy(text, file);
    return { ok: true };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

/**
 * What paio-config.toml (text, as read from the boot partition) asks for,
 * checked part by part; `read` gives the files beside it.
 */
export function planConfig(text: string, read: ReadBeside, ctx: PlanContext = {}, file = CONFIG_FILE): Plan {
  const plan = emptyPlan();
  const l = layout(text, file);
  if (!l.ok) {
    plan.problems.push({ part: "file", file, message: `${l.error}; nothing in ${file} was applied` });
    return plan;
  }
  const { doc, unitFiles, policyFile } = l.value;
  const device = (doc.device ?? {}) as Doc;
  if (device.hostname !== undefined) {
    const h = checkHostname(device.hostname);
    if (h.ok) plan.settings.push({ part: "hostname", file, value: h.value });
    else plan.problems.push({ part: "hostname", file, message: at(text, file, "device.hostname", h.error) });
  }
  if (device.timezone !== undefined) {
    const z = checkTimezone(device.timezone);
    if (z.ok) plan.settings.push({ part: "timezone", file, value: z.value });
    else plan.problems.push({ part: "timezone", file, message: at(text, file, "device.timezone", z.error) });
  }
  const ssh = (doc.ssh ?? {}) as Doc;
  if (ssh.authorized_keys !== undefined) {
    const v = ssh.authorized_keys;
    if (!Array.isArray(v) || !v.every((k) => typeof k === "string")) {
      plan.problems.push({ part: "ssh", file, message: at(text, file, "ssh.authorized_keys", 'expected an array of public keys, e.g. authorized_keys = ["ssh-ed25519 AAAA... me@laptop"]') });
    } else {
      const keys: string[] = [];
      v.forEach((k: string, i) => {
        const p = parsePublicKey(k);
        if (p.ok) keys.push(p.line);
        else plan.problems.push({ part: "ssh", file, message: at(text, file, "ssh.authorized_keys", `key ${i + 1}: ${p.error}; the other keys were applied`) });
      });
      if (keys.length) plan.settings.push({ part: "ssh", file, keys });
    }
  }
  if (isTable(doc.network)) {
    const n = networkPart(text, file, doc.network, ctx);
    if (n.ok) plan.settings.push({ part: "network", file, text: n.text, wifi: n.wifi, describe: n.describe });
    else plan.problems.push({ part: "network", file, message: `${n.error}; the network settings were not applied` });
  }
  for (const u of unitFiles) {
    const r = read(u);
    if (r === undefined) {
      plan.problems.push({ part: "unit", file: u, message: `${u}: missing (${file} lists it under [units] files); copy it onto the boot partition or remove it from the list` });
      continue;
    }
    if (!r.ok) {
      plan.problems.push({ part: "unit", file: u, message: r.error });
      continue;
    }
    const c = checkUnit(r.text, u);
    if (c.ok) plan.settings.push({ part: "unit", file: u, name: c.name, text: r.text });
    else plan.problems.push({ part: "unit", file: u, message: `${c.error}; this unit was not installed` });
  }
  if (policyFile) {
    const r = read(policyFile);
    if (r === undefined) plan.problems.push({ part: "policy", file: policyFile, message: `${policyFile}: missing (${file} names it under [policy] file); copy it onto the boot partition or remove [policy]` });
    else if (!r.ok) plan.problems.push({ part: "policy", file: policyFile, message: r.error });
    else {
      const c = checkPolicy(r.text, policyFile);
      if (c.ok) plan.settings.push({ part: "policy", file: policyFile, text: r.text });
      else plan.problems.push({ part: "policy", file: policyFile, message: `${c.error}; the policy was not installed` });
    }
  }
  return plan;
}

/** Files a plan of paio-config.toml reads besides it (so their content counts in what was imported). */
export function filesBeside(text: string): string[] {
  const l = layout(text, CONFIG_FILE);
  if (!l.ok) return [];
  return [...l.value.unitFiles, ...(l.value.policyFile ? [l.value.policyFile] : [])];
}

export { UNIT_NAME_RE };

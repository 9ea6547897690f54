// The cloud-init NoCloud files Raspberry Pi Imager writes on the boot
// partition when a person customises the OS there: `user-data`
// (#cloud-config: hostname, timezone, users' and the top-level
// ssh_authorized_keys) and `network-config` (netplan version 2: wifis with
// access-points, ethernets, static addresses, name servers). They become the
// same settings as paio-config.toml's. PAIO has one login, root: the keys of
// every user in user-data may log in as root.

import { IFACE_NAME_RE, parseIpv4, parseNetworkFile, scrubPassphrases } from "../config/network.ts";
import { parsePublicKey } from "../config/ssh-key.ts";
import { checkHostname, checkTimezone, emptyPlan, NETWORK_CONFIG, setInterface, tomlString, USER_DATA, type Plan, type PlanContext, type WifiKey } from "./plan.ts";
import { isMap, parseYaml, YamlError, yamlBool, type YamlMap, type YamlValue } from "./yaml.ts";

/** The top-level user-data keys PAIO uses; the others are named in a note. */
const USED = ["hostname", "fqdn", "timezone", "users", "ssh_authorized_keys"];

function parse(text: string, file: string): { ok: true; value: YamlValue } | { ok: false; error: string } {
  try {
    return { ok: true, value: parseYaml(text) };
  } catch (e) {
    if (e instanceof YamlError) return { ok: false, error: `${file} line ${e.line}: ${e.message}` };
    throw e;
  }
}

/** The line a top-level key (or a list item's key) is on, for messages. */
function lineOf(text: string, key: string): number | undefined {
  const i = text.split(/\r?\n/).findIndex((l) => new RegExp(`^\\s*(-\\s+)?${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*:`).test(l));
  return i >= 0 ? i + 1 : undefined;
}

function where(text: string, file: string, key: string): string {
  const n = lineOf(text, key);
  return `${file}${n ? ` line ${n}` : ""}`;
}

/** A value of the file as a person reads it in an error: a section or a list is named, not printed (its map has no toString). */
function shown(v: YamlValue): string {
  if (Array.isArray(v)) return "a list";
  if (isMap(v)) return "a section of keys";
  return v === null ? "nothing" : `'${String(v)}'`;
}

/** user-data: host name, time zone and SSH keys. */
export function planUserData(text: string, file = USER_DATA): Plan {
  const plan = emptyPlan();
  const first = text.replace(/^\uFEFF/, "").split(/\r?\n/, 1)[0]!.trim();
  if (first !== "#cloud-config") {
    const what = first.startsWith("#!") ? "a script" : /^content-type:/i.test(first) ? "a MIME multipart file" : first.startsWith("## template") ? "a Jinja template" : "not #cloud-config";
    plan.problems.push({ part: "file", file, message: `${file} line 1: ${what}; this device reads only cloud-config files, whose first line is '#cloud-config'; nothing in ${file} was applied` });
    return plan;
  }
  const y = parse(text, file);
  if (!y.ok) {
    plan.problems.push({ part: "file", file, message: `${y.error}; nothing in ${file} was applied` });
    return plan;
  }
  if (y.value === null) return plan;
  if (!isMap(y.value)) {
    plan.problems.push({ part: "file", file, message: `${file}: expected keys such as 'hostname:' at the top level, found a list; nothing in ${file} was applied` });
    return plan;
  }
  const doc = y.value;
  let hostname = doc.hostname;
  if ((hostname === undefined || hostname === null) && typeof doc.fqdn === "string") hostname = doc.fqdn;
  if (typeof hostname === "string" && hostname.includes(".")) {
    plan.notes.push(`${file}: host name '${hostname}' is a domain name; the device takes its first label '${hostname.split(".")[0]}'`);
    hostname = hostname.split(".")[0]!;
  }
  if (hostname !== undefined && hostname !== null) {
    const h = checkHostname(hostname);
    if (h.ok) plan.settings.push({ part: "hostname", file, value: h.value });
    else plan.problems.push({ part: "hostname", file, message: `${where(text, file, doc.hostname !== undefined ? "hostname" : "fqdn")}: ${h.error}` });
  }
  if (doc.timezone !== undefined && doc.timezone !== null) {
    const z = checkTimezone(doc.timezone);
    if (z.ok) plan.settings.push({ part: "timezone", file, value: z.value });
    else plan.problems.push({ part: "timezone", file, message: `${where(text, file, "timezone")}: ${z.error}` });
  }
  const keys: string[] = [];
  const takeKeys = (v: YamlValue | undefined, what: string) => {
    if (v === undefined || v === null) return;
    if (!Array.isArray(v)) {
      plan.problems.push({ part: "ssh", file, message: `${where(text, file, "ssh_authorized_keys")}: ${what}: expected a list of public keys ('- ssh-ed25519 AAAA...')` });
      return;
    }
    v.forEach((k, i) => {
      const p = typeof k === "string" ? parsePublicKey(k) : { ok: false as const, error: "not a key line" };
      if (p.ok) {
        if (!keys.includes(p.line)) keys.push(p.line);
      } else plan.problems.push({ part: "ssh", file, message: `${where(text, file, "ssh_authorized_keys")}: ${what}, key ${i + 1}: ${p.error}; the other keys were applied` });
    });
  };
  takeKeys(doc.ssh_authorized_keys, "ssh_authorized_keys");
  if (doc.users !== undefined && doc.users !== null) {
    if (!Array.isArray(doc.users)) plan.problems.push({ part: "ssh", file, message: `${where(text, file, "users")}: expected a list of users ('- name: pi'); no user's keys were read` });
    else
      doc.users.forEach((u, i) => {
        if (u === "default" || typeof u === "string") return; // cloud-init's default user: nothing to read
        if (!isMap(u)) return;
        takeKeys(u.ssh_authorized_keys, `users[${i}] (${typeof u.name === "string" ? u.name : "no name"})`);
      });
  }
  if (keys.length) plan.settings.push({ part: "ssh", file, keys });
  const unused = Object.keys(doc).filter((k) => !USED.includes(k));
  if (unused.length) plan.notes.push(`${file}: not used on this device: ${unused.join(", ")}`);
  return plan;
}

const IFACE_KEYS = ["dhcp4", "dhcp6", "addresses", "gateway4", "routes", "nameservers", "optional", "access-points", "regulatory-domain", "renderer", "match", "set-name", "wakeonlan", "link-local", "mtu", "macaddress"];

function str(v: YamlValue | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** One interface of network-config as network.toml lines; throws a message. */
function ifaceLines(name: string, t: YamlMap, wifi: boolean, text: string, file: string, ctx: PlanContext, notes: string[]): string[] {
  const fail = (msg: string): never => {
    throw new Error(`${where(text, file, name)}: ${wifi ? "wifis" : "ethernets"}.${name}: ${msg}`);
  };
  const lines: string[] = [];
  for (const k of Object.keys(t)) if (!IFACE_KEYS.includes(k)) notes.push(`${file}: ${name}: '${k}' is not used on this device`);
  for (const k of ["match", "set-name", "dhcp6", "regulatory-domain", "wakeonlan", "link-local", "mtu", "macaddress"]) if (t[k] !== undefined) notes.push(`${file}: ${name}: '${k}' is not used on this device`);
  if (wifi) {
    const aps = t["access-points"];
    if (!isMap(aps) || Object.keys(aps).length === 0) fail("no access-points: name the network under access-points, with its password");
    const ssids = Object.keys(aps as YamlMap);
    if (ssids.length > 1) notes.push(`${file}: ${name}: only the first network ('${ssids[0]}') is joined; ${ssids.slice(1).map((s) => `'${s}'`).join(", ")} ignored`);
    const ssid = ssids[0]!;
    const ap = (aps as YamlMap)[ssid];
    const apMap = isMap(ap) ? ap : {};
    const auth = isMap(apMap.auth) ? apMap.auth : {};
    if (str(auth["key-management"]) && !/^(psk|sae|psk-sha256)$/i.test(str(auth["key-management"])!)) fail(`key-management '${str(auth["key-management"])}' is not supported; only WPA2/WPA3 personal networks with a password`);
    const password = str(apMap.password) ?? str(auth.password);
    if (yamlBool(apMap.hidden)) notes.push(`${file}: ${name}: '${ssid}' is marked hidden; the device finds a network only when it announces its name`);
    lines.push(`ssid = ${tomlString(ssid)}`);
    if (password === undefined) {
      const known = ctx.knownKey?.(ssid);
      if (!known) fail(`the network '${ssid}' has no password: open networks are not supported; add password: "..." under it`);
      lines.push(`psk_hex = "${known}"`);
    } else if (/^[0-9a-fA-F]{64}$/.test(password)) {
      // Imager writes the key it derived from the passphrase, never the passphrase itself.
      lines.push(`psk_hex = "${password.toLowerCase()}"`);
    } else {
      lines.push(`psk = ${tomlString(password)}`);
    }
  }
  const addresses = t.addresses;
  let address: string | undefined;
  if (addresses !== undefined && addresses !== null) {
    if (!Array.isArray(addresses)) fail("addresses: expected a list such as [192.0.2.10/24]");
    const v4 = (addresses as YamlValue[]).filter((a): a is string => typeof a === "string" && parseIpv4(a.split("/")[0]!) !== undefined);
    if ((addresses as YamlValue[]).length > v4.length) notes.push(`${file}: ${name}: only IPv4 addresses are used`);
    if (v4.length > 1) notes.push(`${file}: ${name}: only the first address (${v4[0]}) is used`);
    address = v4[0];
  }
  const dhcp = yamlBool(t.dhcp4);
  if (t.dhcp4 !== undefined && dhcp === undefined) fail(`dhcp4: expected true or false, got ${shown(t.dhcp4)}`);
  if (address) lines.push(`address = ${tomlString(address)}`, "dhcp = false");
  else lines.push(`dhcp = ${dhcp === false ? "false" : "true"}`);
  let gateway = str(t.gateway4);
  if (Array.isArray(t.routes)) {
    for (const r of t.routes) {
      if (isMap(r) && (r.to === "default" || r.to === "0.0.0.0/0") && typeof r.via === "string" && parseIpv4(r.via)) gateway ??= r.via;
    }
  }
  if (gateway && address) lines.push(`gateway = ${tomlString(gateway)}`);
  else if (gateway) notes.push(`${file}: ${name}: a gateway without a static address is not used (DHCP brings its own)`);
  const ns = isMap(t.nameservers) ? t.nameservers.addresses : undefined;
  if (Array.isArray(ns)) {
    const dns = ns.filter((a): a is string => typeof a === "string" && parseIpv4(a) !== undefined);
    if (dns.length) lines.push(`dns = [${dns.map(tomlString).join(", ")}]`);
  }
  return lines;
}

/**
 * network-config: the interfaces it names are set in the device's network
 * settings (ctx.baseNetwork, the device's or the image's), everything else
 * there is kept.
 */
export function planNetworkConfig(text: string, ctx: PlanContext = {}, file = NETWORK_CONFIG): Plan {
  const plan = emptyPlan();
  const y = parse(text, file);
  if (!y.ok) {
    plan.problems.push({ part: "file", file, message: `${y.error}; nothing in ${file} was applied` });
    return plan;
  }
  if (y.value === null) return plan;
  let doc = y.value;
  if (isMap(doc) && isMap(doc.network)) doc = doc.network;
  if (!isMap(doc)) {
    plan.problems.push({ part: "file", file, message: `${file}: expected 'version: 2' and 'wifis:' or 'ethernets:' at the top; nothing in ${file} was applied` });
    return plan;
  }
  if (isMap(doc.config) || doc.config === "disabled") return plan;
  if (doc.version !== "2") {
    plan.problems.push({ part: "network", file, message: `${where(text, file, "version")}: version ${doc.version === undefined ? "missing" : typeof doc.version === "string" ? shown(doc.version) : `is ${shown(doc.version)}`}: this device reads network-config version 2 (netplan); write 'version: 2'` });
    return plan;
  }
  for (const k of Object.keys(doc)) if (!["version", "wifis", "ethernets", "renderer"].includes(k)) plan.notes.push(`${file}: '${k}' is not used on this device`);
  let net = ctx.baseNetwork ?? "";
  const named: string[] = [];
  try {
    for (const [group, isWifi] of [["ethernets", false], ["wifis", true]] as const) {
      const g = doc[group];
      if (g === undefined || g === null) continue;
      if (!isMap(g)) throw new Error(`${where(text, file, group)}: ${group}: expected interfaces by name, e.g. '${isWifi ? "wlan0" : "eth0"}:'`);
      for (const [name, t] of Object.entries(g)) {
        if (name === "renderer") continue; // Imager puts the renderer inside wifis
        if (!IFACE_NAME_RE.test(name)) throw new Error(`${where(text, file, name)}: '${name.slice(0, 40)}' is not an interface name (letters, digits, '_', '.', ':', '-', at most 15)`);
        if (!isMap(t)) throw new Error(`${where(text, file, name)}: ${group}.${name}: expected its settings (dhcp4:, access-points:, ...)`);
        net = setInterface(net, name, ifaceLines(name, t, isWifi, text, file, ctx, plan.notes));
        named.push(name);
      }
    }
  } catch (e) {
    plan.problems.push({ part: "network", file, message: `${(e as Error).message}; the network settings were not applied` });
    return plan;
  }
  if (named.length === 0) return plan;
  const parsed = parseNetworkFile(net, file);
  if (!parsed.ok) {
    plan.problems.push({ part: "network", file, message: `${parsed.error.replace(/ line \d+/, "")} (as read from ${file}); the network settings were not applied` });
    return plan;
  }
  // Passphrases become derived keys before anything is written.
  const clean = scrubPassphrases(net, parsed.config);
  const cfgAgain = parseNetworkFile(clean, file);
  if (!cfgAgain.ok || cfgAgain.config.plainPsk) {
    plan.problems.push({ part: "network", file, message: `${file}: internal: the Wi-Fi key could not be stored derived; the network settings were not applied` });
    return plan;
  }
  const wifi: WifiKey[] = cfgAgain.config.interfaces.filter((i) => i.wifi && named.includes(i.name)).map((i) => ({ iface: i.name, ssid: i.wifi!.ssid, pskHex: i.wifi!.pskHex }));
  const describe = cfgAgain.config.interfaces
    .filter((i) => named.includes(i.name))
    .map((i) => `${i.name}: ${i.wifi ? `Wi-Fi '${i.wifi.ssid}', ` : ""}${i.address ? `${i.address}${i.gateway ? ` via ${i.gateway}` : ""}` : i.dhcp ? "DHCP" : "no address"}`)
    .join("; ");
  plan.settings.push({ part: "network", file, text: clean.endsWith("\n") ? clean : `${clean}\n`, wifi, describe });
  return plan;
}

// network.toml: the one network configuration file. The image's default is
// /etc/paio/network.toml; the device's own /var/lib/paio/network.toml, when it
// exists, replaces it. Parsing is a pure function from (text, path) to a
// configuration or an error naming the file, line and field; docs/network.md
// documents every field.

import { pbkdf2Sync } from "node:crypto";
import { bool, checkKeys, FieldError, fieldLine, isTable, parseTomlFile, str, stringArray, suggest, type Doc } from "./toml.ts";

export const IMAGE_NETWORK_FILE = "/etc/paio/network.toml";
export const DEVICE_NETWORK_FILE = "/var/lib/paio/network.toml";

export interface InterfaceConfig {
  name: string;
  enabled: boolean;
  dhcp: boolean;
  /** Static address with prefix length, e.g. "192.0.2.10/24". */
  address?: string;
  gateway?: string;
  dns: string[];
  wifi?: { ssid: string; pskHex: string };
}

export interface NetworkConfig {
  path: string;
  hostname?: string;
  ntp: string[];
  /** Settings for wired interfaces not named in [interface.NAME]; undefined: leave them down. */
  wired?: Omit<InterfaceConfig, "name" | "wifi">;
  interfaces: InterfaceConfig[];
  /** The file held Wi-Fi passphrases in plain text: importing replaces them with derived keys. */
  plainPsk: boolean;
}

export type NetworkParse = { ok: true; config: NetworkConfig } | { ok: false; error: string };

const TOP = ["hostname", "ntp", "wired", "interface"] as const;
const WIRED = ["enabled", "dhcp", "address", "gateway", "dns"] as const;
const IFACE = [...WIRED, "ssid", "psk", "psk_hex"] as const;
export const IFACE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$/;
export const HOSTNAME_RE = /^(?=.{1,63}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
const NTP_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;

export function parseIpv4(text: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : undefined;
}

/** WPA2 personal: the 256-bit key derived from the passphrase and the SSID (IEEE 802.11i, PBKDF2-SHA1, 4096 rounds). */
export function derivePsk(ssid: string, passphrase: string): string {
  return pbkdf2Sync(passphrase, ssid, 4096, 32, "sha1").toString("hex");
}

function address(v: unknown, field: string): string {
  const s = str(v, field);
  const [ip, prefix, extra] = s.split("/");
  const bits = Number(prefix);
  if (extra !== undefined || !parseIpv4(ip!) || prefix === undefined || !/^\d{1,2}$/.test(prefix) || bits < 1 || bits > 32) {
    throw new FieldError(field, `expected an IPv4 address with its prefix length, e.g. "192.0.2.10/24", got ${JSON.stringify(v)}`);
  }
  return s;
}

function ipv4(v: unknown, field: string): string {
  const s = str(v, field);
  if (!parseIpv4(s)) throw new FieldError(field, `expected an IPv4 address such as "192.0.2.1", got ${JSON.stringify(v)}`);
  return s;
}

function parseIface(t: Doc, prefix: string, known: readonly string[]): Omit<InterfaceConfig, "name"> & { plain: boolean } {
  checkKeys(t, known, prefix);
  const enabled = t.enabled === undefined ? true : bool(t.enabled, `${prefix}enabled`);
  const addr = t.address === undefined ? undefined : address(t.address, `${prefix}address`);
  const dhcp = t.dhcp === undefined ? addr === undefined : bool(t.dhcp, `${prefix}dhcp`);
  if (dhcp && addr !== undefined) throw new FieldError(`${prefix}dhcp`, "dhcp = true and a static address exclude each other; remove one of them");
  const gateway = t.gateway === undefined ? undefined : ipv4(t.gateway, `${prefix}gateway`);
  if (gateway && addr === undefined) throw new FieldError(`${prefix}gateway`, "a gateway needs a static address; add address = \"192.0.2.10/24\" or remove gateway (DHCP brings its own)");
  const dns = t.dns === undefined ? [] : stringArray(t.dns, `${prefix}dns`, '["192.0.2.1", "9.9.9.9"]');
  for (const d of dns) if (!parseIpv4(d)) throw new FieldError(`${prefix}dns`, `'${d}' is not an IPv4 address`);
  let wifi: InterfaceConfig["wifi"];
  let plain = false;
  if (t.ssid !== undefined || t.psk !== undefined || t.psk_hex !== undefined) {
    if (t.ssid === undefined) throw new FieldError(`${prefix}ssid`, "missing: a Wi-Fi key needs the network's name, e.g. ssid = \"HOME\"");
    const ssid = str(t.ssid, `${prefix}ssid`);
    if (Buffer.byteLength(ssid) < 1 || Buffer.byteLength(ssid) > 32) throw new FieldError(`${prefix}ssid`, "must be 1 to 32 bytes long");
    if (t.psk !== undefined && t.psk_hex !== undefined) throw new FieldError(`${prefix}psk`, "give psk (the passphrase) or psk_hex (the derived key), not both");
    if (t.psk === undefined && t.psk_hex === undefined) {
      throw new FieldError(`${prefix}ssid`, `Wi-Fi network '${ssid}' has no key: add psk = "the passphrase" (8 to 63 characters); open networks are not supported`);
    }
    let pskHex: string;
    if (t.psk !== undefined) {
      const psk = str(t.psk, `${prefix}psk`);
      if (!/^[\x20-\x7e]{8,63}$/.test(psk)) throw new FieldError(`${prefix}psk`, "a WPA passphrase is 8 to 63 printable ASCII characters");
      pskHex = derivePsk(ssid, psk);
      plain = true;
    } else {
      pskHex = str(t.psk_hex, `${prefix}psk_hex`);
      if (!/^[0-9a-f]{64}$/i.test(pskHex)) throw new FieldError(`${prefix}psk_hex`, "expected the 64 hexadecimal digits of a derived WPA key");
      pskHex = pskHex.toLowerCase();
    }
    wifi = { ssid, pskHex };
  }
  return { enabled, dhcp, address: addr, gateway, dns, wifi, plain };
}

function parseDoc(doc: Doc, path: string): NetworkConfig {
  checkKeys(doc, TOP, "");
  const hostname = doc.hostname === undefined ? undefined : str(doc.hostname, "hostname");
  if (hostname !== undefined && !HOSTNAME_RE.test(hostname)) throw new FieldError("hostname", "expected letters, digits and '-', at most 63 characters, not starting or ending with '-'");
  const ntp = doc.ntp === undefined ? [] : stringArray(doc.ntp, "ntp", '["pool.ntp.org"]');
  for (const s of ntp) if (!NTP_RE.test(s)) throw new FieldError("ntp", `'${s}' is not a host name or address`);
  let wired: NetworkConfig["wired"];
  if (doc.wired !== undefined) {
    if (!isTable(doc.wired)) throw new FieldError("wired", "expected a table: [wired]");
    const { plain: _plain, wifi: _wifi, ...w } = parseIface(doc.wired, "wired.", WIRED);
    if (w.address !== undefined) throw new FieldError("wired.address", "a static address belongs to one interface: put it under [interface.NAME]");
    wired = w;
  }
  const interfaces: InterfaceConfig[] = [];
  let plainPsk = false;
  if (doc.interface !== undefined) {
    if (!isTable(doc.interface)) throw new FieldError("interface", "expected tables such as [interface.eth0]");
    for (const [name, t] of Object.entries(doc.interface)) {
      if (!IFACE_NAME_RE.test(name)) throw new FieldError(`interface.${name}`, "not an interface name (letters, digits, '_', '.', ':' and '-', at most 15)");
      if (!isTable(t)) throw new FieldError(`interface.${name}`, `expected a table: [interface.${name}]`);
      const { plain, ...cfg } = parseIface(t, `interface.${name}.`, IFACE);
      plainPsk ||= plain;
      interfaces.push({ name, ...cfg });
    }
  }
  return { path, hostname, ntp, wired, interfaces, plainPsk };
}

/** The line of a field written as [interface.NAME] key = ..., or at the top / in [wired]. */
function lineOf(text: string, field: string): number | undefined {
  const m = /^interface\.([^.]+)\.(.+)$/.exec(field);
  if (!m) return fieldLine(text, field);
  const lines = text.split("\n");
  let inside = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!.trim();
    const header = /^\[\s*interface\.("?)([^"\]]+)\1\s*\]/.exec(l);
    if (header) inside = header[2] === m[1];
    else if (/^\[/.test(l)) inside = false;
    else if (inside && new RegExp(`^${m[2]}\\s*=`).test(l)) return i + 1;
  }
  for (let i = 0; i < lines.length; i++) if (new RegExp(`^\\[\\s*interface\\.("?)${m[1]}\\1\\s*\\]`).test(lines[i]!.trim())) return i + 1;
  return undefined;
}

export function parseNetworkFile(text: string, path: string): NetworkParse {
  const r = parseTomlFile(text, path, (doc) => parseDoc(doc, path), (field) => lineOf(text, field) ?? lineOf(text, field.split(".").slice(0, 2).join(".")));
  return r.ok ? { ok: true, config: r.value } : r;
}

/** Interfaces the file names that this device does not have; with the closest existing name. */
export function unknownInterfaces(cfg: NetworkConfig, present: string[], text: string): string[] {
  return cfg.interfaces
    .filter((i) => !present.includes(i.name))
    .map((i) => {
      const hint = suggest(i.name, present);
      const line = lineOf(text, `interface.${i.name}.x`);
      return `${cfg.path}${line ? ` line ${line}` : ""} field 'interface.${i.name}': this device has no interface '${i.name}'${hint ? ` (did you mean '${hint}'?)` : ""}; present: ${present.join(", ") || "none"}`;
    });
}

/**
 * The file's text with every Wi-Fi passphrase replaced by its derived key
 * (psk = "..." becomes psk_hex = "..."), so the passphrase is stored nowhere.
 */
export function scrubPassphrases(text: string, cfg: NetworkConfig): string {
  const lines = text.split("\n");
  let current: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!.trim();
    const header = /^\[\s*interface\.("?)([^"\]]+)\1\s*\]/.exec(l);
    if (header) current = header[2];
    else if (/^\[/.test(l)) current = undefined;
    else if (current && /^psk\s*=/.test(l)) {
      const iface = cfg.interfaces.find((x) => x.name === current);
      if (iface?.wifi) lines[i] = `psk_hex = "${iface.wifi.pskHex}"`;
    }
  }
  return lines.join("\n");
}

/** The settings an interface gets: its own section, else [wired] for a wired one, else none. */
export function settingsFor(cfg: NetworkConfig, name: string, wireless: boolean): InterfaceConfig | undefined {
  const own = cfg.interfaces.find((i) => i.name === name);
  if (own) return own;
  if (wireless || !cfg.wired) return undefined;
  return { name, ...cfg.wired };
}

/**
 * The file's text with [interface.NAME] set to join a Wi-Fi network: an
 * existing section for that interface is replaced, everything else is kept.
 * The key is stored derived (psk_hex), never the passphrase.
 */
export function withWifi(text: string, iface: string, ssid: string, pskHex: string): string {
  const lines = text.split("\n");
  const out: string[] = [];
  let skipping = false;
  for (const line of lines) {
    const header = /^\s*\[\s*interface\.("?)([^"\]]+)\1\s*\]/.exec(line);
    if (header) skipping = header[2] === iface;
    else if (/^\s*\[/.test(line)) skipping = false;
    if (!skipping) out.push(line);
  }
  while (out.length && out[out.length - 1]!.trim() === "") out.pop();
  out.push("", `[interface.${iface}]`, `ssid = ${JSON.stringify(ssid)}`, `psk_hex = "${pskHex}"`, "dhcp = true", "");
  return out.join("\n");
}

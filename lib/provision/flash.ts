// First-boot settings, the host's side, for `paio flash`: the command line's
// settings (--hostname, --ssh-key, --wifi, --static-ip, --units, --policy,
// --timezone) are read and checked up front with the parsers the device
// uses, turned into paio-config.toml and the files beside it, and written
// into the image's or the card's FAT partition 1 with mtools (no mounting,
// no root for an image file). docs/provisioning.md describes the files.

import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { derivePsk, IFACE_NAME_RE, parseIpv4 } from "../config/network.ts";
import { readConfigFile } from "../config/read.ts";
import { parsePublicKey } from "../config/ssh-key.ts";
import { readPartitions } from "../../qemu/image-info.ts";
import { checkPolicy, checkUnit, planConfig } from "./config.ts";
import {
  checkHostname, checkTimezone, CONFIG_FILE, DEFAULT_WIFI_IFACE, DEFAULT_WIRED_IFACE, HOSTNAME_RULE, nestNetwork, POLICY_FILE, setInterface, tomlString, UNITS_DIR,
} from "./plan.ts";

export interface FlashSettingsInput {
  hostname?: string;
  sshKeyFile?: string;
  wifiSsid?: string;
  wifiPskFile?: string;
  wifiPskStdin?: boolean;
  staticIp?: string;
  unitsDir?: string;
  policyFile?: string;
  timezone?: string;
}

export class ProvisionError extends Error {}

export interface ProvisionBundle {
  /** Files for the boot partition, by their path there ("paio-config.toml", "paio-units/camera.toml"). */
  files: Map<string, Uint8Array>;
  /** What the device will be given, in words; nothing secret. */
  summary: string[];
}

/** The image's network settings, the base that --wifi and --static-ip are added to. */
const IMAGE_NETWORK = new URL("../../image/overlay/etc/paio/network.toml", import.meta.url);
const DEFAULT_NETWORK = 'ntp = ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"]\n\n[wired]\ndhcp = true\n';
const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: "1" };
const MAX_STDIN = 4096;

function readOrFail(path: string, what: string): string {
  const r = readConfigFile(path);
  if (!r.ok) throw new ProvisionError(`${what}: ${r.error}`);
  return r.text;
}

/** The SSH public keys of a file (one per line, as authorized_keys or a .pub file holds them). */
function readKeys(file: string): string[] {
  const text = readOrFail(file, "--ssh-key");
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text) || /^PuTTY-User-Key-File/m.test(text)) {
    throw new ProvisionError(`--ssh-key: ${file} is a private key, which must never leave your machine; give the public key (usually ${file.endsWith(".pub") ? file : `${file}.pub`})`);
  }
  const keys: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "" || line.trim().startsWith("#")) return;
    const k = parsePublicKey(line);
    if (!k.ok) throw new ProvisionError(`--ssh-key: ${file} line ${i + 1}: ${k.error}; give a public key file such as ~/.ssh/id_ed25519.pub`);
    keys.push(k.line);
  });
  if (keys.length === 0) throw new ProvisionError(`--ssh-key: ${file} holds no SSH public key; give a public key file such as ~/.ssh/id_ed25519.pub`);
  return keys;
}

/** The Wi-Fi passphrase (or derived 64-digit key) from a file or standard input: one line, the line break not part of it. */
function readPsk(input: FlashSettingsInput): string {
  let text: string;
  let from: string;
  if (input.wifiPskFile !== undefined && input.wifiPskStdin) throw new ProvisionError("give the Wi-Fi passphrase once: --wifi-psk-file FILE or --wifi-psk-stdin, not both");
  if (input.wifiPskFile !== undefined) {
    text = readOrFail(input.wifiPskFile, "--wifi-psk-file");
    from = input.wifiPskFile;
  } else {
    let buf: Buffer;
    try {
      buf = readFileSync(0);
    } catch (e) {
      throw new ProvisionError(`--wifi-psk-stdin: cannot read standard input: ${(e as Error).message}`);
    }
    if (buf.length > MAX_STDIN) throw new ProvisionError("--wifi-psk-stdin: more than a passphrase on standard input; give only the passphrase");
    text = buf.toString("utf8");
    from = "standard input";
  }
  const lines = text.split(/\r?\n/);
  while (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  if (lines.length !== 1) throw new ProvisionError(`the Wi-Fi passphrase from ${from} is ${lines.length} lines; put only the passphrase in it, on one line`);
  const psk = lines[0]!;
  if (/^[0-9a-fA-F]{64}$/.test(psk)) return psk.toLowerCase();
  if (!/^[\x20-\x7e]{8,63}$/.test(psk)) throw new ProvisionError(`the Wi-Fi passphrase from ${from} is not a WPA passphrase: it must be 8 to 63 printable ASCII characters (or the 64 hexadecimal digits of a derived key)`);
  return psk;
}

export interface StaticIp {
  iface: string;
  address: string;
  gateway?: string;
  dns: string[];
}

const STATIC_FORM = `CIDR[,gw=IP][,dns=IP]...[,iface=NAME], e.g. 192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.1`;

/** --static-ip "CIDR[,gw=IP][,dns=IP]...[,iface=NAME]"; the interface is eth0 unless named. */
export function parseStaticIp(spec: string): StaticIp {
  const fail = (why: string): never => {
    throw new ProvisionError(`--static-ip '${spec}': ${why}; expected ${STATIC_FORM}`);
  };
  const [cidr, ...opts] = spec.split(",").map((s) => s.trim());
  const [ip, prefix, extra] = (cidr ?? "").split("/");
  if (!ip || !parseIpv4(ip)) fail(`'${ip ?? ""}' is not an IPv4 address`);
  if (prefix === undefined || extra !== undefined || !/^\d{1,2}$/.test(prefix) || Number(prefix) < 1 || Number(prefix) > 32) fail("the address needs its prefix length, such as /24");
  const out: StaticIp = { iface: DEFAULT_WIRED_IFACE, address: `${ip}/${Number(prefix)}`, dns: [] };
  for (const o of opts) {
    const m = /^(gw|gateway|dns|iface)=(.*)$/.exec(o);
    if (!m) return fail(`'${o}' is not gw=, dns= or iface=`);
    const [, k, v] = m as unknown as [string, string, string];
    if (k === "iface") {
      if (!IFACE_NAME_RE.test(v)) fail(`'${v}' is not an interface name`);
      out.iface = v;
    } else if (!parseIpv4(v)) fail(`${k}=${v}: not an IPv4 address`);
    else if (k === "dns") out.dns.push(v);
    else if (out.gateway) fail("more than one gateway");
    else out.gateway = v;
  }
  return out;
}

/** The image's network settings without their comments (which speak of the image's file). */
function baseNetwork(): string {
  let text: string;
  try {
    text = readFileSync(IMAGE_NETWORK, "utf8");
  } catch {
    text = DEFAULT_NETWORK;
  }
  return text.split("\n").filter((l) => !l.trim().startsWith("#")).join("\n").replace(/^\n+/, "");
}

/** Reads and checks every setting; writes nothing. Throws ProvisionError naming the option, the file and the line. */
export function loadFlashSettings(input: FlashSettingsInput): ProvisionBundle {
  const files = new Map<string, Uint8Array>();
  const summary: string[] = [];
  const config: string[] = [`# First-boot settings for PAIO, written by 'paio flash' (docs/provisioning.md).`, `# The device imports them at its first boot and then removes the Wi-Fi key from this partition.`, "version = 1", ""];
  const device: string[] = [];
  if (input.hostname !== undefined) {
    const h = checkHostname(input.hostname);
    if (!h.ok) throw new ProvisionError(`--hostname '${input.hostname}': not a host name: ${HOSTNAME_RULE}`);
    device.push(`hostname = ${tomlString(h.value)}`);
    summary.push(`host name: ${h.value}`);
  }
  if (input.timezone !== undefined) {
    const z = checkTimezone(input.timezone);
    if (!z.ok) throw new ProvisionError(`--timezone: ${z.error}`);
    device.push(`timezone = ${tomlString(z.value)}`);
    summary.push(`time zone: ${z.value}`);
  }
  if (device.length) config.push("[device]", ...device, "");
  if (input.sshKeyFile !== undefined) {
    const keys = readKeys(input.sshKeyFile);
    config.push("[ssh]", `authorized_keys = [`, ...keys.map((k) => `  ${tomlString(k)},`), "]", "");
    summary.push(`SSH keys for root: ${keys.map((k) => k.split(" ").filter((_, i) => i !== 1).join(" ")).join(", ")}`);
  }
  // Wi-Fi and a static address: the image's network settings with these interfaces added.
  if ((input.wifiPskFile !== undefined || input.wifiPskStdin) && input.wifiSsid === undefined) throw new ProvisionError("a Wi-Fi passphrase without a network: add --wifi SSID");
  const ifaces = new Map<string, string[]>();
  if (input.wifiSsid !== undefined) {
    const ssid = input.wifiSsid;
    if (Buffer.byteLength(ssid) < 1 || Buffer.byteLength(ssid) > 32) throw new ProvisionError(`--wifi '${ssid}': a network name is 1 to 32 bytes`);
    if (/[\x00-\x1f\x7f]/.test(ssid)) throw new ProvisionError("--wifi: the network name holds a control character");
    if (input.wifiPskFile === undefined && !input.wifiPskStdin) throw new ProvisionError(`--wifi '${ssid}' needs its passphrase: --wifi-psk-file FILE or --wifi-psk-stdin (open networks are not supported)`);
    const psk = readPsk(input);
    // Only the derived key is written: the passphrase itself never reaches the card.
    const pskHex = /^[0-9a-f]{64}$/.test(psk) ? psk : derivePsk(ssid, psk);
    ifaces.set(DEFAULT_WIFI_IFACE, [`ssid = ${tomlString(ssid)}`, `psk_hex = "${pskHex}"`, "dhcp = true"]);
    summary.push(`Wi-Fi: '${ssid}' on ${DEFAULT_WIFI_IFACE} (the key is written derived and removed from the card at first boot)`);
  }
  if (input.staticIp !== undefined) {
    const s = parseStaticIp(input.staticIp);
    const lines = [`address = ${tomlString(s.address)}`, ...(s.gateway ? [`gateway = ${tomlString(s.gateway)}`] : []), ...(s.dns.length ? [`dns = [${s.dns.map(tomlString).join(", ")}]`] : [])];
    // On the Wi-Fi interface, the address replaces DHCP and the network stays.
    ifaces.set(s.iface, [...(ifaces.get(s.iface) ?? []).filter((l) => !l.startsWith("dhcp")), ...lines]);
    summary.push(`static address: ${s.address} on ${s.iface}${s.gateway ? `, gateway ${s.gateway}` : ""}${s.dns.length ? `, name servers ${s.dns.join(" ")}` : ""}`);
  }
  let net: string | undefined;
  for (const [name, lines] of ifaces) net = setInterface(net ?? baseNetwork(), name, lines);
  if (net !== undefined) config.push(nestNetwork(net));
  if (input.unitsDir !== undefined) {
    let names: string[];
    try {
      names = readdirSync(input.unitsDir).filter((n) => n.endsWith(".toml")).sort();
    } catch (e) {
      throw new ProvisionError(`--units: ${input.unitsDir}: cannot read: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such directory" : (e as Error).message}`);
    }
    if (names.length === 0) throw new ProvisionError(`--units: ${input.unitsDir} holds no unit files (NAME.toml, docs/units.md)`);
    const seen = new Map<string, string>();
    const listed: string[] = [];
    for (const n of names) {
      const path = join(input.unitsDir, n);
      const text = readOrFail(path, "--units");
      const c = checkUnit(text, path);
      if (!c.ok) throw new ProvisionError(`--units: ${c.error}`);
      const other = seen.get(n.toLowerCase());
      if (other) throw new ProvisionError(`--units: ${n} and ${other} differ only in case, which the card's FAT partition cannot hold apart; rename one`);
      seen.set(n.toLowerCase(), n);
      const dest = `${UNITS_DIR}/${n}`;
      files.set(dest, new TextEncoder().encode(text));
      listed.push(dest);
    }
    config.push("[units]", `files = [${listed.map(tomlString).join(", ")}]`, "");
    summary.push(`units: ${names.map((n) => n.slice(0, -5)).join(", ")}`);
  }
  if (input.policyFile !== undefined) {
    const text = readOrFail(input.policyFile, "--policy");
    const c = checkPolicy(text, input.policyFile);
    if (!c.ok) throw new ProvisionError(`--policy: ${c.error}`);
    files.set(POLICY_FILE, new TextEncoder().encode(text));
    config.push("[policy]", `file = "${POLICY_FILE}"`, "");
    summary.push(`policy: ${basename(input.policyFile)}`);
  }
  if (summary.length === 0) return { files, summary };
  const text = `${config.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd()}\n`;
  // The device's own reading of what is about to be written: it must find nothing wrong.
  const plan = planConfig(text, (name) => {
    const f = files.get(name);
    return f ? { ok: true, text: new TextDecoder().decode(f) } : undefined;
  });
  if (plan.problems.length) throw new ProvisionError(`internal: the settings written would be refused by the device: ${plan.problems.map((p) => p.message).join("; ")}`);
  files.set(CONFIG_FILE, new TextEncoder().encode(text));
  return { files, summary };
}

export function isEmptyBundle(bundle: ProvisionBundle): boolean {
  return bundle.files.size === 0;
}

/** Partition 1 of an image file or a block device, which must hold a FAT file system. */
export function bootPartitionOf(target: string): { offset: number; size: number; label: string } {
  let st;
  try {
    st = statSync(target);
  } catch (e) {
    throw new ProvisionError(`${target}: cannot read: ${(e as Error).message}`);
  }
  if (!st.isFile() && !st.isBlockDevice()) throw new ProvisionError(`${target}: neither a disk image file nor a block device`);
  let parts;
  try {
    parts = readPartitions(target);
  } catch (e) {
    throw new ProvisionError(`${target}: cannot read its partition table: ${(e as Error).message}`);
  }
  if (parts.table === "none") throw new ProvisionError(`${target} has no partition table (MBR or GPT): is a PAIO image written to it?`);
  const p = parts.partitions.find((x) => x.index === 1);
  if (!p) throw new ProvisionError(`${target} has no partition 1: is a PAIO image written to it?`);
  const bs = Buffer.alloc(512);
  const fd = openSync(target, "r");
  try {
    readSync(fd, bs, 0, 512, p.offset);
  } finally {
    closeSync(fd);
  }
  const fat16 = /^FAT(12|16)? {0,5}$/.test(bs.subarray(54, 62).toString("latin1"));
  const fat32 = bs.subarray(82, 90).toString("latin1") === "FAT32   ";
  if (bs[510] !== 0x55 || bs[511] !== 0xaa || (!fat16 && !fat32)) throw new ProvisionError(`${target}: partition 1 is not a FAT file system, so it is not a PAIO boot partition`);
  const label = bs.subarray(fat32 ? 71 : 43, fat32 ? 82 : 54).toString("latin1").trim();
  return { offset: p.offset, size: p.size, label };
}

function mtools(argv: string[]): { ok: boolean; out: Buffer; err: string } {
  const r = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: MTOOLS_ENV });
  return { ok: r.exitCode === 0, out: Buffer.from(r.stdout), err: r.stderr.toString().trim() };
}

/**
 * Writes the bundle's files into partition 1 (FAT) of an image file or a
 * block device, with mtools, and reads each back; returns what was done.
 */
export function writeBundleToTarget(target: string, bundle: ProvisionBundle): string[] {
  if (isEmptyBundle(bundle)) return [];
  const part = bootPartitionOf(target);
  const image = `${target}@@${part.offset}`;
  const tmp = mkdtempSync(join(tmpdir(), "paio-provision-"));
  try {
    const dirs = new Set([...bundle.files.keys()].filter((f) => f.includes("/")).map((f) => f.slice(0, f.lastIndexOf("/"))));
    for (const d of dirs) {
      const list = mtools(["mdir", "-i", image, `::${d}`]);
      if (!list.ok) {
        const md = mtools(["mmd", "-i", image, `::${d}`]);
        if (!md.ok) throw new ProvisionError(`${target}: cannot make ${d}/ on the boot partition: ${md.err || "mmd failed"}`);
      }
    }
    let i = 0;
    for (const [name, data] of bundle.files) {
      const src = join(tmp, `f${i++}`);
      writeFileSync(src, data, { mode: 0o600 });
      const cp = mtools(["mcopy", "-o", "-i", image, src, `::${name}`]);
      if (!cp.ok) throw new ProvisionError(`${target}: cannot write ${name} on the boot partition: ${cp.err || "mcopy failed"}${/full|space/i.test(cp.err) ? " (the boot partition is full)" : ""}`);
      const back = mtools(["mcopy", "-i", image, `::${name}`, "-"]);
      if (!back.ok || !back.out.equals(Buffer.from(data))) throw new ProvisionError(`${target}: ${name} reads back different from what was written on the boot partition; the card may be failing`);
      rmSync(src);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const names = [...bundle.files.keys()];
  return [
    `first-boot settings written to partition 1 of ${target} (FAT${part.label ? ` "${part.label}"` : ""}): ${names.join(", ")}`,
    ...bundle.summary.map((s) => `  ${s}`),
  ];
}

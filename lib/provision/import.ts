// First-boot settings, the device's side: read what is on the boot
// partition (paio-config.toml and the files beside it, or the cloud-init
// files Raspberry Pi Imager writes), check every part with the parsers the
// running system uses, install what is good into the data partition, report
// what is not, take the Wi-Fi keys (and password hashes) off the boot
// partition, and remember by content hash what was imported, so the same
// files are not imported twice and new ones are. Paths are parameters: tests
// run it on a folder standing for the boot partition and one for
// /var/lib/paio.

import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { derivePsk } from "../config/network.ts";
import { errnoText, readConfigFile } from "../config/read.ts";
import { addAuthorizedKey } from "../config/ssh-key.ts";
import { planNetworkConfig, planUserData } from "./cloud-init.ts";
import { filesBeside, planConfig } from "./config.ts";
import { CONFIG_FILE, NETWORK_CONFIG, USER_DATA, type Plan, type PlanContext, type Problem, type Setting } from "./plan.ts";
import { isMap, parseYaml, type YamlValue } from "./yaml.ts";
import { writeDurably } from "../durable-write.ts";

export interface ImportPaths {
  /** The boot partition, mounted. */
  boot: string;
  /** The data partition: /var/lib/paio. */
  state: string;
  /** The image's network.toml, the base Imager's network settings are merged into when the device has none. */
  imageNetwork: string;
  /** The image's units, to say when an installed unit replaces one of them. */
  imageUnits?: string;
}

export interface ImportOptions {
  /** False when the data partition is a tmpfs: settings apply to this boot only and the boot partition is left as it is. */
  persistent: boolean;
  now?: () => number;
  /** Sets the running system's host name. */
  setHostname?: (name: string) => void;
  /** Called once before the first write to the boot partition (to make it writable); throws when it cannot be. */
  beforeBootWrite?: () => void;
}

export interface ImportedSource {
  source: "paio-config" | "cloud-init";
  files: string[];
  applied: string[];
}

export interface ImportReport {
  imported: ImportedSource[];
  problems: Problem[];
  notes: string[];
  /** What was taken off the boot partition ("paio-config.toml: the key of Wi-Fi network 'HOME'"). */
  secretsRemoved: string[];
  /** Sources whose files were imported before (same content). */
  unchanged: string[];
}

/** /var/lib/paio/provisioned.json: what was imported when, with what result; nothing secret. */
export const RECORD_FILE = "provisioned.json";
export const HOSTNAME_FILE = "hostname";
export const TIMEZONE_FILE = "timezone";
/** Derived Wi-Fi keys taken off the boot partition, by network name, readable by root only. */
export const WIFI_KEYS_FILE = "provision/wifi-keys.json";

export interface ImportRecord {
  id: number;
  time: string;
  source: "paio-config" | "cloud-init";
  files: string[];
  /** Content hashes of the source's files: as found, and after the secrets were taken out. */
  hashes: string[];
  applied: string[];
  problems: Problem[];
  notes: string[];
  secrets_removed: string[];
}

export interface ProvisionRecord {
  version: 1;
  imports: ImportRecord[];
}

const KEEP_RECORDS = 20;

export function readRecord(state: string): ProvisionRecord {
  const r = readConfigFile(join(state, RECORD_FILE));
  if (!r.ok) return { version: 1, imports: [] };
  try {
    const v = JSON.parse(r.text) as ProvisionRecord;
    if (v && v.version === 1 && Array.isArray(v.imports)) return v;
  } catch {
    // a damaged record: start again (at worst, the same files are imported again)
  }
  return { version: 1, imports: [] };
}

function writeAtomic(path: string, text: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true });
  writeDurably(path, text, mode);
}

type FileState = { name: string; text?: string; error?: string };

/** The files on the boot partition are small; a larger one is a mistake (or an attack), not settings. */
export const BOOT_FILE_MAX_BYTES = 256 * 1024;

function readBoot(boot: string, name: string): FileState {
  const r = readConfigFile(join(boot, name), BOOT_FILE_MAX_BYTES);
  if (r.ok) return { name, text: r.text };
  if (r.error.endsWith("(ENOENT)")) return { name };
  return { name, error: r.error.replace(join(boot, name), name) };
}

function hashOf(files: FileState[]): string {
  const h = createHash("sha256");
  for (const f of files) h.update(`${f.name}\0${f.text ?? (f.error ? `<unreadable: ${f.error}>` : "<absent>")}\0`);
  return h.digest("hex");
}

/** The Wi-Fi keys a file on the boot partition holds, found in its parsed content (whatever else is wrong with it). */
function keysInConfig(text: string): { ssid: string; pskHex: string }[] {
  let doc: Record<string, unknown>;
  try {
    doc = Bun.TOML.parse(text) as Record<string, unknown>;
  } catch {
    return [];
  }
  const out: { ssid: string; pskHex: string }[] = [];
  const net = doc.network as Record<string, unknown> | undefined;
  const ifaces = net && typeof net.interface === "object" && net.interface ? (net.interface as Record<string, Record<string, unknown>>) : {};
  for (const t of Object.values(ifaces)) {
    if (typeof t !== "object" || t === null || typeof t.ssid !== "string") continue;
    if (typeof t.psk_hex === "string" && /^[0-9a-f]{64}$/i.test(t.psk_hex)) out.push({ ssid: t.ssid, pskHex: t.psk_hex.toLowerCase() });
    else if (typeof t.psk === "string" && /^[\x20-\x7e]{8,63}$/.test(t.psk)) out.push({ ssid: t.ssid, pskHex: derivePsk(t.ssid, t.psk) });
  }
  return out;
}

function keysInNetworkConfig(value: YamlValue): { ssid: string; pskHex: string }[] {
  const out: { ssid: string; pskHex: string }[] = [];
  let doc = value;
  if (isMap(doc) && isMap(doc.network)) doc = doc.network;
  if (!isMap(doc) || !isMap(doc.wifis)) return out;
  for (const t of Object.values(doc.wifis)) {
    if (!isMap(t) || !isMap(t["access-points"])) continue;
    for (const [ssid, ap] of Object.entries(t["access-points"])) {
      if (!isMap(ap)) continue;
      const pw = typeof ap.password === "string" ? ap.password : isMap(ap.auth) && typeof ap.auth.password === "string" ? ap.auth.password : undefined;
      if (pw === undefined || Buffer.byteLength(ssid) < 1 || Buffer.byteLength(ssid) > 32) continue;
      if (/^[0-9a-f]{64}$/i.test(pw)) out.push({ ssid, pskHex: pw.toLowerCase() });
      else if (/^[\x20-\x7e]{8,63}$/.test(pw)) out.push({ ssid, pskHex: derivePsk(ssid, pw) });
    }
  }
  return out;
}

/** Whether a parsed document still holds a key of these names anywhere. */
function holdsKey(v: unknown, names: readonly string[]): boolean {
  if (Array.isArray(v)) return v.some((x) => holdsKey(x, names));
  if (typeof v === "object" && v !== null) return Object.entries(v).some(([k, x]) => names.includes(k) || holdsKey(x, names));
  return false;
}

const TOML_SECRETS = ["psk", "psk_hex"] as const;
const NETWORK_SECRETS = ["password"] as const;
const USER_SECRETS = ["passwd", "hashed_passwd", "plain_text_passwd", "password"] as const;

/** A 64-digit hexadecimal key (a derived Wi-Fi key) on a line that is not a comment. */
function holdsHexKey(text: string): boolean {
  return text.split("\n").some((l) => !l.trim().startsWith("#") && /(^|[^0-9a-fA-F])[0-9a-fA-F]{64}([^0-9a-fA-F]|$)/.test(l));
}

/** Whether a file that cannot be parsed may hold a Wi-Fi key or password. */
function maySecret(text: string): boolean {
  return /psk|password|passwd/i.test(text) || holdsHexKey(text);
}

/**
 * The text with every line that sets one of `names`, or whose value is a
 * 64-digit key, replaced by a comment; undefined when nothing needed it.
 * When the result still holds a secret or no longer parses (a value over
 * several lines), the whole file becomes a note saying where its settings went.
 */
function scrub(text: string, names: readonly string[], kind: "toml" | "yaml", date: string, file: string): string | undefined {
  const named = kind === "toml" ? new RegExp(`^(\\s*)(${names.join("|")})\\s*=`) : new RegExp(`^(\\s*(?:-\\s+)?)(${names.join("|")})\\s*:`);
  const hexValue = kind === "toml" ? /^(\s*)([^=#]+?)\s*=\s*["']?[0-9a-fA-F]{64}["']?\s*(#.*)?$/ : /^(\s*(?:-\s+)?)([^:#]+?)\s*:\s*["']?[0-9a-fA-F]{64}["']?\s*(#.*)?$/;
  let changed = false;
  const lines = text.split("\n").map((l) => {
    const m = named.exec(l) ?? hexValue.exec(l);
    if (!m) return l;
    changed = true;
    const indent = m[1]!.replace(/-/, " ");
    // Said in words, not by the field's name, so a search for the field finds nothing left.
    const field = m[2]!;
    const what = file === USER_DATA ? (/^(passwd|hashed_passwd)$/.test(field) ? "a password hash" : "a password") : field === "password" ? "the Wi-Fi password" : "the Wi-Fi key";
    return `${indent}# ${what} was removed from the boot partition after import on ${date}; the device keeps what it needs`;
  });
  if (!changed) return undefined;
  const out = lines.join("\n");
  try {
    const parsed = kind === "toml" ? Bun.TOML.parse(out) : parseYaml(out);
    if (!holdsKey(parsed, names) && !holdsHexKey(out)) return out;
  } catch {
    // falls through: the file is replaced by a note
  }
  return `${kind === "yaml" && file === USER_DATA ? "#cloud-config\n" : ""}# ${file} was imported by PAIO on ${date} and removed from the boot partition because it held a secret that could not be cut out alone.\n# What was imported is listed in /var/lib/paio/${RECORD_FILE} on the device.\n`;
}

/** An error in words: the errno's text for a system call, else the message. */
function why(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ? errnoText(e) : (e as Error).message ?? String(e);
}

function describeKeys(keys: string[]): string {
  return keys.map((k) => k.split(" ").slice(0, 1).concat(k.split(" ").slice(2)).join(" ")).join(", ");
}

export class Importer {
  private report: ImportReport = { imported: [], problems: [], notes: [], secretsRemoved: [], unchanged: [] };
  private record: ProvisionRecord;
  private bootWritable = false;
  private now: () => number;
  private wifiKeys: Record<string, string>;

  constructor(private paths: ImportPaths, private opts: ImportOptions) {
    this.record = readRecord(paths.state);
    this.now = opts.now ?? Date.now;
    const k = readConfigFile(join(paths.state, WIFI_KEYS_FILE));
    let keys: Record<string, string> = {};
    try {
      if (k.ok) keys = JSON.parse(k.text) as Record<string, string>;
    } catch {
      keys = {};
    }
    this.wifiKeys = typeof keys === "object" && keys !== null ? keys : {};
  }

  private context(): PlanContext {
    const device = readConfigFile(join(this.paths.state, "network.toml"));
    const image = readConfigFile(this.paths.imageNetwork);
    // The image's file speaks of itself in its comments: they are left out of the device's copy.
    const imageText = image.ok ? image.text.split("\n").filter((l) => !l.trim().startsWith("#")).join("\n").replace(/^\n+/, "") : "[wired]\ndhcp = true\n";
    const base = device.ok ? device.text : `# The image's network settings with the interfaces of the boot partition's network-config (docs/provisioning.md).\n${imageText}`;
    return {
      knownKey: (ssid) => {
        const k = this.wifiKeys[ssid];
        return typeof k === "string" && /^[0-9a-f]{64}$/.test(k) ? k : undefined;
      },
      baseNetwork: base,
    };
  }

  private known(source: string, hash: string): boolean {
    return this.record.imports.some((r) => r.source === source && r.hashes.includes(hash));
  }

  /** Runs the whole import; never throws for what it finds on the boot partition. */
  run(): ImportReport {
    this.source("cloud-init", () => {
      const files = [readBoot(this.paths.boot, USER_DATA), readBoot(this.paths.boot, NETWORK_CONFIG)].filter((f) => f.text !== undefined || f.error);
      return files;
    });
    this.source("paio-config", () => {
      const config = readBoot(this.paths.boot, CONFIG_FILE);
      if (config.text === undefined && !config.error) return [];
      return [config, ...(config.text ? filesBeside(config.text).map((n) => readBoot(this.paths.boot, n)) : [])];
    });
    return this.report;
  }

  private source(source: "paio-config" | "cloud-init", gather: () => FileState[]): void {
    const files = gather();
    if (files.length === 0) return;
    const hash = hashOf(files);
    if (this.known(source, hash)) {
      this.report.unchanged.push(source);
      return;
    }
    const problems: Problem[] = [];
    const notes: string[] = [];
    const applied: string[] = [];
    const ctx = this.context();
    const plan: Plan = { settings: [], problems: [], notes: [] };
    for (const f of files) if (f.error) problems.push({ part: "file", file: f.name, message: `${f.error}; nothing in it was applied` });
    const text = (name: string) => files.find((f) => f.name === name)?.text;
    if (source === "cloud-init") {
      const ud = text(USER_DATA);
      const nc = text(NETWORK_CONFIG);
      for (const p of [ud === undefined ? undefined : planUserData(ud), nc === undefined ? undefined : planNetworkConfig(nc, ctx)]) {
        if (!p) continue;
        plan.settings.push(...p.settings);
        plan.problems.push(...p.problems);
        plan.notes.push(...p.notes);
      }
    } else {
      const cfg = text(CONFIG_FILE);
      if (cfg !== undefined) {
        const p = planConfig(cfg, (name) => {
          const f = files.find((x) => x.name === name);
          if (!f || (f.text === undefined && !f.error)) return undefined;
          return f.text !== undefined ? { ok: true, text: f.text } : { ok: false, error: f.error! };
        }, ctx);
        Object.assign(plan, { settings: p.settings, problems: [...plan.problems, ...p.problems], notes: p.notes });
      }
    }
    problems.push(...plan.problems.filter((p) => !problems.some((q) => q.file === p.file && q.part === "file")));
    notes.push(...plan.notes);
    for (const s of plan.settings) {
      try {
        applied.push(this.apply(s, notes));
      } catch (e) {
        problems.push({ part: s.part, file: s.file, message: `${s.file}: could not install the ${s.part} setting: ${why(e)}` });
      }
    }
    const removed = this.opts.persistent ? this.removeSecrets(source, files, problems) : [];
    if (!this.opts.persistent) notes.push(`the data partition is not persistent (see /run/paio/data-status): these settings apply to this boot only, and the boot partition was left as it is`);
    const after = hashOf(gather());
    this.report.imported.push({ source, files: files.map((f) => f.name), applied });
    this.report.problems.push(...problems);
    this.report.notes.push(...notes);
    this.report.secretsRemoved.push(...removed);
    const id = (this.record.imports.at(-1)?.id ?? 0) + 1;
    this.record.imports.push({
      id, time: new Date(this.now()).toISOString(), source, files: files.map((f) => f.name), hashes: [...new Set([hash, after])],
      applied, problems, notes, secrets_removed: removed,
    });
    this.record.imports = this.record.imports.slice(-KEEP_RECORDS);
    try {
      writeAtomic(join(this.paths.state, RECORD_FILE), `${JSON.stringify(this.record, null, 2)}\n`, 0o644);
    } catch (e) {
      this.report.problems.push({ part: "file", file: RECORD_FILE, message: `cannot write ${join(this.paths.state, RECORD_FILE)}: ${errnoText(e)}; the same settings will be imported again at the next boot` });
    }
  }

  /** Installs one checked setting; returns what was done, in words. */
  private apply(s: Setting, notes: string[]): string {
    const st = this.paths.state;
    switch (s.part) {
      case "hostname":
        writeAtomic(join(st, HOSTNAME_FILE), `${s.value}\n`, 0o644);
        try {
          this.opts.setHostname?.(s.value);
        } catch (e) {
          notes.push(`the host name takes effect when the network unit starts (setting it now failed: ${why(e)})`);
        }
        return `host name ${s.value}`;
      case "timezone":
        writeAtomic(join(st, TIMEZONE_FILE), `${s.value}\n`, 0o644);
        return `time zone ${s.value}`;
      case "ssh": {
        let added = 0;
        for (const k of s.keys) {
          const r = addAuthorizedKey(k, join(st, "ssh", "authorized_keys"));
          if (!r.ok) throw new Error(r.message);
          if (r.added) added++;
        }
        return `SSH keys for root: ${added} added${added < s.keys.length ? `, ${s.keys.length - added} already allowed` : ""} (${describeKeys(s.keys)})`;
      }
      case "network":
        writeAtomic(join(st, "network.toml"), s.text, 0o600);
        if (s.wifi.length) this.keepKeys(s.wifi);
        return `network (${s.describe})`;
      case "unit": {
        if (this.paths.imageUnits && existsSync(join(this.paths.imageUnits, `${s.name}.toml`))) notes.push(`unit ${s.name} from ${s.file} replaces the image's unit of that name`);
        writeAtomic(join(st, "units", `${s.name}.toml`), s.text, 0o644);
        return `unit ${s.name}`;
      }
      case "policy":
        writeAtomic(join(st, "policy.toml"), s.text, 0o644);
        return `policy (from ${s.file})`;
    }
  }

  /** Keeps derived Wi-Fi keys on the data partition (root only), so files whose key was taken off the boot partition can be imported again. */
  private keepKeys(keys: { ssid: string; pskHex: string }[]): void {
    let changed = false;
    for (const k of keys) {
      if (this.wifiKeys[k.ssid] !== k.pskHex) {
        this.wifiKeys[k.ssid] = k.pskHex;
        changed = true;
      }
    }
    if (!changed) return;
    mkdirSync(join(this.paths.state, "provision"), { recursive: true, mode: 0o700 });
    writeAtomic(join(this.paths.state, WIFI_KEYS_FILE), `${JSON.stringify(this.wifiKeys)}\n`, 0o600);
  }

  private writeBoot(name: string, text: string): void {
    if (!this.bootWritable) {
      this.opts.beforeBootWrite?.();
      this.bootWritable = true;
    }
    const path = join(this.paths.boot, name);
    // In place, not written aside and renamed: FAT frees a replaced file's clusters without clearing
    // them, so the secret would stay readable on the card. Its bytes are overwritten where they are first.
    const fd = openSync(path, "r+");
    try {
      const size = fstatSync(fd).size;
      writeSync(fd, Buffer.alloc(size, 0x20), 0, size, 0);
      fsyncSync(fd);
      const data = Buffer.from(text);
      writeSync(fd, data, 0, data.length, 0);
      ftruncateSync(fd, data.length);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Takes Wi-Fi keys and password hashes off the boot partition; returns what was removed. */
  private removeSecrets(source: string, files: FileState[], problems: Problem[]): string[] {
    const date = new Date(this.now()).toISOString().slice(0, 10);
    const removed: string[] = [];
    const todo: { name: string; text: string; what: string; keys: { ssid: string; pskHex: string }[] }[] = [];
    for (const f of files) {
      if (f.text === undefined) continue;
      if (source === "paio-config" && f.name === CONFIG_FILE) {
        let valid = true;
        try {
          Bun.TOML.parse(f.text);
        } catch {
          valid = false;
        }
        const out = valid ? scrub(f.text, TOML_SECRETS, "toml", date, f.name) : undefined;
        if (!valid && maySecret(f.text)) problems.push({ part: "file", file: f.name, message: `${f.name} is not valid TOML, so it was left as it is on the boot partition, and it may hold the Wi-Fi key; fix it (or delete it) soon` });
        if (out !== undefined) {
          const keys = keysInConfig(f.text);
          todo.push({ name: f.name, text: out, what: keys.length ? `the key of Wi-Fi network ${keys.map((k) => `'${k.ssid}'`).join(", ")}` : "a Wi-Fi key", keys });
        }
      } else if (source === "cloud-init" && (f.name === NETWORK_CONFIG || f.name === USER_DATA)) {
        let parsed: YamlValue;
        try {
          parsed = parseYaml(f.text);
        } catch {
          if (maySecret(f.text)) problems.push({ part: "file", file: f.name, message: `${f.name} could not be read, so it was left as it is on the boot partition, and it may hold ${f.name === NETWORK_CONFIG ? "the Wi-Fi password" : "a password"}; fix it (or delete it) soon` });
          continue;
        }
        const names = f.name === NETWORK_CONFIG ? NETWORK_SECRETS : USER_SECRETS;
        const out = scrub(f.text, names, "yaml", date, f.name);
        if (out === undefined) continue;
        const keys = f.name === NETWORK_CONFIG ? keysInNetworkConfig(parsed) : [];
        todo.push({ name: f.name, text: out, what: f.name === NETWORK_CONFIG ? (keys.length ? `the password of Wi-Fi network ${keys.map((k) => `'${k.ssid}'`).join(", ")}` : "a Wi-Fi password") : "the users' password hashes (this device has no password logins)", keys });
      }
    }
    for (const t of todo) {
      try {
        // The key is safe on the data partition before it leaves the boot partition.
        if (t.keys.length) this.keepKeys(t.keys);
        this.writeBoot(t.name, t.text);
        removed.push(`${t.name}: ${t.what}`);
      } catch (e) {
        problems.push({ part: "file", file: t.name, message: `could not remove ${t.what} from ${t.name} on the boot partition: ${why(e)}; delete the file by hand` });
      }
    }
    return removed;
  }
}

/** Imports the first-boot settings found under paths.boot into paths.state. */
export function importFirstBootSettings(paths: ImportPaths, opts: ImportOptions): ImportReport {
  return new Importer(paths, opts).run();
}

/** Lines for the console: what was imported, removed and refused. */
export function describeReport(r: ImportReport): string[] {
  const out: string[] = [];
  for (const i of r.imported) out.push(`first-boot settings from ${i.files.join(", ")}: ${i.applied.length ? i.applied.join("; ") : "nothing applied"}`);
  for (const s of r.secretsRemoved) out.push(`first-boot settings: removed from the boot partition: ${s}`);
  for (const n of r.notes) out.push(`first-boot settings: note: ${n}`);
  for (const p of r.problems) out.push(`first-boot settings: PROBLEM: ${p.message}`);
  return out;
}


// The network unit: applies network.toml (links, static addresses, DHCP,
// Wi-Fi, DNS, host name), keeps the firewall in step with the units' declared
// ports, and watches the links, publishing every change of state as an event
// on the control socket. Its children (udhcpc, wpa_supplicant) live in its
// cgroup; a bad configuration file changes nothing that runs.

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Subprocess } from "bun";
import { readConfigFile } from "../../lib/config/read.ts";
import type { NetEvent, NetworkStatus } from "../control/network-state.ts";
import { NETWORK_STATE_FILE } from "../control/network-state.ts";
import type { PublishedEvent, UnitSummary } from "../control/protocol.ts";
import { HOSTNAME_RE, parseNetworkFile, scrubPassphrases, settingsFor, unknownInterfaces, type InterfaceConfig, type NetworkConfig } from "../../lib/config/network.ts";
import { rulesetFor, type OpenPort } from "./firewall.ts";
import { defaultRoute, interfaceNames, isWireless, linkState, readLease } from "./links.ts";
import { parsePort } from "../../lib/config/measure.ts";

export interface NetworkPaths {
  imageFile: string;
  deviceFile: string;
  /** The last configuration applied, used at boot when the device's file is broken. */
  appliedFile: string;
  /** The last configuration with which the device was connected: the fallback when a new one never connects. */
  lastGoodFile: string;
  runNet: string;
  stateFile: string;
  udhcpcScript: string;
}

export const DEFAULT_PATHS: NetworkPaths = {
  imageFile: "/etc/paio/network.toml",
  deviceFile: "/var/lib/paio/network.toml",
  appliedFile: "/var/lib/paio/net/applied.toml",
  lastGoodFile: "/var/lib/paio/net/last-good.toml",
  runNet: "/run/paio/net",
  stateFile: NETWORK_STATE_FILE,
  udhcpcScript: "/usr/libexec/paio/udhcpc-script",
};

const ACTIVE_STATES = new Set(["starting", "running", "degraded", "unhealthy"]);
/** A new configuration that has not connected within this long is replaced by the last one that did. */
export const FALLBACK_AFTER_MS = Number(process.env.PAIO_NET_FALLBACK_S ?? 90) * 1000;
const MAX_EVENTS = 50;

function run(argv: string[], input?: string): { ok: boolean; out: string } {
  try {
    const r = Bun.spawnSync(argv, { stdin: input === undefined ? "ignore" : Buffer.from(input), stdout: "pipe", stderr: "pipe", timeout: 10_000 });
    return { ok: r.exitCode === 0, out: (r.stdout.toString() + r.stderr.toString()).trim() };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

/** The running host name, from the kernel (no process started for it). */
function kernelHostname(): string {
  try {
    return readFileSync("/proc/sys/kernel/hostname", "utf8").trim();
  } catch {
    return "";
  }
}

function writeAtomic(path: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, text, { mode });
  renameSync(`${path}.tmp`, path);
}

export class NetworkUnit {
  private config: NetworkConfig | undefined;
  private applied = new Map<string, string>();
  private dhcp = new Map<string, Subprocess>();
  private wpa = new Map<string, Subprocess>();
  private generation = 0;
  private source: string | undefined;
  private appliedAt: number | undefined;
  private error: string | undefined;
  private events: NetEvent[] = [];
  private previous = new Map<string, { carrier: boolean; addresses: string; reachable?: boolean }>();
  private hadRoute: boolean | undefined;
  private reachable = new Map<string, { ok: boolean; at: number }>();
  private firewall: NetworkStatus["firewall"] = { active: false, open: [] };
  private openPorts: OpenPort[] = [];
  private stopping = false;

  constructor(
    private paths: NetworkPaths,
    private say: (line: string) => void,
    private publish: (e: PublishedEvent) => void,
  ) {}

  /** Reads the device's file (or the image's), checks it against this device; nothing is changed on error. */
  private load(): { ok: true; config: NetworkConfig; text: string } | { ok: false; error: string } {
    const path = existsSync(this.paths.deviceFile) ? this.paths.deviceFile : this.paths.imageFile;
    const read = readConfigFile(path);
    if (!read.ok) return { ok: false, error: read.error };
    const parsed = parseNetworkFile(read.text, path);
    if (!parsed.ok) return parsed;
    const unknown = unknownInterfaces(parsed.config, interfaceNames(), read.text);
    if (unknown.length) return { ok: false, error: unknown.join("; ") };
    return { ok: true, config: parsed.config, text: read.text };
  }

  /** Applies the configuration file; returns the error, if any (the running configuration then stays). */
  apply(boot = false): string | undefined {
    let loaded = this.load();
    this.generation++;
    if (!loaded.ok) {
      this.error = loaded.error;
      this.say(`network: ${loaded.error}; ${this.config ? "the running configuration stays" : "using the last applied configuration"}`);
      if (this.config || !boot) {
        this.writeStatus();
        return loaded.error;
      }
      // At boot there is nothing running yet: the last configuration that connected, else the last applied, else the image's.
      const fallback = [this.paths.lastGoodFile, this.paths.appliedFile, this.paths.imageFile].map((p) => ({ p, r: readConfigFile(p) })).find((x) => x.r.ok);
      const parsed = fallback && fallback.r.ok ? parseNetworkFile(fallback.r.text, fallback.p) : undefined;
      if (!parsed?.ok) {
        this.writeStatus();
        return loaded.error;
      }
      loaded = { ok: true, config: parsed.config, text: fallback!.r.ok ? fallback!.r.text : "" };
    } else {
      this.error = undefined;
    }
    let { config, text } = loaded;
    if (config.plainPsk && config.path === this.paths.deviceFile) {
      // The passphrase is replaced by the derived key before anything else happens.
      text = scrubPassphrases(text, config);
      writeAtomic(config.path, text, 0o600);
      this.say(`network: Wi-Fi passphrases in ${config.path} replaced by their derived keys`);
    }
    this.applyConfig(config, text);
    return undefined;
  }

  /** The text of the running configuration, and since when it has been waiting to connect. */
  private appliedText = "";
  private waitingSince: number | undefined;

  private applyConfig(config: NetworkConfig, text: string): void {
    this.config = config;
    this.source = config.path;
    this.appliedAt = Date.now();
    this.appliedText = text;
    this.waitingSince = Date.now();
    this.reachable.clear();
    if (config.path !== this.paths.appliedFile) {
      try {
        writeAtomic(this.paths.appliedFile, text, 0o600);
      } catch (e) {
        this.say(`network: cannot keep a copy of the applied configuration: ${(e as Error).message}`);
      }
    }
    // The file's host name, else the device's own (first-boot settings, docs/provisioning.md), else the image's
    // again (a name set by an earlier configuration does not linger).
    const own = readConfigFile(join(dirname(this.paths.deviceFile), "hostname"));
    const image = readConfigFile("/etc/hostname");
    const ownName = own.ok && HOSTNAME_RE.test(own.text.trim()) ? own.text.trim() : undefined;
    const hostname = config.hostname ?? ownName ?? (image.ok ? image.text.trim() : "");
    if (hostname) {
      try {
        writeFileSync("/proc/sys/kernel/hostname", hostname);
      } catch (e) {
        this.say(`network: cannot set the host name: ${(e as Error).message}`);
      }
    }
    for (const name of interfaceNames()) this.applyInterface(name, settingsFor(config, name, isWireless(name)));
    this.writeResolvConf();
    this.writeTimeConfig();
    this.say(`network: applied ${config.path} (${interfaceNames().map((n) => `${n}: ${this.modeOf(n)}`).join(", ") || "no interfaces"})`);
    this.writeStatus();
  }

  /**
   * Connected: an interface with a link and an address, whose gateway answers
   * when there is a default route through it. The first time a configuration
   * gets there it becomes the last good one; one that does not get there in
   * time is replaced by the last good one (when that differs).
   */
  /** True when it fell back (the links of the moment are then out of date). */
  private checkConnected(links: NetworkStatus["interfaces"]): boolean {
    if (this.waitingSince === undefined) return false;
    // The gateway the configuration (or the DHCP lease) names must answer; the routing table of the moment is not asked.
    const config = this.config;
    const connected = links.some((l) => {
      if (!l.carrier || l.addresses.length === 0) return false;
      const gateway = (config && settingsFor(config, l.name, l.wireless)?.gateway) ?? l.lease?.router;
      return gateway === undefined || this.gatewayReachable(l.name, gateway);
    });
    if (connected) {
      this.waitingSince = undefined;
      try {
        writeAtomic(this.paths.lastGoodFile, this.appliedText, 0o600);
      } catch (e) {
        this.say(`network: cannot keep the last good configuration: ${(e as Error).message}`);
      }
      return false;
    }
    if (Date.now() - this.waitingSince < FALLBACK_AFTER_MS) return false;
    this.waitingSince = undefined; // one fallback per apply: never a loop
    const good = readConfigFile(this.paths.lastGoodFile);
    if (!good.ok || good.text === this.appliedText) return false;
    const parsed = parseNetworkFile(good.text, this.paths.lastGoodFile);
    if (!parsed.ok) return false;
    const from = this.source;
    this.error = `${from} did not connect within ${FALLBACK_AFTER_MS / 1000} s; went back to the last configuration that did (${this.paths.lastGoodFile})`;
    this.event("fallback", `network: ${this.error}`);
    this.applyConfig(parsed.config, good.text);
    this.waitingSince = undefined;
    return true;
  }

  private modeOf(name: string): string {
    const s = this.config && settingsFor(this.config, name, isWireless(name));
    if (!s || !s.enabled) return "off";
    return `${s.wifi ? `wifi '${s.wifi.ssid}', ` : ""}${s.dhcp ? "dhcp" : `static ${s.address}`}`;
  }

  private applyInterface(name: string, s: InterfaceConfig | undefined): void {
    const key = JSON.stringify(s ?? null);
    if (this.applied.get(name) === key) return; // unchanged: nothing is touched
    this.teardown(name);
    this.applied.set(name, key);
    if (!s || !s.enabled) {
      run(["ip", "link", "set", name, "down"]);
      return;
    }
    const up = run(["ip", "link", "set", name, "up"]);
    if (!up.ok) this.say(`network: cannot bring ${name} up: ${up.out}`);
    if (s.wifi) this.startWpa(name, s.wifi);
    if (s.dhcp) {
      this.startDhcp(name);
    } else if (s.address) {
      const add = run(["ip", "addr", "add", s.address, "dev", name]);
      if (!add.ok) this.say(`network: cannot add ${s.address} to ${name}: ${add.out}`);
      if (s.gateway) {
        const r = run(["ip", "route", "replace", "default", "via", s.gateway, "dev", name]);
        if (!r.ok) this.say(`network: cannot set the default route via ${s.gateway}: ${r.out}`);
      }
    }
  }

  /** Stops what runs for an interface and removes its addresses and routes. */
  private teardown(name: string): void {
    for (const map of [this.dhcp, this.wpa]) {
      const p = map.get(name);
      map.delete(name);
      if (p && p.exitCode === null) p.kill("SIGTERM");
    }
    run(["ip", "-4", "addr", "flush", "dev", name]);
    run(["ip", "-4", "route", "flush", "dev", name]);
    Bun.spawnSync(["rm", "-f", join(this.paths.runNet, `lease.${name}`)]);
  }

  private startDhcp(name: string): void {
    const host = this.config?.hostname ?? (kernelHostname() || "paio");
    // -f: stay in the foreground (we supervise it); the script sets addresses and routes.
    const argv = ["udhcpc", "-f", "-i", name, "-s", this.paths.udhcpcScript, "-t", "4", "-T", "2", "-A", "5", "-x", `hostname:${host}`];
    const p = Bun.spawn(argv, { stdin: "ignore", stdout: "inherit", stderr: "inherit", env: { ...process.env, PAIO_RUN_NET: this.paths.runNet } });
    this.dhcp.set(name, p);
    void p.exited.then((code) => {
      if (this.stopping || this.dhcp.get(name) !== p) return;
      this.say(`network: the DHCP client of ${name} exited (${code}); starting it again in 2 s`);
      setTimeout(() => {
        if (this.dhcp.get(name) === p && !this.stopping) this.startDhcp(name);
      }, 2000);
    });
  }

  private startWpa(name: string, wifi: { ssid: string; pskHex: string }): void {
    const conf = join(this.paths.runNet, `wpa.${name}.conf`);
    // The SSID is written hex-encoded: any bytes are safe there.
    writeAtomic(conf, `ctrl_interface=${join(this.paths.runNet, "wpa")}\nnetwork={\n  ssid=${Buffer.from(wifi.ssid).toString("hex")}\n  psk=${wifi.pskHex}\n}\n`, 0o600);
    const p = Bun.spawn(["wpa_supplicant", "-i", name, "-c", conf, "-D", "nl80211,wext"], { stdin: "ignore", stdout: "inherit", stderr: "inherit" });
    this.wpa.set(name, p);
    void p.exited.then((code) => {
      if (this.stopping || this.wpa.get(name) !== p) return;
      this.say(`network: wpa_supplicant on ${name} exited (${code}); starting it again in 5 s`);
      setTimeout(() => {
        if (this.wpa.get(name) === p && !this.stopping) this.startWpa(name, wifi);
      }, 5000);
    });
  }

  /** Restarts an interface's DHCP client (or Wi-Fi): a remedy the agent may ask for. */
  renew(name: string): void {
    this.applied.delete(name);
    if (this.config) this.applyInterface(name, settingsFor(this.config, name, isWireless(name)));
    this.event("renew", `${name}: DHCP and Wi-Fi started again on request`, name);
  }

  /** Takes an interface down and up again, then renews it: the next remedy when renewing alone did not help. */
  bounce(name: string): void {
    run(["ip", "link", "set", name, "down"]);
    this.applied.delete(name);
    if (this.config) this.applyInterface(name, settingsFor(this.config, name, isWireless(name)));
    this.event("bounce", `${name}: link taken down and up again on request`, name);
  }

  private dnsServers(): string[] {
    const out: string[] = [];
    for (const name of interfaceNames()) {
      const s = this.config && settingsFor(this.config, name, isWireless(name));
      const lease = readLease(name, this.paths.runNet);
      for (const d of [...(s?.dns ?? []), ...(s?.dhcp ? (lease?.dns ?? []) : [])]) if (!out.includes(d)) out.push(d);
    }
    return out;
  }

  /** The name servers last written to resolv.conf: the file is only rewritten when they change. */
  private dns: string[] | undefined;

  private writeResolvConf(): void {
    const servers = this.dnsServers();
    if (this.dns && this.dns.join(" ") === servers.join(" ")) return;
    const text = `# written by PAIO's network unit from network.toml and DHCP; do not edit\n${servers.map((s) => `nameserver ${s}`).join("\n")}\n`;
    const path = join(this.paths.runNet, "resolv.conf");
    try {
      writeAtomic(path, text);
      this.dns = servers;
    } catch (e) {
      this.say(`network: cannot write ${path}: ${(e as Error).message}`);
    }
  }

  /** chrony's configuration, for the time unit: the servers of network.toml. */
  private writeTimeConfig(): void {
    const servers = this.config?.ntp ?? [];
    const text = [
      "# written by PAIO's network unit from network.toml (ntp = [...])",
      ...servers.map((s) => `server ${s} iburst`),
      "makestep 1.0 3",
      "driftfile /var/lib/paio/net/chrony.drift",
      "rtcsync",
      "",
    ].join("\n");
    try {
      writeAtomic(join(this.paths.runNet, "chrony.conf"), text);
    } catch (e) {
      this.say(`network: cannot write chrony's configuration: ${(e as Error).message}`);
    }
  }

  /** Opens the ports of active units, closes the rest; all in one nft transaction. */
  setUnits(units: UnitSummary[]): void {
    const ports: OpenPort[] = [];
    for (const u of units) {
      if (!ACTIVE_STATES.has(u.state)) continue;
      for (const p of u.ports ?? []) {
        const parsed = parsePort(p);
        if (parsed) ports.push({ ...parsed, unit: u.name });
      }
    }
    const key = (l: OpenPort[]) => JSON.stringify(l.map((p) => `${p.unit}:${p.port}/${p.proto}`).sort());
    if (this.firewall.active && key(ports) === key(this.openPorts)) return;
    this.applyFirewall(ports);
  }

  applyFirewall(ports: OpenPort[] = this.openPorts): void {
    const r = run(["nft", "-f", "-"], rulesetFor(ports));
    if (!r.ok) {
      this.firewall = { active: false, open: [], error: `nft: ${r.out}` };
      this.say(`network: cannot load the firewall rules: ${r.out}`);
      return;
    }
    const open = [...new Set(ports.map((p) => `${p.port}/${p.proto} (${p.unit})`))].sort();
    const before = new Set(this.openPorts.map((p) => `${p.port}/${p.proto} (${p.unit})`));
    this.openPorts = ports;
    this.firewall = { active: true, open };
    const opened = open.filter((o) => !before.has(o));
    const closed = [...before].filter((o) => !open.includes(o));
    if (opened.length) this.event("port-open", `firewall: opened ${opened.join(", ")}`);
    if (closed.length) this.event("port-closed", `firewall: closed ${closed.join(", ")}`);
  }

  private event(kind: string, message: string, subject?: string): void {
    const e: NetEvent = { kind, message, subject, time: Date.now() };
    this.events.push(e);
    if (this.events.length > MAX_EVENTS) this.events.shift();
    this.publish({ event: "network", ...e });
  }

  /** Gateway reachability by ARP (works whatever the gateway answers to ping); checked at most every 10 s per gateway. */
  private gatewayReachable(iface: string, gateway: string): boolean {
    const key = `${iface} ${gateway}`;
    const last = this.reachable.get(key);
    if (last && Date.now() - last.at < 10_000) return last.ok;
    const ok = run(["arping", "-c", "1", "-w", "2", "-I", iface, gateway]).ok;
    this.reachable.set(key, { ok, at: Date.now() });
    return ok;
  }

  /** One look at every link; changes become events. */
  watch(): NetworkStatus {
    const route = defaultRoute();
    const links = interfaceNames().map((n) => {
      const st = linkState(n, undefined, this.paths.runNet);
      const gatewayReachable = route && route.iface === n && st.carrier ? this.gatewayReachable(n, route.gateway) : undefined;
      return { ...st, mode: this.modeOf(n), gatewayReachable };
    });
    for (const l of links) {
      const prev = this.previous.get(l.name);
      const addresses = l.addresses.join(" ");
      if (prev) {
        if (prev.carrier && !l.carrier) this.event("link-down", `${l.name}: link down (no carrier)`, l.name);
        if (!prev.carrier && l.carrier) this.event("link-up", `${l.name}: link up`, l.name);
        if (prev.addresses && !addresses) this.event("address-lost", `${l.name}: lost its address ${prev.addresses}`, l.name);
        if (addresses && prev.addresses !== addresses) this.event("address", `${l.name}: address ${addresses}`, l.name);
        if (prev.reachable === true && l.gatewayReachable === false) this.event("gateway-unreachable", `${l.name}: gateway ${route?.gateway} does not answer`, l.name);
        if (prev.reachable === false && l.gatewayReachable === true) this.event("gateway-reachable", `${l.name}: gateway ${route?.gateway} answers again`, l.name);
      } else if (addresses) {
        this.event("address", `${l.name}: address ${addresses}`, l.name);
      }
      this.previous.set(l.name, { carrier: l.carrier, addresses, reachable: l.gatewayReachable ?? prev?.reachable });
    }
    const hasRoute = route !== undefined;
    if (this.hadRoute === true && !hasRoute) this.event("route-lost", "no default route any more");
    if (this.hadRoute === false && hasRoute) this.event("route", `default route via ${route!.gateway} (${route!.iface})`);
    this.hadRoute = hasRoute;
    const fellBack = this.checkConnected(links);
    this.writeResolvConf();
    return fellBack ? this.writeStatus() : this.writeStatus(links, route);
  }

  private timeValue: NetworkStatus["time"] = { synchronised: false, detail: "not checked yet" };
  private timeCheckedAt = 0;

  /** Asks chrony (in the background, never blocking the watch loop) whether the clock is synchronised. */
  private refreshTime(): void {
    if (Date.now() - this.timeCheckedAt < 10_000) return;
    this.timeCheckedAt = Date.now();
    void (async () => {
      try {
        const p = Bun.spawn(["chronyc", "-n", "tracking"], { stdout: "pipe", stderr: "pipe", timeout: 3000 });
        const out = (await new Response(p.stdout).text()) + (await new Response(p.stderr).text());
        const code = await p.exited;
        if (code !== 0) {
          this.timeValue = { synchronised: false, detail: "the time unit is not answering" };
          return;
        }
        const leap = /Leap status\s*:\s*(.*)/.exec(out)?.[1]?.trim() ?? "unknown";
        const ref = /Reference ID\s*:\s*(\S+)/.exec(out)?.[1]?.trim() ?? "";
        const synced = leap !== "Not synchronised" && ref !== "" && ref !== "00000000";
        this.timeValue = { synchronised: synced, detail: synced ? `${leap}; reference ${ref}` : "no time server reachable yet" };
      } catch {
        this.timeValue = { synchronised: false, detail: "chrony is not installed" };
      }
    })();
  }

  writeStatus(links?: NetworkStatus["interfaces"], route = defaultRoute()): NetworkStatus {
    this.refreshTime();
    const status: NetworkStatus = {
      pid: process.pid,
      generation: this.generation,
      source: this.source,
      appliedAt: this.appliedAt,
      error: this.error,
      hostname: kernelHostname(),
      interfaces: links ?? interfaceNames().map((n) => ({ ...linkState(n, undefined, this.paths.runNet), mode: this.modeOf(n) })),
      route,
      dns: this.dns ?? [],
      time: this.timeValue,
      firewall: this.firewall,
      events: this.events.slice(-20),
    };
    try {
      writeAtomic(this.paths.stateFile, JSON.stringify(status, null, 1) + "\n");
    } catch (e) {
      this.say(`network: cannot write ${this.paths.stateFile}: ${(e as Error).message}`);
    }
    return status;
  }

  stop(): void {
    this.stopping = true;
    for (const p of [...this.dhcp.values(), ...this.wpa.values()]) if (p.exitCode === null) p.kill("SIGTERM");
  }
}

/** The run-time folder and an empty resolv.conf, before anything else is written. */
export function ensureRunNet(paths: NetworkPaths): void {
  mkdirSync(paths.runNet, { recursive: true });
  mkdirSync(dirname(paths.appliedFile), { recursive: true });
  const resolv = join(paths.runNet, "resolv.conf");
  if (!existsSync(resolv)) writeFileSync(resolv, "# no name servers yet\n");
}

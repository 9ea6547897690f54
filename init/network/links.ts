// What the device's network looks like right now, read from the kernel
// (/sys/class/net, /proc/net) and from the files the network unit keeps in
// /run/paio/net: one snapshot per call, no state kept here.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import type { Lease, LinkState } from "../control/network-state.ts";

export type { Lease, LinkState };

export const RUN_NET = "/run/paio/net";

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Ethernet-like interfaces (wired and Wi-Fi), in name order: no loopback, no tunnels such as sit0. */
export function interfaceNames(sys = "/sys/class/net"): string[] {
  try {
    // ARPHRD_ETHER (1) covers both; tunnels and loopback have other types.
    return readdirSync(sys).filter((n) => read(join(sys, n, "type")) === "1").sort();
  } catch {
    return [];
  }
}

export function isWireless(name: string, sys = "/sys/class/net"): boolean {
  return existsSync(join(sys, name, "wireless")) || existsSync(join(sys, name, "phy80211"));
}

/** Signal levels from /proc/net/wireless (dBm), by interface. */
export function wifiSignals(text = read("/proc/net/wireless") ?? ""): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n").slice(2)) {
    const m = /^\s*([^:\s]+):\s+\S+\s+\S+\s+(-?\d+)\.?/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** The default route's gateway and interface, from /proc/net/route (addresses are little-endian hex). */
export function defaultRoute(text = read("/proc/net/route") ?? ""): { gateway: string; iface: string } | undefined {
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[1] !== "00000000" || f[7] !== "00000000") continue;
    const g = f[2]!;
    const bytes = [6, 4, 2, 0].map((i) => parseInt(g.slice(i, i + 2), 16));
    return { gateway: bytes.join("."), iface: f[0]! };
  }
  return undefined;
}

export function parseLease(text: string): Lease | undefined {
  const kv = new Map(text.split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as const).filter(([k]) => k));
  const ip = kv.get("ip");
  const prefix = Number(kv.get("mask"));
  if (!ip || !Number.isInteger(prefix)) return undefined;
  return {
    ip,
    prefix,
    router: kv.get("router")?.split(" ")[0] || undefined,
    dns: (kv.get("dns") ?? "").split(" ").filter(Boolean),
    leaseSeconds: kv.has("lease") ? Number(kv.get("lease")) : undefined,
    at: Number(kv.get("at") ?? 0) * 1000,
  };
}

export function readLease(name: string, runNet = RUN_NET): Lease | undefined {
  const text = read(join(runNet, `lease.${name}`));
  return text === undefined ? undefined : parseLease(text);
}

export function linkState(name: string, sys = "/sys/class/net", runNet = RUN_NET): LinkState {
  const flags = parseInt(read(join(sys, name, "flags")) ?? "0", 16);
  const addrs = (networkInterfaces()[name] ?? []).filter((a) => a.family === "IPv4").map((a) => a.cidr ?? a.address);
  return {
    name,
    wireless: isWireless(name, sys),
    up: (flags & 1) === 1,
    // Reading `carrier` of a link that is down fails: no carrier then.
    carrier: read(join(sys, name, "carrier")) === "1",
    addresses: addrs,
    signalDbm: wifiSignals().get(name),
    lease: readLease(name, runNet),
  };
}

/** Name servers in a resolv.conf. */
export function nameServers(text: string): string[] {
  return text
    .split("\n")
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((x): x is string => !!x);
}

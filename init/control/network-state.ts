// The network unit's state file (/run/paio/network.json): what it writes and
// what `paio net`, the agent and the console read. Its shape is part of the
// control interface, like the socket protocol beside it.

import { readFileSync } from "node:fs";

export const NETWORK_STATE_FILE = process.env.PAIO_NETWORK_STATE ?? "/run/paio/network.json";

export interface Lease {
  ip: string;
  prefix: number;
  router?: string;
  dns: string[];
  leaseSeconds?: number;
  at: number;
}

export interface LinkState {
  name: string;
  wireless: boolean;
  /** The administrative state: set up by us. */
  up: boolean;
  /** A cable (or an association) is there. */
  carrier: boolean;
  /** IPv4 addresses with prefix length. */
  addresses: string[];
  /** Wi-Fi signal in dBm, when the interface is wireless and associated. */
  signalDbm?: number;
  lease?: Lease;
}

export interface NetEvent {
  kind: string;
  subject?: string;
  message: string;
  time: number;
}

export interface NetworkStatus {
  /** The network unit's process that wrote this. */
  pid: number;
  generation: number;
  /** The file the running configuration came from, and when it was applied. */
  source?: string;
  appliedAt?: number;
  /** The last apply's error: the running configuration stayed as it was. */
  error?: string;
  hostname: string;
  interfaces: (LinkState & { mode: string; gatewayReachable?: boolean })[];
  route?: { gateway: string; iface: string };
  dns: string[];
  time: { synchronised: boolean; detail: string };
  firewall: { active: boolean; open: string[]; error?: string };
  events: NetEvent[];
}

/** The network unit's last written state, or undefined when it has written none. */
export function readNetworkStatus(path = NETWORK_STATE_FILE): NetworkStatus | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as NetworkStatus;
  } catch {
    return undefined;
  }
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

/** What `paio net` prints, and the console's answer to "is the network up?". */
export function formatNetworkStatus(st: NetworkStatus): string {
  const lines = [`host name: ${st.hostname}   configuration: ${st.source ?? "none"}${st.appliedAt ? ` (applied ${ago(st.appliedAt)} ago)` : ""}`];
  if (st.error) lines.push(`last apply refused: ${st.error}`);
  for (const i of st.interfaces) {
    const link = !i.up ? "down" : i.carrier ? "up" : "up, no carrier";
    const wifi = i.wireless ? `, Wi-Fi${i.signalDbm !== undefined ? ` ${i.signalDbm} dBm` : " not associated"}` : "";
    const lease = i.lease ? `, DHCP lease ${i.lease.ip}/${i.lease.prefix}${i.lease.leaseSeconds ? ` for ${i.lease.leaseSeconds} s` : ""}` : "";
    const gw = i.gatewayReachable === undefined ? "" : i.gatewayReachable ? ", gateway answers" : ", gateway does not answer";
    lines.push(`${i.name}: ${link} (${i.mode})${wifi}; address ${i.addresses.join(" ") || "none"}${lease}${gw}`);
  }
  lines.push(`default route: ${st.route ? `via ${st.route.gateway} (${st.route.iface})` : "none"}`);
  lines.push(`DNS: ${st.dns.join(", ") || "none"}`);
  lines.push(`time: ${st.time.synchronised ? "synchronised" : "not synchronised"} (${st.time.detail})`);
  // SSH is always let in (never lock the person out); other ports as units declare them.
  const others = st.firewall.open.filter((o) => !o.startsWith("22/tcp "));
  lines.push(`firewall: ${st.firewall.active ? `on, default deny inbound; open: ssh 22/tcp${others.length ? `, ${others.join(", ")}` : ""}` : `OFF${st.firewall.error ? ` (${st.firewall.error})` : ""}`}`);
  if (st.events.length) {
    lines.push("recent events:");
    for (const e of st.events.slice(-8)) lines.push(`  ${ago(e.time)} ago  ${e.message}`);
  }
  return lines.join("\n");
}


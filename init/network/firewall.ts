// The firewall: one nftables table, default deny inbound. Allowed: loopback,
// established traffic, ICMP echo (and IPv6 neighbour discovery), SSH, DHCP
// replies, and the ports that running units declare (`ports` in their unit
// files). The whole table is replaced in one nft transaction, so there is
// never a moment with half a rule set.
import { formatPort, type Port } from "../../lib/config/measure.ts";

export interface OpenPort extends Port {
  unit: string;
}

export const SSH_PORT = 22;
export const TABLE = "paio";

/** The nft script that replaces PAIO's table; `ports` are the running units' declared ports. */
export function rulesetFor(ports: OpenPort[]): string {
  const sorted = [...ports].sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port || a.unit.localeCompare(b.unit));
  const seen = new Set<string>();
  const unitRules: string[] = [];
  for (const p of sorted) {
    const key = formatPort(p);
    if (seen.has(key) || key === `${SSH_PORT}/tcp`) continue; // SSH has its own rule, always there
    seen.add(key);
    const owners = sorted.filter((q) => formatPort(q) === key).map((q) => q.unit);
    // The comment names the units: `nft list ruleset` says why a port is open.
    unitRules.push(`    ${p.proto} dport ${p.port} accept comment "unit ${owners.join(",").replace(/[^A-Za-z0-9_.@,-]/g, "")}"`);
  }
  return [
    `table inet ${TABLE}`,
    `delete table inet ${TABLE}`,
    `table inet ${TABLE} {`,
    `  chain input {`,
    `    type filter hook input priority filter; policy drop;`,
    `    iif "lo" accept`,
    `    ct state established,related accept`,
    `    ct state invalid drop`,
    `    icmp type echo-request accept`,
    `    icmpv6 type { echo-request, nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept`,
    `    udp sport 67 udp dport 68 accept comment "DHCP replies"`,
    `    tcp dport ${SSH_PORT} accept comment "ssh"`,
    ...unitRules,
    `  }`,
    `  chain forward {`,
    `    type filter hook forward priority filter; policy drop;`,
    `  }`,
    `}`,
    "",
  ].join("\n");
}

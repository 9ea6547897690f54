#!/usr/bin/env bun
// `make bench`, network part: time from PID 1's start to an IPv4 address from
// DHCP (QEMU's user network), and the memory of what the network needs at
// idle: the network unit, dropbear, chronyd, and the firewall (nftables rules
// live in the kernel: no process; their size is shown). Figures are the
// guest's own uptime and /proc, over a few boots.

import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { Guest } from "../../qemu/guest.ts";
import { readFileSync } from "node:fs";
import { PRELUDE } from "../helpers/guest.ts";
import { NETWORK_PACKAGES } from "../../image/config.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const OUT = join(REPO, "out");
const ROUNDS = Number(process.env.PAIO_BENCH_ROUNDS ?? 3);

const SCRIPT = `${PRELUDE}
for i in $(seq 1 120); do [ -s /run/paio/net/lease.eth0 ] && break; sleep 0.5; done
# Let everything settle to idle before reading memory.
for i in $(seq 1 60); do [ -e /var/lib/paio/ssh/dropbear_ecdsa_host_key ] && [ -n "$(pgrep chronyd)" ] && break; sleep 0.5; done
sleep 10
echo "lease_at=$(sed -n 's/^at=//p' /run/paio/net/lease.eth0)"
rss() { p=$(pgrep "$1"); [ -n "$p" ] && sed -n 's/^VmRSS:[[:space:]]*\\([0-9]*\\) kB/\\1/p' /proc/$p/status || echo -1; }
echo "rss_network=$(rss /usr/lib/paio/network.js)"
echo "rss_dropbear=$(rss 'dropbear -F')"
echo "rss_chronyd=$(rss 'chronyd -d')"
echo "nft_rules_bytes=$(nft list table inet paio | wc -c)"
`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const rows: Record<string, number>[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const g = await Guest.start({ outDir: OUT, disk: join(OUT, "paio-x86_64.img"), arch: "x86_64", boot: "direct", snapshot: true });
  try {
    await g.waitReady(300_000);
    const { code, output } = await g.sh(SCRIPT, 240_000);
    if (code !== 0) throw new Error(`bench script failed (${code}):\n${output}`);
    const started = g.console.lines().map((l) => /paio-init: started at uptime ([\d.]+) s/.exec(l)?.[1]).find(Boolean);
    if (!started) throw new Error("no 'paio-init: started at uptime' line on the console");
    const kv = Object.fromEntries(output.trim().split("\n").filter((l) => l.includes("=")).map((l) => l.split("=") as [string, string]).map(([k, v]) => [k, Number(v)]));
    if (!(kv.lease_at! > 0)) throw new Error(`no DHCP lease time in:\n${output}`);
    for (const k of ["rss_network", "rss_dropbear", "rss_chronyd", "nft_rules_bytes"]) {
      if (!(kv[k]! > 0)) throw new Error(`${k} could not be measured (is the process running, is nft there?):\n${output}`);
    }
    rows.push({ ...kv, pid1: Number(started) });
    await g.shutdown();
  } finally {
    g.kill();
  }
}

const toAddress = rows.map((r) => r.lease_at! - r.pid1!);
console.log(`network (${ROUNDS} boots, ${rows[0] ? "QEMU user network, DHCP" : ""}):`);
console.log(`  PID 1 start -> DHCP address: median ${median(toAddress).toFixed(2)} s (min ${Math.min(...toAddress).toFixed(2)}, max ${Math.max(...toAddress).toFixed(2)})`);
for (const [key, name] of [["rss_network", "network unit (Bun)"], ["rss_dropbear", "dropbear"], ["rss_chronyd", "chronyd"]] as const) {
  const v = rows.map((r) => r[key]!);
  console.log(`  ${`${name} RSS at idle:`.padEnd(30)} median ${(median(v) / 1024).toFixed(1)} MiB`);
}
console.log(`  firewall: rules in the kernel (no process), table inet paio is ${median(rows.map((r) => r.nft_rules_bytes!))} bytes as text`);

// What networking adds to the root file system, from the image's manifest (uncompressed sizes).
const manifest = readFileSync(join(OUT, "manifest.tsv"), "utf8").trim().split("\n").slice(1).map((l) => l.split("\t"));
const byOrigin = new Map<string, { files: number; bytes: number }>();
for (const [path, type, , size, , , origin] of manifest) {
  if (type !== "file") continue;
  const pkg = /^debian:([^=]+)=/.exec(origin!)?.[1];
  const ours = /^\/usr\/lib\/paio\/network\.js$|^\/usr\/libexec\/paio\/(udhcpc-script|ssh-start|time-start)$|^\/etc\/paio\/(network\.toml|units\/(network|ssh|time)\.toml)$/.test(path!);
  const key = pkg && (NETWORK_PACKAGES as readonly string[]).includes(pkg) ? origin! : ours ? "paio (network unit, scripts, unit files)" : undefined;
  if (!key) continue;
  const e = byOrigin.get(key) ?? { files: 0, bytes: 0 };
  e.files++;
  e.bytes += Number(size);
  byOrigin.set(key, e);
}
const total = [...byOrigin.values()].reduce((a, e) => a + e.bytes, 0);
console.log(`  networking in the root file system: ${(total / 2 ** 20).toFixed(2)} MiB in ${[...byOrigin.values()].reduce((a, e) => a + e.files, 0)} files (uncompressed), by origin:`);
for (const [origin, e] of [...byOrigin].sort((a, b) => b[1].bytes - a[1].bytes)) console.log(`    ${origin.padEnd(46)} ${(e.bytes / 1024).toFixed(0).padStart(6)} KiB  ${e.files} files`);

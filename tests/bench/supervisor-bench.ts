#!/usr/bin/env bun
// `make bench`, second part: the service manager in one booted guest.
//  - kill -9 of a unit's process until it runs again, beside busybox init
//    respawning the same program in the same VM (in a PID namespace of its own);
//  - the supervisor's CPU time and resident memory with 20 idle units over 60 s.

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Guest } from "../../qemu/guest.ts";
import { PRELUDE } from "../helpers/guest.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const OUT = join(REPO, "out");
const ROUNDS = Number(process.env.PAIO_BENCH_ROUNDS ?? 5);
const IDLE_S = Number(process.env.PAIO_BENCH_IDLE_S ?? 60);

const SCRIPT = `
${PRELUDE}
now() { cut -d' ' -f1 /proc/uptime; }
statepid() { sed -n "/\\"$1\\"/,/}/s/.*\\"pid\\": \\([0-9]*\\).*/\\1/p" /run/paio/supervisor.json | head -n 1; }
# The one child of process $1 (from /proc, cheap enough to poll). It needs
# CONFIG_PROC_CHILDREN: without it the loops below would wait forever.
[ -e /proc/self/task/$$/children ] || { echo "FAIL: this kernel has no /proc/PID/task/PID/children (CONFIG_PROC_CHILDREN), which the benchmark polls"; exit 3; }
child() { cat /proc/$1/task/$1/children 2>/dev/null | cut -d' ' -f1; }

# A fixed 10 ms restart delay and a high start limit: this measures the mechanism, not the backoff policy.
printf 'exec = ["/bin/sleep", "100001"]\\nrestart = "always"\\nrestart_delay = "10ms"\\nrestart_delay_max = "10ms"\\nstart_limit = { burst = 1000, interval = "1m" }\\n' > /var/lib/paio/units/bench.toml
i=1; while [ $i -le 20 ]; do printf 'exec = ["/bin/sleep", "9999%02d"]\\nrestart = "always"\\n' $i > /var/lib/paio/units/idle$i.toml; i=$((i+1)); done
paio reload > /dev/null
sleep 3

# busybox init as PID 1 of a PID namespace, respawning the same kind of program.
mkdir -p /tmp/bbinit
printf '::respawn:/bin/sleep 100002\\n' > /tmp/bbinit/inittab
unshare -p -f -m sh -c 'mount -t tmpfs tmpfs /etc && cp /tmp/bbinit/inittab /etc/inittab && exec busybox init' > /dev/null 2>&1 &
sleep 2
bbinit=$(child $!)

r=1; while [ $r -le ${ROUNDS} ]; do
  old=$(statepid bench); t0=$(now); kill -9 $old
  while :; do new=$(statepid bench); [ -n "$new" ] && [ "$new" != "$old" ] && break; usleep 10000; done
  echo "paio $(echo "$(now) $t0" | awk '{printf "%.3f", $1-$2}')"
  old=$(child $bbinit); t0=$(now); kill -9 $old
  while :; do new=$(child $bbinit); [ -n "$new" ] && [ "$new" != "$old" ] && break; usleep 10000; done
  echo "busybox $(echo "$(now) $t0" | awk '{printf "%.3f", $1-$2}')"
  sleep 1
  r=$((r+1))
done

sup=$(cat /run/paio/supervisor.pid)
ticks() { awk '{print $14 + $15}' /proc/$sup/stat; }
c0=$(ticks); t0=$(now)
sleep ${IDLE_S}
c1=$(ticks); t1=$(now)
echo "idle_cpu_s $(echo "$c1 $c0" | awk '{printf "%.2f", ($1-$2)/100}') over $(echo "$t1 $t0" | awk '{printf "%.1f", $1-$2}')"
echo "rss_kb $(awk '/^VmRSS/{print $2}' /proc/$sup/status)"
echo "units $(paio units | tail -n +2 | wc -l)"
`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const guest = await Guest.start({ outDir: OUT, disk: join(OUT, "paio-x86_64.img"), arch: "x86_64", boot: "direct", snapshot: true });
try {
  await guest.waitReady(300_000);
  const { code, output } = await guest.sh(SCRIPT, (IDLE_S + 300) * 1000);
  if (code !== 0) throw new Error(`bench script failed (${code}):\n${output}`);
  const paio = [...output.matchAll(/^paio ([\d.]+)$/gm)].map((m) => Number(m[1]));
  const bb = [...output.matchAll(/^busybox ([\d.]+)$/gm)].map((m) => Number(m[1]));
  const idle = /idle_cpu_s ([\d.]+) over ([\d.]+)/.exec(output);
  const rss = Number(/rss_kb (\d+)/.exec(output)?.[1]);
  const units = /units (\d+)/.exec(output)?.[1];
  const ms = (x: number) => `${(x * 1000).toFixed(0)} ms`;
  console.log(`Service manager (${guest.accel.toUpperCase()}, same VM, ${paio.length} rounds; median [min-max])`);
  console.log(`  ${"kill -9 to running again: paio supervisor".padEnd(44)} ${ms(median(paio))}  [${ms(Math.min(...paio))}-${ms(Math.max(...paio))}]`);
  console.log(`  ${"kill -9 to respawned: busybox init".padEnd(44)} ${ms(median(bb))}  [${ms(Math.min(...bb))}-${ms(Math.max(...bb))}]`);
  if (idle) {
    const pct = (Number(idle[1]) / Number(idle[2])) * 100;
    console.log(`  ${`supervisor CPU, ${units} units (20 idle added) over ${idle[2]} s`.padEnd(44)} ${idle[1]} s (${pct.toFixed(2)}% of one core)`);
  }
  console.log(`  ${"supervisor resident memory (VmRSS)".padEnd(44)} ${(rss / 1024).toFixed(1)} MiB`);
  await guest.shutdown();
} finally {
  guest.kill();
}

#!/usr/bin/env bun
// `make bench`, the kernel's part: wake-up latency of a SCHED_OTHER task
// (cyclictest) in a foreground cgroup while hackbench loads a background
// cgroup — on the patched kernel with the foreground's cpu.latency.nice at 0
// and at -20, and on Debian's stock kernel — and hackbench's own run time
// with every hint at 0, patched against stock (the patches' overhead).
// Medians of ROUNDS runs; both kernels boot the same image otherwise.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Guest } from "../../qemu/guest.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const ROUNDS = Number(process.env.PAIO_BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.PAIO_BENCH_CYCLIC_S ?? 8);

function script(nices: number[]): string {
  return `
CG=/sys/fs/cgroup/paio
mkdir -p $CG/fg $CG/bg
p99() { awk '/^[0-9]/ { n += $2; c[$1+0] = $2 } /Overflows/ { o = $NF } END { t = n + o; want = t * 0.99; s = 0; for (i = 0; i <= 200000; i++) { s += c[i]; if (s >= want) { print i; exit } } print ">200000" }' "$1"; }
r=1; while [ $r -le ${ROUNDS} ]; do
  for nice in ${nices.join(" ")}; do
    [ -e $CG/fg/cpu.latency.nice ] && echo $nice > $CG/fg/cpu.latency.nice
    sh -c "echo \\$\\$ > $CG/bg/cgroup.procs; exec hackbench -l 1000000 -g 2" > /dev/null 2>&1 &
    hb=$!
    sleep 1
    out=$(sh -c "echo \\$\\$ > $CG/fg/cgroup.procs; exec cyclictest -q -D ${SECONDS} -i 10000 -h 200000 --histfile=/run/hist" 2>&1)
    kill -9 $hb 2>/dev/null; for p in $(cat $CG/bg/cgroup.procs); do kill -9 $p 2>/dev/null; done; wait 2>/dev/null
    avg=$(echo "$out" | sed -n 's/.*Avg: *\\([0-9]*\\).*/\\1/p' | head -n 1)
    echo "lat nice=$nice avg=$avg p99=$(p99 /run/hist)"
    sleep 1
  done
  t=$(sh -c "echo \\$\\$ > $CG/bg/cgroup.procs; exec hackbench -l 400 -g 4" 2>&1 | sed -n 's/^Time: *//p')
  echo "hb time=$t"
  r=$((r+1))
done
`;
}

interface Figures {
  lat: Map<number, { avg: number[]; p99: number[] }>;
  hb: number[];
}

async function measure(outDir: string, label: string, nices: number[]): Promise<Figures> {
  const guest = await Guest.start({ outDir, disk: join(outDir, "paio-x86_64.img"), boot: "direct", snapshot: true, cpus: 2 });
  try {
    await guest.waitReady(300_000);
    const { code, output } = await guest.sh(script(nices), 1_800_000);
    if (code !== 0) throw new Error(`${label}: bench script failed (${code}):\n${output}`);
    const lat = new Map<number, { avg: number[]; p99: number[] }>();
    for (const m of output.matchAll(/^lat nice=(-?\d+) avg=(\d+) p99=(\d+)$/gm)) {
      const e = lat.get(Number(m[1])) ?? lat.set(Number(m[1]), { avg: [], p99: [] }).get(Number(m[1]))!;
      e.avg.push(Number(m[2]));
      e.p99.push(Number(m[3]));
    }
    const hb = [...output.matchAll(/^hb time=([\d.]+)$/gm)].map((m) => Number(m[1]));
    await guest.shutdown();
    return { lat, hb };
  } finally {
    guest.kill();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const ms = (us: number) => `${(us / 1000).toFixed(2)} ms`;

// The stock image: the same inputs with Debian's kernel.
const stockOut = mkdtempSync(join(tmpdir(), "paio-stock-"));
try {
  const built = Bun.spawnSync([join(REPO, "node_modules/.bin/bun"), join(REPO, "image/build.ts")], { env: { ...process.env, PAIO_OUT: stockOut, PAIO_KERNEL: "" }, stdout: "pipe", stderr: "pipe" });
  if (built.exitCode !== 0) throw new Error(`stock-kernel image: ${built.stdout}${built.stderr}`);
  const patched = await measure(join(REPO, "out"), "patched", [0, -20]);
  const stock = await measure(stockOut, "stock", [0]);
  console.log(`Kernel scheduling hooks (TCG, 2 vCPUs; cyclictest SCHED_OTHER every 10 ms for ${SECONDS} s beside hackbench; median of ${ROUNDS})`);
  const row = (name: string, f: Figures, nice: number) => {
    const e = f.lat.get(nice);
    console.log(`  ${name.padEnd(38)} wake-up latency avg ${e ? ms(median(e.avg)) : "-"}, p99 ${e ? ms(median(e.p99)) : "-"}`);
  };
  row("stock kernel", stock, 0);
  row("patched, foreground latency.nice 0", patched, 0);
  row("patched, foreground latency.nice -20", patched, -20);
  const hbS = median(stock.hb);
  const hbP = median(patched.hb);
  console.log(`  hackbench -l 400 -g 4 run time: stock ${hbS.toFixed(3)} s, patched (hints 0) ${hbP.toFixed(3)} s: ${(((hbP - hbS) / hbS) * 100).toFixed(1)}% overhead`);
} finally {
  rmSync(stockOut, { recursive: true, force: true });
}

#!/usr/bin/env bun
// `make bench`, the kernel's part: wake-up latency of a SCHED_OTHER task
// (cyclictest) in a foreground cgroup while hackbench loads a background
// cgroup — on the patched kernel with the foreground's cpu.latency.nice at 0
// and at -20, and on Debian's stock kernel — and hackbench's own run time
// with every hint at 0, patched against the same kernel and configuration
// without the patches (the patches' overhead). Medians of ROUNDS runs; the
// kernels boot the same image otherwise. The unpatched kernel is built once
// (about as long as 'make kernel') and cached like the patched one.

import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync } from "node:fs";
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
# busybox awk reads a number with leading zeros (cyclictest writes "000123") as octal: dec() strips them.
p99() { awk 'function dec(s) { sub(/^0+/, "", s); return s + 0 } /^[0-9]/ { n += dec($2); c[dec($1)] = dec($2) } /Overflows:/ { o = dec($NF) } END { t = n + o; want = t * 0.99; s = 0; for (i = 0; i <= 200000; i++) { s += c[i]; if (s >= want) { print i; exit } } print ">200000" }' "$1"; }
r=1; while [ $r -le ${ROUNDS} ]; do
  for nice in ${nices.join(" ")}; do
    [ -e $CG/fg/cpu.latency.nice ] && echo $nice > $CG/fg/cpu.latency.nice
    sh -c "echo \\$\\$ > $CG/bg/cgroup.procs; exec hackbench -l 1000000 -g 2" > /dev/null 2>&1 &
    hb=$!
    sleep 1
    out=$(sh -c "echo \\$\\$ > $CG/fg/cgroup.procs; exec cyclictest -q -D ${SECONDS} -i 10000 -h 200000 --histfile=/run/hist" 2>&1)
    kill -9 $hb 2>/dev/null; for p in $(cat $CG/bg/cgroup.procs); do kill -9 $p 2>/dev/null; done; wait 2>/dev/null
    # With a histogram, cyclictest -q prints its summary into the histogram file.
    avg=$(sed -n 's/^# Avg Latencies: *0*\\([0-9][0-9]*\\)$/\\1/p' /run/hist)
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
  const guest = await Guest.start({ outDir, disk: join(outDir, "paio-x86_64.img"), arch: "x86_64", boot: "direct", snapshot: true, cpus: 2 });
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

const BUN = join(REPO, "node_modules/.bin/bun");

/** An image under `out` built from the same inputs with another kernel directory ("" = Debian's). */
function imageWith(out: string, kernelDir: string, label: string): void {
  const built = Bun.spawnSync([BUN, join(REPO, "image/build.ts")], { env: { ...process.env, PAIO_OUT: out, PAIO_KERNEL: kernelDir }, stdout: "pipe", stderr: "pipe" });
  if (built.exitCode !== 0) throw new Error(`${label} image: ${built.stdout}${built.stderr}`);
}

/**
 * The kernel of 'make kernel' without kernel-patches/*.patch: the same build
 * script, source and fragment, run from a copy of the directory that has no
 * patches (so it gets its own cache entry). Returns its kernel directory.
 */
function unpatchedKernel(work: string): string {
  const dir = join(work, "kernel-patches");
  mkdirSync(dir, { recursive: true });
  // The script and every configuration fragment (common and per architecture), no patches.
  for (const f of readdirSync(join(REPO, "kernel-patches")).filter((n) => n.endsWith(".config") || n === "build.ts" || n === "fragment.ts")) {
    copyFileSync(join(REPO, "kernel-patches", f), join(dir, f));
  }
  console.error("kernel bench: the unpatched kernel (built once, then cached):");
  const built = Bun.spawnSync([BUN, join(dir, "build.ts")], { cwd: work, stdout: "inherit", stderr: "inherit", env: { ...process.env, PAIO_ARCH: "x86_64" } });
  if (built.exitCode !== 0) throw new Error("building the unpatched kernel failed");
  return realpathSync(join(work, "out", "kernel"));
}

const work = mkdtempSync(join(tmpdir(), "paio-kbench-"));
const stockOut = join(work, "stock");
const plainOut = join(work, "unpatched");
try {
  imageWith(stockOut, "", "stock-kernel");
  imageWith(plainOut, unpatchedKernel(work), "unpatched-kernel");
  const patched = await measure(join(REPO, "out"), "patched", [0, -20]);
  const plain = await measure(plainOut, "unpatched", [0]);
  const stock = await measure(stockOut, "stock", [0]);
  console.log(`Kernel scheduling hooks (TCG, 2 vCPUs; cyclictest SCHED_OTHER every 10 ms for ${SECONDS} s beside hackbench; median of ${ROUNDS})`);
  const row = (name: string, f: Figures, nice: number) => {
    const e = f.lat.get(nice);
    console.log(`  ${name.padEnd(38)} wake-up latency avg ${e ? ms(median(e.avg)) : "-"}, p99 ${e ? ms(median(e.p99)) : "-"}`);
  };
  row("Debian's stock kernel (other config)", stock, 0);
  row("same kernel without the patches", plain, 0);
  row("patched, foreground latency.nice 0", patched, 0);
  row("patched, foreground latency.nice -20", patched, -20);
  const hbU = median(plain.hb);
  const hbP = median(patched.hb);
  console.log(`  hackbench -l 400 -g 4 run time: without the patches ${hbU.toFixed(3)} s, patched (hints 0) ${hbP.toFixed(3)} s: ${(((hbP - hbU) / hbU) * 100).toFixed(1)}% overhead; Debian's stock kernel ${median(stock.hb).toFixed(3)} s`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

// PAIO's scheduling hooks on the patched kernel (make kernel), in QEMU:
// the per-task latency nice (sched_setattr) is set, read back, inherited and
// privileged; a hinted task that wakes among CPU hogs gets the CPU sooner;
// cpu.latency.nice reads back, refuses out-of-range values, is inherited and
// propagated; a unit's latency_nice reaches its processes;
// cpu.wait.stat agrees with the tasks' own /proc/PID/schedstat; the wait
// threshold's events fire (and notify pollers) under load and stay silent at
// idle; and the agent uses the hint for latency-sensitive units.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Guest } from "../../qemu/guest.ts";
import { rmSync } from "node:fs";
import { bootGuest, sh, TEST_ARCH } from "../helpers/guest.ts";
import { buildKernelTools, putKernelTools } from "../helpers/kernel-tools.ts";

let g: Guest;
let tools = "";
const CG = "/sys/fs/cgroup/paio";
const LN = "/tmp/latency-nice";

beforeAll(async () => {
  tools = buildKernelTools(TEST_ARCH);
  g = await bootGuest({ cpus: 2 });
  const cfg = await sh(g, "uname -r; ls /sys/fs/cgroup/paio/demo/ | grep -E '^cpu\\.(latency|wait)' | sort");
  if (!cfg.includes("cpu.latency.nice")) throw new Error(`the image's kernel has no PAIO hooks (built with PAIO_STOCK_KERNEL?):\n${cfg}`);
  await putKernelTools(g, tools);
}, 600_000);

afterAll(async () => {
  await g?.shutdown().catch(() => g.kill());
  rmSync(tools, { recursive: true, force: true });
});

describe("per-task latency nice (sched_setattr)", () => {
  test("set and read back, inherited by children, reset by SCHED_RESET_ON_FORK, out of range refused", async () => {
    const out = await sh(g, `
${LN} -n -7 sh -c '${LN} -g $$ | cut -d" " -f2; sh -c "${LN} -g \\$\\$" | cut -d" " -f2'
${LN} -r -n -7 sh -c '${LN} -g $$ | cut -d" " -f2; sh -c "${LN} -g \\$\\$" | cut -d" " -f2'
${LN} -g $$ | cut -d" " -f2
for v in -21 20; do ${LN} -n $v true 2>&1; echo "rc $?"; done`);
    expect(out.trim().split("\n")).toEqual([
      "-7", "-7", // the task, and a child it forks
      "-7", "0", // with reset-on-fork: the task keeps it, a child starts at 0
      "0", // the shell around them was never changed
      "latency-nice: sched_setattr(latency nice -21): Invalid argument", "rc 2",
      "latency-nice: sched_setattr(latency nice 20): Invalid argument", "rc 2",
    ]);
  });

  test("an unprivileged task cannot lower its hint below 0, but may raise it", async () => {
    const out = await sh(g, `
${LN} -u 65534 -n -5 true 2>&1; echo "rc $?"
${LN} -u 65534 -n 5 sh -c '${LN} -g $$'; echo "rc $?"`);
    expect(out).toMatch(/^latency-nice: sched_setattr\(latency nice -5\): Operation not permitted\nrc 2\n/);
    expect(out).toMatch(/^\d+ 5\nrc 0$/m);
  });
});

describe("the hint at pick time", () => {
  // One group holds a pipe-bound load (hackbench -p -g 1: 40 tasks that wake
  // each other all the time) and a probe that works 0.2 ms and sleeps 10 ms.
  // On wake-up the load's tasks get the same sleeper credit as the probe, so
  // stock CFS often queues the probe behind several of them. At latency nice
  // -20 its 4.5 ms offset lets it preempt, or be picked from the latency
  // queue, first. Run-queue wait per run comes from the probe's own
  // /proc/self/schedstat (the wait statistics). A first round warms the guest
  // up and is not counted; then three rounds of each, alternating, summed.
  test("a hinted task that wakes among a busy group's tasks waits far less on the run queue than at hint 0", async () => {
    // The agent would take the load (busy, in no unit) for trouble and contain it: it only watches meanwhile.
    const out = await sh(g, `
for i in $(seq 1 90); do paio agent mode off >/dev/null 2>&1 && break; sleep 1; done
mkdir -p ${CG}/pick
run() {
  sh -c 'echo $$ > ${CG}/pick/cgroup.procs; exec hackbench -p -g 1 -l 100000000' >/dev/null 2>&1 &
  sleep 2
  sh -c "echo \\$\\$ > ${CG}/pick/cgroup.procs; exec ${LN} -n $1 /tmp/wake-probe 200 10000 8"
  for p in $(cat ${CG}/pick/cgroup.procs); do kill -9 $p; done; wait 2>/dev/null; sleep 1
}
echo "warm-up $(run 0)"
for r in 1 2 3; do echo "hint 0 $(run 0)"; echo "hint -20 $(run -20)"; done
rmdir ${CG}/pick
paio agent mode auto >/dev/null`, 240_000);
    const fig = (hint: number) => {
      const rows = [...out.matchAll(new RegExp(`^hint ${hint} samples (\\d+) p50_us (\\d+) p99_us (\\d+) max_us (\\d+) rq_wait_us (\\d+) runs (\\d+)$`, "gm"))];
      if (rows.length !== 3) throw new Error(`expected three rounds at hint ${hint}:\n${out}`);
      const n = rows.map((m) => m.slice(1).map(Number) as [number, number, number, number, number, number]);
      const p99 = n.map((r) => r[2]).sort((x, y) => x - y)[1]!;
      const wait = n.reduce((t, r) => t + r[4], 0);
      const runs = n.reduce((t, r) => t + r[5], 0);
      return { samples: Math.min(...n.map((r) => r[0])), p99, waitPerRun: wait / runs };
    };
    const plain = fig(0);
    const hinted = fig(-20);
    console.log(`wake-up among hackbench -p -g 1, 3 rounds of 8 s: hint 0 wait per run ${plain.waitPerRun.toFixed(0)} us, median p99 lateness ${plain.p99} us; hint -20 wait per run ${hinted.waitPerRun.toFixed(0)} us, median p99 ${hinted.p99} us (ratio ${(plain.waitPerRun / hinted.waitPerRun).toFixed(2)}x)`);
    expect(plain.samples).toBeGreaterThan(400);
    expect(hinted.samples).toBeGreaterThan(400);
    // Measured on this scenario: 3.2 to 3.6 times less wait with the hint (docs/kernel.md); half is the bar.
    expect(hinted.waitPerRun).toBeLessThan(plain.waitPerRun / 2);
    expect(hinted.p99).toBeLessThan(plain.p99);
  }, 300_000);
});

describe("cpu.latency.nice", () => {
  test("default 0, values read back, out of range and garbage refused with EINVAL, inherited by new child groups, propagated to them when written", async () => {
    const out = await sh(g, `
mkdir -p ${CG}/lat && echo +cpu > ${CG}/lat/cgroup.subtree_control
cat ${CG}/lat/cpu.latency.nice
echo -7 > ${CG}/lat/cpu.latency.nice && cat ${CG}/lat/cpu.latency.nice
for v in -21 20 abc; do echo $v > ${CG}/lat/cpu.latency.nice 2>/dev/null && echo "accepted $v" || echo "refused $v"; done
cat ${CG}/lat/cpu.latency.nice
mkdir ${CG}/lat/child && cat ${CG}/lat/child/cpu.latency.nice
echo 19 > ${CG}/lat/cpu.latency.nice && cat ${CG}/lat/cpu.latency.nice ${CG}/lat/child/cpu.latency.nice
rmdir ${CG}/lat/child ${CG}/lat`);
    expect(out.trim().split("\n")).toEqual(["0", "-7", "refused -21", "refused 20", "refused abc", "-7", "-7", "19", "19"]);
    const err = await g.sh(`echo -21 > ${CG}/demo/cpu.latency.nice`);
    expect(err.output).toMatch(/Invalid argument/);
  });
});

describe("cpu.wait.stat and its threshold", () => {
  test("an idle group never exceeds its threshold", async () => {
    const out = await sh(g, `
mkdir -p ${CG}/idle
sh -c 'echo $$ > ${CG}/idle/cgroup.procs; exec sleep 1000' & p=$!
sleep 1
# Armed once the sleeper has settled: from now on nothing in the group runs, so nothing waits.
echo 1000 > ${CG}/idle/cpu.wait.threshold_us
sleep 5
cat ${CG}/idle/cpu.wait.events ${CG}/idle/cpu.wait.threshold_us
kill $p; sleep 0.5; rmdir ${CG}/idle`);
    expect(out).toMatch(/^exceeded 0\n1000\n/);
  });

  test("under load: the totals agree with /proc/PID/schedstat, the histogram adds up, and the events fire and notify", async () => {
    const out = await sh(g, `
mkdir -p ${CG}/busy && echo 1000 > ${CG}/busy/cpu.wait.threshold_us
cat > /run/watch.js <<'JS'
const fs = require("node:fs");
let n = 0;
fs.watch(process.argv[2], () => n++);
setTimeout(() => { console.log("notifications " + n); process.exit(0); }, 6000);
JS
bun /run/watch.js ${CG}/busy/cpu.wait.events > /run/watch.out &
w=$!
sleep 1
for i in 1 2 3; do sh -c 'echo $$ > ${CG}/busy/cgroup.procs; exec sh -c "while true; do :; done"' & done
sleep 4
pids=$(cat ${CG}/busy/cgroup.procs)
echo 1 > ${CG}/busy/cgroup.freeze
sleep 0.5
sum=0; for p in $pids; do d=$(cut -d' ' -f2 /proc/$p/schedstat); sum=$((sum + d)); done
echo "schedstat_ns $sum"
cat ${CG}/busy/cpu.wait.stat ${CG}/busy/cpu.wait.events
wait $w; cat /run/watch.out
kill -9 $pids; echo 0 > ${CG}/busy/cgroup.freeze; sleep 0.5; rmdir ${CG}/busy`);
    const schedstatUs = Number(/schedstat_ns (\d+)/.exec(out)![1]) / 1000;
    const waitUs = Number(/^wait_usec (\d+)$/m.exec(out)![1]);
    const count = Number(/^count (\d+)$/m.exec(out)![1]);
    const hist = [...out.matchAll(/^hist_(\d+)us (\d+)$/gm)].map((m) => Number(m[2]));
    const exceeded = Number(/^exceeded (\d+)$/m.exec(out)![1]);
    const notified = Number(/notifications (\d+)/.exec(out)![1]);
    console.log(`cpu.wait.stat ${waitUs} us over ${count} waits; /proc/PID/schedstat sum ${Math.round(schedstatUs)} us; ${exceeded} waits over 1 ms; ${notified} notifications`);
    expect(waitUs).toBeGreaterThan(100_000);
    expect(Math.abs(waitUs - schedstatUs) / schedstatUs).toBeLessThan(0.05);
    expect(hist).toHaveLength(12);
    expect(hist.reduce((a, b) => a + b, 0)).toBe(count);
    expect(exceeded).toBeGreaterThan(0);
    expect(notified).toBeGreaterThan(0);
  }, 120_000);
});

describe("a unit's latency_nice", () => {
  test("reaches the unit's main process and what it forks, read back from the kernel; paio status shows it", async () => {
    const out = await sh(g, `printf 'exec = ["/bin/sh", "-c", "sleep 100003 & wait"]\\nrestart = "always"\\nlatency_nice = -10\\n' > /var/lib/paio/units/hinted.toml
paio reload >/dev/null
for i in $(seq 1 60); do [ "$(wc -l < ${CG}/hinted/cgroup.procs 2>/dev/null)" = 2 ] && break; sleep 0.5; done
for p in $(cat ${CG}/hinted/cgroup.procs); do ${LN} -g $p | cut -d' ' -f2; done
cat ${CG}/hinted/cpu.latency.nice
paio status hinted | grep 'latency hint'
paio logs hinted -n 20 | grep latency_nice
rm /var/lib/paio/units/hinted.toml; paio reload >/dev/null`);
    expect(out).toMatch(/^-10\n-10\n-10\n/);
    expect(out).toMatch(/latency hint: -10 per task \(main process \d+\), cgroup cpu\.latency\.nice -10/);
    expect(out).toMatch(/latency_nice -10: per-task hint set on the main process \(pid \d+\) through sched_setattr/);
  }, 120_000);
});

describe("the agent", () => {
  test("says it uses the per-task hint, and gives a latency-sensitive unit's tasks and group latency nice -10", async () => {
    const out = await sh(g, `printf 'exec = ["/bin/sleep", "100000"]\\nrestart = "always"\\nlatency_sensitive = true\\n' > /var/lib/paio/units/quick.toml
paio reload >/dev/null
for i in $(seq 1 90); do [ "$(cat ${CG}/quick/cpu.latency.nice 2>/dev/null)" = -10 ] && break; sleep 1; done
for i in $(seq 1 30); do [ "$(${LN} -g $(head -n 1 ${CG}/quick/cgroup.procs) | cut -d' ' -f2)" = -10 ] && break; sleep 1; done
cat ${CG}/quick/cpu.latency.nice ${CG}/quick/cpu.weight
${LN} -g $(head -n 1 ${CG}/quick/cgroup.procs) | cut -d' ' -f2
paio logs agent -n 50 | grep scheduling
cat ${CG}/quick/cpu.wait.stat | head -2`);
    expect(out).toMatch(/^-10\n400\n-10\n/);
    expect(out).toMatch(/scheduling through per-task latency nice and cpu\.latency\.nice \(patched kernel\)/);
    expect(out).toMatch(/^wait_usec \d+$/m);
  }, 180_000);
});

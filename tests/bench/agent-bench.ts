#!/usr/bin/env bun
// `make bench`, the agent's part, in one booted guest:
//  - the agent's CPU (percent of one core) and resident memory over IDLE_S
//    seconds with the image's units, then with 20 idle units added, beside
//    the supervisor's own figures over the same windows (the baseline);
//  - model inference cost per call (p50/p99), as the agent measured it;
//  - OOM prediction lead time: a unit leaks towards its memory.max with the
//    agent in advise mode, so nothing stops it; the time from the agent's
//    prediction to the kernel's OOM kill is the lead time the agent had.

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Guest } from "../../qemu/guest.ts";
import { PRELUDE } from "../helpers/guest.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const OUT = join(REPO, "out");
const IDLE_S = Number(process.env.PAIO_BENCH_IDLE_S ?? 60);

const SCRIPT = `
${PRELUDE}
now() { cut -d' ' -f1 /proc/uptime; }
ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
rss() { awk '/^VmRSS/{print $2}' /proc/$1/status; }
for i in $(seq 1 60); do paio logs agent -n 100 | grep -q 'paio-agent: ready' && break; sleep 1; done
sleep 10
measure() {
  agent=$(pgrep /usr/lib/paio/agent.js); sup=$(cat /run/paio/supervisor.pid)
  a0=$(ticks $agent); s0=$(ticks $sup); t0=$(now)
  sleep ${IDLE_S}
  a1=$(ticks $agent); s1=$(ticks $sup); t1=$(now)
  echo "$1 units=$(paio units | tail -n +2 | wc -l) secs=$(echo "$t1 $t0" | awk '{print $1-$2}') agent_cpu_s=$(echo "$a1 $a0" | awk '{print ($1-$2)/100}') sup_cpu_s=$(echo "$s1 $s0" | awk '{print ($1-$2)/100}') agent_rss_kb=$(rss $agent) sup_rss_kb=$(rss $sup)"
}
measure idle
i=1; while [ $i -le 20 ]; do printf 'exec = ["/bin/sleep", "8888%02d"]\\nrestart = "always"\\n' $i > /var/lib/paio/units/idle$i.toml; i=$((i+1)); done
paio reload > /dev/null
sleep 10
measure twenty
echo "agentstatus $(paio --json agent)"
echo "console_rss_kb $(rss $(pgrep /usr/lib/paio/console.js))"

# Lead time: advise mode, a leak of 1 MiB per half second towards 64 MiB.
printf 'mode = "advise"\\n' > /var/lib/paio/policy.toml
# Under TCG the agent's default 1% budget slows its tick to 10 s; give it the budget to tick every second here.
printf '[agent]\\ncpu_budget_percent = 50\\n' > /var/lib/paio/agent.toml
for i in $(seq 1 20); do rm -f /var/lib/paio/units/idle$i.toml; done
printf 'exec = ["/bin/sh", "-c", "rm -f /run/leak; while true; do dd if=/dev/zero bs=1M count=1 2>/dev/null >> /run/leak; sleep 0.5; done"]\\nrestart = "never"\\n[limits]\\nmemory_max = "64M"\\n' > /var/lib/paio/units/leaky.toml
paio restart agent > /dev/null
for i in $(seq 1 60); do paio logs agent -n 20 | grep -q 'paio-agent: ready' && break; sleep 1; done
paio reload > /dev/null
for i in $(seq 1 240); do grep -q 'oom_kill [1-9]' /sys/fs/cgroup/paio/leaky/memory.events && break; sleep 0.5; done
echo "oom_at_ms $(date +%s%3N 2>/dev/null || echo 0) $(paio --json status leaky | tr -d '\\n')"
paio --json why leaky
`;

function pct(cpuS: number, secs: number): string {
  return `${((cpuS / secs) * 100).toFixed(2)}%`;
}

const guest = await Guest.start({ outDir: OUT, disk: join(OUT, "paio-x86_64.img"), boot: "direct", snapshot: true });
try {
  await guest.waitReady(300_000);
  const { code, output } = await guest.sh(SCRIPT, (2 * IDLE_S + 400) * 1000);
  if (code !== 0) throw new Error(`bench script failed (${code}):\n${output}`);
  console.log(`Agent (${guest.accel.toUpperCase()}, one VM; CPU as percent of one core)`);
  for (const m of output.matchAll(/^(idle|twenty) units=(\d+) secs=([\d.]+) agent_cpu_s=([\d.]+) sup_cpu_s=([\d.]+) agent_rss_kb=(\d+) sup_rss_kb=(\d+)$/gm)) {
    const [, , units, secs, a, s, arss, srss] = m;
    console.log(`  ${`${units} units, ${Number(secs).toFixed(0)} s:`.padEnd(22)} agent CPU ${pct(Number(a), Number(secs))}, RSS ${(Number(arss) / 1024).toFixed(1)} MiB   (supervisor: CPU ${pct(Number(s), Number(secs))}, RSS ${(Number(srss) / 1024).toFixed(1)} MiB)`);
  }
  const status = /^agentstatus (\{.*\})$/m.exec(output);
  if (status) {
    const st = JSON.parse(status[1]!) as { models: { name: string; state: string; reason?: string; p50_ms?: number; p99_ms?: number; calls?: number; backend?: string }[] };
    for (const m of st.models) {
      const cost = m.p50_ms !== undefined ? `inference p50 ${m.p50_ms.toFixed(3)} ms, p99 ${m.p99_ms!.toFixed(3)} ms over ${m.calls} calls on ${m.backend}` : `no inference (${m.state}${m.reason ? `: ${m.reason}` : ""})`;
      console.log(`  model ${m.name}: ${cost}`);
    }
  }
  const consoleRss = /^console_rss_kb (\d+)$/m.exec(output);
  if (consoleRss) console.log(`  console UI (ink, on the serial line): RSS ${(Number(consoleRss[1]) / 1024).toFixed(1)} MiB`);
  const whyJson = output.slice(output.lastIndexOf("\n[") + 1);
  const rows = JSON.parse(whyJson.slice(0, whyJson.lastIndexOf("]") + 1)) as { time: number; kind: string; body: { class?: string; inputs?: { eta_s?: number } } }[];
  const proposal = rows.find((r) => r.kind === "decision" && (r.body as { class?: string }).class === "leak");
  const oomLine = /oom_at_ms \S+ (\{.*\})$/m.exec(output);
  const st = oomLine ? (JSON.parse(oomLine[1]!) as { since: number; state: string; reason: string }) : undefined;
  if (proposal && st && /OOM/.test(st.reason)) {
    const lead = (st.since - proposal.time) / 1000;
    console.log(`  OOM prediction lead time: predicted ${proposal.body.inputs?.eta_s} s ahead; the OOM kill came ${lead.toFixed(1)} s after the prediction (advise mode, nothing done)`);
  } else {
    console.log(`  OOM prediction lead time: not measured (${proposal ? "no OOM kill seen" : "no prediction seen"})`);
  }
  await guest.shutdown();
} finally {
  guest.kill();
}

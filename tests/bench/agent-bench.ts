#!/usr/bin/env bun
// `make bench`, the agent's part.
//
// On the host, with a real supervisor and the agent as its unit (in PID and
// network namespaces of their own where the host allows it, so that the
// host's processes and ports are not findings):
//  - knowledge-base writes at idle: what an idle agent writes to its SQLite
//    files (database, WAL, wal-index, audit head) per minute, over a fixed
//    ten-minute window after a warm-up, with an hour of history already
//    stored so that the folding of old seconds into minutes runs as on a
//    device that has been up for a while. Flash storage (an SD card) wears
//    with every page written, so an idle agent should write little. Two
//    measures: the bytes the agent process sent to the block layer
//    (/proc/PID/io write_bytes, counted per page when it is dirtied, which
//    includes the page cache's writeback of the mmap'ed wal-index), and what
//    SQLite appended to the WAL (its frames and commits, read from the WAL's
//    frame headers every second).
//
// In one booted guest:
//  - the agent's CPU (percent of one core) and resident memory (anonymous and
//    file pages apart) over IDLE_S seconds with the image's units, once it has
//    settled (SETTLE_S), then with 24 units in all, beside the supervisor's
//    own figures over the same windows (the baseline); with each, the agent's
//    own account of its CPU per tick by stage, and its models' state;
//  - model inference cost per call (p50/p99), as the agent measured it;
//  - OOM prediction lead time: a unit leaks towards its memory.max with the
//    agent in advise mode, so nothing stops it; the time from the agent's
//    prediction to the kernel's OOM kill is the lead time the agent had.
//
// `bun tests/bench/agent-bench.ts kb` runs only the host part, `guest` only the guest part.

import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { Database } from "bun:sqlite";
import { Knowledge } from "../../agents/knowledge/store.ts";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Guest } from "../../qemu/guest.ts";
import { PRELUDE } from "../helpers/guest.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const OUT = join(REPO, "out");
const IDLE_S = Number(process.env.PAIO_BENCH_IDLE_S ?? 60);
// The agent is measured once it has settled: its first minutes (loading models, compiling its code, which under
// emulation costs far more than on a board) are not what it costs a device that has been up for a while.
const SETTLE_S = Number(process.env.PAIO_BENCH_SETTLE_S ?? 240);

const SCRIPT = `
${PRELUDE}
now() { cut -d' ' -f1 /proc/uptime; }
ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
rss() { awk '/^VmRSS/{print $2}' /proc/$1/status; }
kb() { awk -v k="$2:" '$1 == k {print $2}' /proc/$1/status; }
# The proportional share: a page that n processes map counts 1/n to each (Bun's code is mapped by every PAIO program, onnxruntime's by the agent and the console).
pss() { awk '$1 == "Pss:" {print $2}' /proc/$1/smaps_rollup; }
# PAIO's programs name themselves (lib/process-name.ts; their command line is bun's): found by their exact name in /proc/PID/comm
# (busybox pgrep, with or without -x or -f, matched other processes).
byname() { for f in /proc/[0-9]*/comm; do [ "$(cat "$f" 2>/dev/null)" = "$1" ] && { d=\${f%/comm}; echo \${d#/proc/}; return; }; done; }
for i in $(seq 1 60); do paio logs agent -n 100 | grep -q 'paio-agent: ready' && break; sleep 1; done
measure() {
  agent=$(byname paio-agent); sup=$(cat /run/paio/supervisor.pid)
  a0=$(ticks $agent); s0=$(ticks $sup); t0=$(now)
  sleep ${IDLE_S}
  a1=$(ticks $agent); s1=$(ticks $sup); t1=$(now)
  echo "$1 units=$(paio units | tail -n +2 | wc -l) secs=$(echo "$t1 $t0" | awk '{print $1-$2}') agent_cpu_s=$(echo "$a1 $a0" | awk '{print ($1-$2)/100}') sup_cpu_s=$(echo "$s1 $s0" | awk '{print ($1-$2)/100}') agent_rss_kb=$(rss $agent) agent_anon_kb=$(kb $agent RssAnon) agent_file_kb=$(kb $agent RssFile) agent_pss_kb=$(pss $agent) sup_rss_kb=$(rss $sup)"
  echo "$1 status $(paio --json agent)"
}
sleep ${SETTLE_S}
measure idle
# 24 units in all: the image's 9 and 15 that sleep.
i=1; while [ $i -le 15 ]; do printf 'exec = ["/bin/sleep", "8888%02d"]\\nrestart = "always"\\n' $i > /var/lib/paio/units/idle$i.toml; i=$((i+1)); done
paio reload > /dev/null
sleep 60
measure loaded
echo "pagesline $(paio logs agent -n 400 | grep -m1 -E 'gave back the file pages|start-up pages kept')"
ui=$(byname paio-console)
echo "console_rss_kb \${ui:+$(rss $ui)}"

# Lead time: advise mode, a leak of 1 MiB per half second towards 64 MiB.
printf 'mode = "advise"\\n' > /var/lib/paio/policy.toml
# Under TCG the agent's default 1% budget slows its tick to 10 s; give it the budget to tick every second here.
printf '[agent]\\ncpu_budget_percent = 50\\n' > /var/lib/paio/agent.toml
for i in $(seq 1 15); do rm -f /var/lib/paio/units/idle$i.toml; done
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

// --- knowledge-base writes at idle (host) -------------------------------------

const KB_WARMUP_S = Number(process.env.PAIO_BENCH_KB_WARMUP_S ?? 45);
// Ten minutes: the agent folds old history ten minutes at a time, so the window holds exactly one fold (see PREFILL_S).
const KB_WINDOW_S = Number(process.env.PAIO_BENCH_KB_S ?? 600);
const KB_IDLE_UNITS = 5;

/** The WAL's current generation (its salts), how many frames of it are valid and how many of those end a commit. */
interface WalState {
  salt: string;
  pageSize: number;
  frames: number;
  commits: number;
}

/** Reads the WAL's header and frame headers (not the pages): frames whose salts match the header's belong to the current generation. */
function walState(path: string): WalState | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return undefined;
  }
  try {
    const head = Buffer.alloc(32);
    if (readSync(fd, head, 0, 32, 0) < 32) return undefined;
    const magic = head.readUInt32BE(0);
    if (magic !== 0x377f0682 && magic !== 0x377f0683) return undefined;
    const pageSize = head.readUInt32BE(8);
    const salt = head.subarray(16, 24).toString("hex");
    const size = statSync(path).size;
    const frame = Buffer.alloc(24);
    let frames = 0;
    let commits = 0;
    for (let off = 32; off + 24 + pageSize <= size; off += 24 + pageSize) {
      if (readSync(fd, frame, 0, 24, off) < 24 || frame.subarray(8, 16).toString("hex") !== salt) break;
      frames++;
      if (frame.readUInt32BE(4) !== 0) commits++;
    }
    return { salt, pageSize, frames, commits };
  } finally {
    closeSync(fd);
  }
}

/** Frames and commits appended to a WAL between samples, across checkpoints (a new generation starts at the file's beginning). */
class WalCounter {
  frames = 0;
  commits = 0;
  generations = 0;
  pageSize = 4096;
  private last: WalState | undefined;

  constructor(private path: string) {
    this.last = walState(path);
  }

  sample(): void {
    const s = walState(this.path);
    if (!s) return;
    this.pageSize = s.pageSize;
    if (this.last && s.salt === this.last.salt) {
      this.frames += Math.max(0, s.frames - this.last.frames);
      this.commits += Math.max(0, s.commits - this.last.commits);
    } else {
      // A checkpoint restarted the WAL: everything valid now was written since (frames of the old generation written after the last sample are missed; sampling every second keeps that small).
      if (this.last) this.generations++;
      this.frames += s.frames;
      this.commits += s.commits;
    }
    this.last = s;
  }
}

function procIo(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/io`, "utf8").split("\n")) {
    const [k, v] = line.split(":");
    if (k && v) out[k.trim()] = Number(v);
  }
  return out;
}

/** The agent's process as this machine numbers it (it may run in a PID namespace): the one whose environment names this bench's state directory. */
function agentPid(stateDir: string): number | undefined {
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (!readFileSync(`/proc/${e}/cmdline`, "utf8").includes("agents/agent/main.ts")) continue;
      if (readFileSync(`/proc/${e}/environ`, "utf8").split("\0").includes(`PAIO_STATE_DIR=${stateDir}`)) return Number(e);
    } catch {
      // gone, or not ours
    }
  }
  return undefined;
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function fsType(dir: string): string {
  const r = Bun.spawnSync(["stat", "-f", "-c", "%T", dir]);
  return r.stdout.toString().trim() || "unknown";
}

// An hour and two minutes of history: the first fold of whole minutes past the hour's retention falls about eight minutes after the agent starts, inside the window.
const PREFILL_S = 62 * 60;

function prefill(path: string, now: number): void {
  const k = new Knowledge(path);
  k.db.transaction(() => {
    for (let i = PREFILL_S; i > 0; i--) {
      const values: Record<string, number> = { "sys.cpu_pct": 2 + (i % 7) / 10, "sys.mem_pct": 31.5 + (i % 60 === 0 ? 0.1 : 0), "psi.cpu": 0, "psi.memory": 0, "psi.io": 0, "sys.load1": 0.08, "sys.procs": 60 };
      for (let u = 0; u < 7; u++) Object.assign(values, { [`unit.u${u}.mem_mb`]: 12 + u, [`unit.u${u}.pids`]: 1, [`unit.u${u}.restarts`]: 0, [`unit.u${u}.cpu_pct`]: i % 13 === u ? 0.5 : 0 });
      k.addFrame({ ts: now - i * 1000, values });
    }
  })();
  k.close();
}

async function kbWritesAtIdle(): Promise<void> {
  const d = mkdtempSync(join(process.env.PAIO_BENCH_DIR ?? tmpdir(), "paio-kb-bench-"));
  for (const sub of ["units", "run", "state", "etc"]) mkdirSync(join(d, sub));
  const env = {
    PAIO_STATE_DIR: join(d, "state"),
    PAIO_ETC_DIR: join(d, "etc"),
    PAIO_CONTROL_SOCKET: join(d, "run", "control.sock"),
    PAIO_AGENT_SOCKET: join(d, "run", "agent.sock"),
    PAIO_CGROUP_ROOT: join(d, "no-cgroup"),
    // A fixed 1 s tick: the budget is set high enough that the agent never slows its tick on a busy host.
    PAIO_AGENT_CPU_BUDGET_PERCENT: "50",
  };
  // Steady state: the knowledge base already holds an hour of history (as an idle device's), so the folding of old seconds into minutes runs in the window as it does on a device that has run for more than an hour.
  prefill(join(d, "state", "agent", "knowledge.db"), Date.now());
  const envToml = Object.entries(env).map(([k, v]) => `${k} = "${v}"`).join(", ");
  writeFileSync(join(d, "units", "agent.toml"), `exec = ["${process.execPath}", "${join(REPO, "agents/agent/main.ts")}"]\nrestart = "always"\nenv = { ${envToml} }\n`);
  for (let i = 1; i <= KB_IDLE_UNITS; i++) writeFileSync(join(d, "units", `idle${i}.toml`), `exec = ["/bin/sleep", "77770${i}"]\nrestart = "always"\n`);
  // Idle means idle: in PID and network namespaces of their own the agent sees none of the host's processes and ports (a busy build machine's would be findings, and their records writes).
  const isolation = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--kill-child=SIGTERM", "--mount-proc", "--net"];
  const isolated = Bun.spawnSync([...isolation, "true"], { stderr: "ignore" }).exitCode === 0;
  const sup = Bun.spawn([...(isolated ? isolation : []), process.execPath, join(REPO, "init/supervisor/main.ts")], {
    env: { ...process.env, PAIO_UNIT_DIRS: join(d, "units"), PAIO_RUN_DIR: join(d, "run"), PAIO_STATE_DIR: join(d, "state"), PAIO_WATCHDOG: "none", PAIO_CONTROL_SOCKET: env.PAIO_CONTROL_SOCKET },
    stdout: "ignore",
    stderr: "ignore",
  });
  // Interrupted (Ctrl-C), the bench stops what it started.
  // unshare passes SIGTERM on to the supervisor only when it dies itself (it ignores SIGTERM while it waits).
  const end = () => sup.kill(isolated ? "SIGKILL" : "SIGTERM");
  const stop = () => {
    end();
    rmSync(d, { recursive: true, force: true });
    process.exit(130);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const agentDir = join(d, "state", "agent");
  const db = join(agentDir, "knowledge.db");
  const agentLog = join(d, "state", "logs", "agent.log");
  try {
    const readyBy = Date.now() + 60_000;
    while (!(existsSync(agentLog) && readFileSync(agentLog, "utf8").includes("paio-agent: ready"))) {
      if (Date.now() > readyBy) throw new Error(`the agent did not start within 60 s:\n${existsSync(agentLog) ? readFileSync(agentLog, "utf8") : "(no log)"}`);
      await Bun.sleep(250);
    }
    await Bun.sleep(KB_WARMUP_S * 1000);
    const pid = agentPid(env.PAIO_STATE_DIR);
    if (!pid) throw new Error("the agent has no process");
    const files = ["knowledge.db", "knowledge.db-wal", "knowledge.db-shm", "audit.head"].map((f) => join(agentDir, f));
    const mtime = (f: string) => (existsSync(f) ? statSync(f).mtimeMs : 0);
    const size = (f: string) => (existsSync(f) ? statSync(f).size : 0);
    const wal = new WalCounter(`${db}-wal`);
    const io0 = procIo(pid);
    const sizes0 = files.map(size);
    const changed = files.map(() => 0);
    let mtimes = files.map(mtime);
    const t0 = Date.now();
    while (Date.now() - t0 < KB_WINDOW_S * 1000) {
      await Bun.sleep(1000);
      wal.sample();
      const now = files.map(mtime);
      now.forEach((m, i) => (changed[i]! += m !== mtimes[i] ? 1 : 0));
      mtimes = now;
    }
    const secs = (Date.now() - t0) / 1000;
    const io1 = procIo(pid);
    const sizes1 = files.map(size);
    const perMin = (n: number) => (n / secs) * 60;
    const written = io1.write_bytes! - io0.write_bytes!;
    const walBytes = wal.frames * (wal.pageSize + 24);
    const st = Bun.spawnSync([process.execPath, join(REPO, "init/cli/paio.ts"), "--json", "agent"], { env: { ...process.env, ...env } });
    const tick = (() => {
      try {
        return (JSON.parse(st.stdout.toString()) as { tick_ms: number }).tick_ms;
      } catch {
        return undefined;
      }
    })();
    console.log(`Knowledge-base writes at idle (host, ${fsType(agentDir)}; the agent and ${KB_IDLE_UNITS} idle units under a real supervisor${isolated ? " in PID and network namespaces of their own" : " (not isolated: the host's processes and ports are visible to the agent)"}, an hour of history already stored; ${secs.toFixed(0)} s after a ${KB_WARMUP_S} s warm-up; tick ${tick ?? "?"} ms)`);
    console.log(`  agent process, bytes sent to the block layer (/proc/PID/io write_bytes): ${kib(written)} = ${kib(perMin(written))}/min   (${io1.syscw! - io0.syscw!} write system calls)`);
    console.log(`  SQLite WAL: ${wal.commits} commits, ${wal.frames} frames of ${wal.pageSize} B = ${kib(walBytes)} = ${kib(perMin(walBytes))}/min, ${wal.commits ? (wal.frames / wal.commits).toFixed(1) : "0"} pages a commit; ${wal.generations} checkpoint restarts`);
    console.log(`  files changed (seconds with a new mtime, size change): ${files.map((f, i) => `${f.slice(agentDir.length + 1)} ${changed[i]} s, ${sizes1[i]! - sizes0[i]! >= 0 ? "+" : ""}${sizes1[i]! - sizes0[i]!} B`).join("; ")}`);
    // What the agent decided meanwhile: on a busy host, processes outside every unit are real findings, and their records are writes too.
    const kdb = new Database(db, { readonly: true });
    const audited = kdb.query<{ kind: string; n: number }, [number]>("SELECT kind, COUNT(*) AS n FROM audit WHERE time >= ? GROUP BY kind").all(t0);
    const incidents = kdb.query<{ class: string; n: number }, [number]>("SELECT class, COUNT(*) AS n FROM incidents WHERE time >= ? GROUP BY class").all(t0);
    const rows = kdb.query<{ n: number }, [number]>("SELECT COUNT(*) AS n FROM frames_1s WHERE ts >= ?").get(t0)!.n;
    const minutes = kdb.query<{ n: number }, [number]>("SELECT COUNT(*) AS n FROM frames_1m WHERE ts >= ?").get(t0 - PREFILL_S * 1000)!.n;
    kdb.close();
    const list = (r: { n: number }[], key: (x: never) => string) => r.map((x) => `${x.n} ${key(x as never)}`).join(", ") || "none";
    console.log(`  meanwhile: ${rows} metric frames stored (${minutes} minutes of history folded so far); audit records: ${list(audited, (x: { kind: string }) => x.kind)}; incidents: ${list(incidents, (x: { class: string }) => x.class)}${incidents.length ? " (not idle: these writes are decisions, not samples)" : ""}`);
    console.log("  method: write_bytes counts each page when it is dirtied (WAL appends, checkpoints into the database, the mmap'ed wal-index, the audit head), as the storage sees it; the WAL figure is SQLite's own appends, read from the frame headers every second");
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    end();
    await sup.exited;
    // The supervisor stops its units before it exits; give it a moment before its directory goes.
    for (let i = 0; i < 50 && agentPid(env.PAIO_STATE_DIR); i++) await Bun.sleep(100);
    rmSync(d, { recursive: true, force: true });
  }
}

// --- the guest ----------------------------------------------------------------

async function guestBench(): Promise<void> {
  const guest = await Guest.start({ outDir: OUT, disk: join(OUT, "paio-x86_64.img"), boot: "direct", snapshot: true });
  try {
    await guest.waitReady(300_000);
    const { code, output } = await guest.sh(SCRIPT, (2 * IDLE_S + 400) * 1000);
    if (code !== 0) throw new Error(`bench script failed (${code}):\n${output}`);
    console.log(`Agent (${guest.accel.toUpperCase()}, one VM; CPU as percent of one core; measured after ${SETTLE_S} s of settling)`);
    type Status = {
      models: { name: string; state: string; reason?: string; p50_ms?: number; p99_ms?: number; calls?: number; backend?: string }[];
      tick_ms: number;
      tick_cpu_ms?: { between: number; monitor: number; detect: number; rest: number };
    };
    for (const m of output.matchAll(/^(idle|loaded) units=(\d+) secs=([\d.]+) agent_cpu_s=([\d.]+) sup_cpu_s=([\d.]+) agent_rss_kb=(\d+) agent_anon_kb=(\d+) agent_file_kb=(\d+) agent_pss_kb=(\d+) sup_rss_kb=(\d+)$/gm)) {
      const [, which, units, secs, a, s, arss, anon, file, pss, srss] = m;
      const mib = (kb: string | undefined) => (Number(kb) / 1024).toFixed(1);
      console.log(`  ${`${units} units, ${Number(secs).toFixed(0)} s:`.padEnd(22)} agent CPU ${pct(Number(a), Number(secs))}, RSS ${mib(arss)} MiB (anonymous ${mib(anon)}, file pages ${mib(file)}; proportional share ${mib(pss)})   (supervisor: CPU ${pct(Number(s), Number(secs))}, RSS ${mib(srss)} MiB)`);
      const status = new RegExp(`^${which} status (\\{.*\\})$`, "m").exec(output);
      if (!status) continue;
      const st = JSON.parse(status[1]!) as Status;
      const c = st.tick_cpu_ms;
      if (c) console.log(`  ${"".padEnd(22)} a tick every ${st.tick_ms / 1000} s, CPU per tick ${(c.between + c.monitor + c.detect + c.rest).toFixed(1)} ms: sampling ${c.monitor.toFixed(1)}, detecting ${c.detect.toFixed(1)}, acting and storing ${c.rest.toFixed(1)}, between ticks ${c.between.toFixed(1)}`);
      for (const mo of st.models) {
        const cost = mo.p50_ms !== undefined && mo.calls ? `inference p50 ${mo.p50_ms.toFixed(3)} ms, p99 ${mo.p99_ms!.toFixed(3)} ms over ${mo.calls} calls on ${mo.backend}` : `no inference so far`;
        console.log(`  ${"".padEnd(22)} model ${mo.name}: ${mo.state}${mo.reason ? ` (${mo.reason})` : ""}; ${cost}`);
      }
    }
    const pages = /^pagesline (.*)$/m.exec(output);
    if (pages) console.log(`  start-up pages: ${pages[1]?.replace(/^paio-agent: /, "") || "no line in the agent's log"}`);
    const consoleRss = /^console_rss_kb ?(\d*)$/m.exec(output);
    if (consoleRss) console.log(`  console UI (ink, on the serial line): ${consoleRss[1] ? `RSS ${(Number(consoleRss[1]) / 1024).toFixed(1)} MiB` : "not running (no process named paio-console)"}`);
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
}

const part = process.argv[2] ?? "all";
if (part !== "guest") await kbWritesAtIdle();
if (part !== "kb") await guestBench();

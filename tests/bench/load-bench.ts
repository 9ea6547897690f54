#!/usr/bin/env bun
// `make load`: the supervisor under load, on the host (a real supervisor,
// init/supervisor/main.ts, in a temporary directory; no cgroups, as in the
// host tests). The same measures with 20 units (the baseline, in the same run
// on the same machine) and with 500:
//  - time from start until every unit runs;
//  - the supervisor's resident memory and CPU use at idle over a fixed window;
//  - the latency of control requests sent one after another (`list`, what
//    `paio status` sends, and `status UNIT`) and of the whole `paio status`
//    command;
//  - 100 clients at once, each sending requests (is every one answered
//    correctly?);
// and, with 500 units, 20 event subscribers while units churn (killed,
// restarted, added and removed by reload): does each see every event once
// and in order? Prints a table and writes load.json to out/reliability/ (or
// PAIO_RELIABILITY_OUT), for the reliability report.
//
// Settings: PAIO_LOAD_UNITS (500), PAIO_LOAD_IDLE_S (30), PAIO_LOAD_REQUESTS
// (1000 per request kind), PAIO_LOAD_CLIENTS (100), PAIO_LOAD_SUBSCRIBERS (20).

import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cleanUp, startSupervisor, tempDir } from "../helpers/supervisor-process.ts";
import { checkList, checkStatus, churnWithSubscribers, clientStorm, cpuTicks, memoryKiB, requestLatency, spread, unitNames, waitAllRunning, writeUnits, type ChurnReport, type Spread, type StormReport } from "../helpers/load.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const UNITS = Number(process.env.PAIO_LOAD_UNITS ?? 500);
const BASELINE_UNITS = 20;
const IDLE_S = Number(process.env.PAIO_LOAD_IDLE_S ?? 30);
const REQUESTS = Number(process.env.PAIO_LOAD_REQUESTS ?? 1000);
const CLIENTS = Number(process.env.PAIO_LOAD_CLIENTS ?? 100);
const REQUESTS_PER_CLIENT = 30;
const SUBSCRIBERS = Number(process.env.PAIO_LOAD_SUBSCRIBERS ?? 20);
const COMMAND_RUNS = 10;
/** With 500 units, each of 5 rounds kills 20 units, restarts 10 by request, adds 10 and removes 10 unit files. */
const CHURN = { rounds: 5, kill: Math.max(1, Math.round(UNITS / 25)), restart: Math.max(1, Math.round(UNITS / 50)), add: Math.max(1, Math.round(UNITS / 50)), remove: Math.max(1, Math.round(UNITS / 50)) };
const CLOCK_TICKS = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

interface Run {
  units: number;
  /** Wall time from the spawn (noisy on a shared machine), and the supervisor's own CPU time until every unit ran (less so). */
  start: { ready_ms: number; all_running_ms: number; cpu_ms: number };
  /** The machine's 1-minute load average as the run began: how busy it was besides. */
  load_average: number;
  idle: { window_s: number; cpu_s: number; cpu_percent_of_one_core: number; rss_kib: number };
  latency: { list: Spread; status: Spread; paio_status_command: Spread };
  clients: Omit<StormReport, "wrong" | "errors"> & { wrong: number; errors: number; examples: string[] };
  events?: Omit<ChurnReport, "names">;
  /** The supervisor's peak resident memory (VmHWM) after everything above. */
  peak_rss_kib: number;
  /** Every check of this run: what was wrong, if anything. */
  problems: string[];
}

async function measure(n: number, churn: boolean): Promise<Run> {
  const problems: string[] = [];
  const d = tempDir();
  const names = unitNames("load-", n);
  writeUnits(d, names);
  const sock = join(d, "run", "control.sock");
  const loadAverage = loadavg()[0]!;
  const t0 = performance.now();
  const sup = startSupervisor(d, { PAIO_CONTROL_SOCKET: sock, PAIO_CGROUP_ROOT: join(d, "no-cgroup") });
  const pid = sup.proc.pid;
  try {
    await sup.waitFor(new RegExp(`supervisor ready \\(.*${n} units started\\)`), 120_000);
    const readyMs = performance.now() - t0;
    await waitAllRunning(sock, names, 120_000, () => true, 5);
    const allRunningMs = performance.now() - t0;
    const startCpuMs = (cpuTicks(pid) / CLOCK_TICKS) * 1000;

    // Idle: nothing asks anything; the units sleep.
    await Bun.sleep(2000);
    const c0 = cpuTicks(pid);
    const w0 = performance.now();
    await Bun.sleep(IDLE_S * 1000);
    const cpuS = (cpuTicks(pid) - c0) / CLOCK_TICKS;
    const windowS = (performance.now() - w0) / 1000;
    const { rss_kib } = memoryKiB(pid);

    const listed = await requestLatency(sock, REQUESTS, () => ({ op: "list" }), checkList(names));
    let k = 0;
    const statused = await requestLatency(sock, REQUESTS, () => ({ op: "status", unit: names[k++ % n]! }), (r) => checkStatus(names[(k - 1) % n]!)(r));
    problems.push(...listed.wrong.slice(0, 5), ...statused.wrong.slice(0, 5));
    const command = paioStatus(sock, n);
    problems.push(...command.wrong.slice(0, 5));

    const storm = await clientStorm(sock, names, CLIENTS, REQUESTS_PER_CLIENT);
    problems.push(...storm.wrong.slice(0, 5), ...storm.errors.slice(0, 5));

    let events: Run["events"];
    if (churn) {
      const { names: _names, ...report } = await churnWithSubscribers(d, sock, names, SUBSCRIBERS, CHURN);
      events = report;
      problems.push(...report.problems);
    }
    if (sup.proc.exitCode !== null) problems.push(`the supervisor exited (${sup.proc.exitCode})`);
    return {
      units: n,
      start: { ready_ms: Math.round(readyMs), all_running_ms: Math.round(allRunningMs), cpu_ms: Math.round(startCpuMs) },
      load_average: loadAverage,
      idle: { window_s: +windowS.toFixed(1), cpu_s: cpuS, cpu_percent_of_one_core: +((cpuS / windowS) * 100).toFixed(3), rss_kib },
      latency: { list: spread(listed.ms), status: spread(statused.ms), paio_status_command: spread(command.ms) },
      clients: { ...storm, wrong: storm.wrong.length, errors: storm.errors.length, examples: [...storm.wrong, ...storm.errors].slice(0, 5) },
      events,
      peak_rss_kib: memoryKiB(pid).peak_kib,
      problems,
    };
  } finally {
    await cleanUp();
  }
}

/** The whole `paio status` command, as a person runs it: a new process, the connection, the answer printed. */
function paioStatus(sock: string, n: number): { ms: number[]; wrong: string[] } {
  const ms: number[] = [];
  const wrong: string[] = [];
  for (let i = 0; i < COMMAND_RUNS; i++) {
    const t0 = performance.now();
    const p = Bun.spawnSync([process.execPath, join(REPO, "init/cli/paio.ts"), "status"], { env: { ...process.env, PAIO_CONTROL_SOCKET: sock } });
    ms.push(performance.now() - t0);
    const out = p.stdout.toString();
    if (p.exitCode !== 0 || !out.startsWith(`${n} units, ${n} running`)) wrong.push(`paio status: exit ${p.exitCode}: ${(out || p.stderr.toString()).split("\n")[0]}`);
  }
  return { ms, wrong };
}

function machine() {
  const git = (...args: string[]) => Bun.spawnSync(["git", "-C", REPO, ...args]).stdout.toString().trim();
  return {
    commit: git("rev-parse", "HEAD"),
    dirty: git("status", "--porcelain", "--untracked-files=no") !== "",
    host: {
      cores: cpus().length,
      cpu: cpus()[0]?.model ?? "unknown",
      kernel: Bun.spawnSync(["uname", "-r"]).stdout.toString().trim(),
      memory_gib: +(totalmem() / 2 ** 30).toFixed(1),
      bun: Bun.version,
    },
  };
}

const interrupted = () => {
  void cleanUp().then(() => process.exit(130));
};
process.once("SIGINT", interrupted);
process.once("SIGTERM", interrupted);

const when = new Date().toISOString();
console.log(`Supervisor under load: ${BASELINE_UNITS} units (baseline), then ${UNITS}; idle window ${IDLE_S} s, about ${Math.round((IDLE_S * 2 + 60) / 60)} minutes`);
const base = await measure(BASELINE_UNITS, false);
const big = await measure(UNITS, true);
const runs = [base, big];

const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : x >= 10 ? `${x.toFixed(0)} ms` : `${x.toFixed(2)} ms`);
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
const both = (label: string, f: (r: Run) => string) => console.log(`  ${label.padEnd(44)} ${f(base).padEnd(24)} ${f(big)}`);
const m = machine();
const where = `${m.host.cores} CPUs (${m.host.cpu}), Linux ${m.host.kernel}, ${m.host.memory_gib} GiB, Bun ${m.host.bun}; on the host, without cgroups`;
console.log(`\nSupervisor under load (${where}; latency: median / p99)`);
console.log(`  ${"".padEnd(44)} ${`${BASELINE_UNITS} units`.padEnd(24)} ${UNITS} units`);
both("start until every unit runs", (r) => ms(r.start.all_running_ms));
both("  of which until 'supervisor ready'", (r) => ms(r.start.ready_ms));
both("  the supervisor's CPU time until then", (r) => ms(r.start.cpu_ms));
both(`resident memory at idle (VmRSS)`, (r) => mib(r.idle.rss_kib));
both(`CPU at idle over ${IDLE_S} s`, (r) => `${r.idle.cpu_s.toFixed(2)} s (${r.idle.cpu_percent_of_one_core.toFixed(2)}%)`);
both(`list request (paio status), ${REQUESTS}x`, (r) => `${ms(r.latency.list.median_ms)} / ${ms(r.latency.list.p99_ms)}`);
both(`status UNIT request, ${REQUESTS}x`, (r) => `${ms(r.latency.status.median_ms)} / ${ms(r.latency.status.p99_ms)}`);
both(`paio status command, ${COMMAND_RUNS}x`, (r) => `${ms(r.latency.paio_status_command.median_ms)} / ${ms(r.latency.paio_status_command.p99_ms)}`);
both(`${CLIENTS} clients at once x ${REQUESTS_PER_CLIENT} requests`, (r) => `${ms(r.clients.latency.median_ms)} / ${ms(r.clients.latency.p99_ms)}`);
both("  answered / wrong / errors", (r) => `${r.clients.answered} / ${r.clients.wrong} / ${r.clients.errors}`);
both("  requests per second", (r) => `${r.clients.requests_per_s}`);
both("peak memory (VmHWM) after all of it", (r) => mib(r.peak_rss_kib));
both("machine's load average as the run began", (r) => r.load_average.toFixed(2));
const ev = big.events!;
console.log(`  ${`${ev.subscribers} subscribers while units churn`.padEnd(44)} ${ev.killed} killed, ${ev.restarted} restarted, ${ev.added} added, ${ev.removed} removed in ${ms(ev.wall_ms)}`);
console.log(`  ${"  events each saw / the churn must cause".padEnd(44)} ${[...new Set(ev.events_per_subscriber)].join(", ")} / ${ev.expected_events}; restarts counted ${ev.restarts_counted} of ${ev.restarts_expected}`);

const problems = runs.flatMap((r) => r.problems.map((p) => `${r.units} units: ${p}`));
console.log(problems.length ? `\nPROBLEMS:\n${problems.map((p) => `  ${p}`).join("\n")}` : "\nEvery check passed: all units ran, every request was answered correctly, every subscriber saw every event once and in order.");

const resultsDir = process.env.PAIO_RELIABILITY_OUT ?? join(REPO, "out", "reliability");
const file = join(resultsDir, "load.json");
mkdirSync(resultsDir, { recursive: true });
const settings = { units: UNITS, baseline_units: BASELINE_UNITS, idle_s: IDLE_S, requests: REQUESTS, clients: CLIENTS, requests_per_client: REQUESTS_PER_CLIENT, subscribers: SUBSCRIBERS, command_runs: COMMAND_RUNS, churn: CHURN };
const byUnits = Object.fromEntries(runs.map((r) => [`${r.units} units`, r]));
writeFileSync(file, JSON.stringify({ bench: "load", date: when, ...m, machine: where, settings, runs: byUnits, passed: problems.length === 0, problems }, null, 2) + "\n");
console.log(`figures written to ${file}`);
process.exit(problems.length ? 1 : 0);

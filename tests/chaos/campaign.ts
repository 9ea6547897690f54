#!/usr/bin/env bun
// The chaos campaign (`make chaos`; a short run in `make test`): ten classes
// of fault injected into a booted image running a realistic workload
// (tests/chaos/workload.ts), each N times at moments drawn from a recorded
// seed. After each run it asks:
//  - recovered: is every unit that should run running again (and, where the
//    fault calls for it, was the faulty one really replaced), and how long
//    did that take;
//  - wrongly killed: was any other unit, or a unit that was merely slow,
//    killed or restarted;
//  - lost: does the knowledge base pass SQLite's integrity check and the
//    audit chain verify, are the logger's lines whole and consecutive, and
//    (after a power cut) does the data file system pass e2fsck.
// It prints a table per class and the seed of every run, writes
// out/reliability/chaos.json, and exits 1 naming the class and seed of each
// run that missed a goal.
//
//   bun tests/chaos/campaign.ts [--runs N] [--cuts N] [--seed S] [--class a,b] [--add]
//   bun tests/chaos/campaign.ts --replay CLASS:SEED     one run again, exactly
// --add keeps the earlier results of the classes not run now (each part
// keeps its own date, commit and seed), so the classes can be run in parts.

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import type { Guest } from "../../qemu/guest.ts";
import { bootGuest, IMAGE, OUT, partition, PRELUDE, REPO, requireBuiltImage } from "../helpers/guest.ts";
import { CHAOS_UNITS, installScript } from "./workload.ts";
import { rng } from "../../agents/models/train.ts";
import { AUDIT_WRITER } from "../helpers/audit-writer.ts";
import { CUT_SHORT_MARK } from "../../init/supervisor/unit-log.ts";

export const FAULT_CLASSES = [
  "kill-unit", "hang", "slow", "crash-loop", "leak-oom", "fork-bomb", "disk-full", "kill-supervisor", "kill-agent", "power-cut",
] as const;
export type FaultClass = (typeof FAULT_CLASSES)[number];

export interface RunResult {
  class: FaultClass;
  run: number;
  /** Replays this run: --replay CLASS:SEED. */
  seed: number;
  target: string;
  recovered: boolean;
  /** From the fault (or, after a power cut, from power-on) until everything was back. */
  recoveryMs?: number;
  wronglyKilled: string[];
  lost: string[];
  /** What happened, in words (the agent's remedy, the state seen). */
  notes: string[];
  /** Whether the fault was seen to take hold (a run whose fault missed its target proves nothing). */
  tookHold: boolean;
}

export interface ClassSummary {
  runs: number;
  recovered: number;
  medianRecoveryMs?: number;
  maxRecoveryMs?: number;
  wronglyKilled: number;
  lost: number;
}

export interface CampaignResult {
  /** How long the whole campaign took, seconds. */
  durationS?: number;
  /** Each run waited for a quiet device (no incident being worked on) before its fault; results from before this field did not. */
  quietStart?: boolean;
  date: string;
  commit: string;
  machine: string;
  seed: number;
  runsPerClass: number;
  powerCuts: number;
  classes: Partial<Record<FaultClass, ClassSummary>>;
  runs: RunResult[];
  /** Each run that missed a goal, as "CLASS run K (seed S): why". */
  failures: string[];
  /**
   * When the classes were run in parts (`--add`): each part's classes and
   * provenance. The top-level date, commit and seed are the latest part's.
   */
  parts?: CampaignPart[];
}

export interface CampaignPart {
  classes: FaultClass[];
  date: string;
  commit: string;
  seed: number;
  runsPerClass: number;
  powerCuts: number;
  durationS?: number;
  quietStart?: boolean;
}

const partOf = (r: CampaignResult): CampaignPart => ({
  classes: [...new Set(r.runs.map((x) => x.class))],
  date: r.date,
  commit: r.commit,
  seed: r.seed,
  runsPerClass: r.runsPerClass,
  powerCuts: r.powerCuts,
  durationS: r.durationS,
  quietStart: r.quietStart,
});

/**
 * Adds a campaign's classes to earlier results: the earlier runs of those
 * classes are replaced, the others kept with their own part's provenance.
 */
export function addTo(earlier: CampaignResult | undefined, res: CampaignResult): CampaignResult {
  if (!earlier) return { ...res, parts: [partOf(res)] };
  const now = new Set(res.runs.map((x) => x.class));
  const kept = earlier.runs.filter((x) => !now.has(x.class));
  const parts = (earlier.parts ?? [partOf(earlier)])
    .map((p) => ({ ...p, classes: p.classes.filter((c) => !now.has(c)) }))
    .filter((p) => p.classes.length > 0);
  const runs = [...kept, ...res.runs];
  return { ...res, runs, classes: summarize(runs), failures: failuresOf(runs), powerCuts: runs.filter((x) => x.class === "power-cut").length, parts: [...parts, partOf(res)] };
}

// --- randomness from a seed ---------------------------------------------------

/** The seed of one run, from the campaign's seed, the class and the run's number. */
export function runSeed(seed: number, cls: FaultClass, run: number): number {
  let h = seed >>> 0;
  for (const c of `${cls}:${run}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h;
}

// --- looking at the guest ------------------------------------------------------

interface UnitView {
  state: string;
  pid?: number;
  restarts: number;
}

/** Runs a guest script; a script that outlives timeoutMs is code 124 with what it said, as timeout(1) would. */
async function run(g: Guest, script: string, timeoutMs = 60_000): Promise<{ code: number; output: string }> {
  try {
    return await g.sh(PRELUDE + script, timeoutMs);
  } catch (e) {
    if (g.exited) throw e;
    return { code: 124, output: `(did not finish within ${timeoutMs / 1000} s: ${script.split("\n")[0]!.slice(0, 80)})` };
  }
}

/** The units as the supervisor sees them; undefined while it does not answer. */
async function units(g: Guest): Promise<Map<string, UnitView> | undefined> {
  const r = await run(g, "timeout 30 paio --json units", 45_000);
  if (r.code !== 0) return undefined;
  try {
    const list = JSON.parse(r.output) as { name: string; state: string; pid?: number; restarts: number }[];
    return new Map(list.map((u) => [u.name, { state: u.state, pid: u.pid, restarts: u.restarts }]));
  } catch {
    return undefined;
  }
}

async function unitDetail(g: Guest, unit: string): Promise<{ frozen: boolean; pids?: number; state: string; reason: string } | undefined> {
  const r = await run(g, `timeout 30 paio --json status ${unit}`, 45_000);
  if (r.code !== 0) return undefined;
  try {
    const s = JSON.parse(r.output);
    return { frozen: !!s.frozen, pids: s.cgroup?.pids_current, state: s.state, reason: s.reason };
  } catch {
    return undefined;
  }
}

/** Incidents about `unit` the agent is still working on (open, or a remedy being judged), as "UNIT CLASS"; undefined while they cannot be read. */
async function working(g: Guest, unit: string): Promise<string[] | undefined> {
  const r = await run(g, "timeout 30 paio --json incidents", 45_000);
  if (r.code !== 0) return undefined;
  try {
    const list = JSON.parse(r.output) as { unit: string | null; class: string; state: string }[];
    return list.filter((i) => i.unit === unit && (i.state === "open" || i.state === "healing")).map((i) => `${i.unit} ${i.class}`);
  } catch {
    return undefined;
  }
}

const allRunning = (u: Map<string, UnitView>): boolean => [...u.values()].every((x) => x.state === "running");

/** Waits until cond holds (polled every 500 ms); the time it took, or undefined after timeoutMs. */
async function until(cond: () => Promise<boolean>, timeoutMs: number): Promise<number | undefined> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await cond()) return Date.now() - start;
    await Bun.sleep(500);
  }
  return undefined;
}

/** What may be lost: the knowledge base, the audit chain, the logger's lines. */
/** The logger's last number now: a run checks only the lines written after it. */
async function loggerMark(g: Guest): Promise<number> {
  const r = await run(g, "tail -n 50 /var/lib/paio/logs/logger.log 2>/dev/null | sed -n 's/^line \\([0-9]*\\)$/\\1/p' | tail -n 1");
  return Number(r.output.trim()) || 0;
}

async function lossChecks(g: Guest, opts: { loggerGapAllowed?: boolean; sinceLine?: number } = {}): Promise<{ lost: string[]; notes: string[]; auditRecords?: number }> {
  const lost: string[] = [];
  const notes: string[] = [];
  const a = await run(g, "paio --json audit verify", 120_000);
  let auditRecords: number | undefined;
  try {
    const v = JSON.parse(a.output);
    auditRecords = v.records;
    if (a.code !== 0 || v.ok === false) lost.push(`audit verify failed: ${a.output.trim().slice(0, 300)}`);
  } catch {
    lost.push(`audit verify did not answer: ${a.output.trim().slice(0, 300)}`);
  }
  // The logger's last 400 lines: whole and consecutive. A line the power cut
  // tore in half may end the file, or be followed by the supervisor's note
  // that it was cut short (the logger then writes that line again in full).
  const l = await run(g, "tail -n 400 /var/lib/paio/logs/logger.log | od -An -c | grep -c '\\\\0' || true; echo ===; tail -n 400 /var/lib/paio/logs/logger.log");
  const [nulCount, text = ""] = l.output.split("===\n");
  if (Number(nulCount?.trim()) > 0) lost.push("the logger's log holds NUL bytes (blocks allocated but never written)");
  const lines = text.split("\n").filter((x) => x !== "");
  let prev: number | undefined;
  let gaps = 0;
  for (const [i, line] of lines.entries()) {
    const m = /^line (\d+)$/.exec(line);
    // The supervisor's own notes in a unit's log (a torn tail it removed after a power cut, say).
    if (line.startsWith("paio: ")) continue;
    // A torn line the supervisor noted ("li", or "line 28" of "line 287") is skipped like its note: the numbering must run on across it.
    if (lines[i + 1]?.startsWith(CUT_SHORT_MARK)) continue;
    if (!m) {
      // Lines from before this run are an earlier run's business (a full disk tears lines: "lline 501").
      const before = prev !== undefined && prev < (opts.sinceLine ?? 0);
      if (!before && i < lines.length - 1 && !/^line \d*$/.test(line)) {
        const what = `the logger's log has a malformed line: ${JSON.stringify(line.slice(0, 80))}`;
        if (opts.loggerGapAllowed) notes.push(`${what} (written while the disk was full)`);
        else lost.push(what);
      }
      prev = undefined;
      continue;
    }
    const n = Number(m[1]);
    if (prev !== undefined && prev >= (opts.sinceLine ?? 0) && n !== prev + 1) gaps++;
    prev = n;
  }
  if (gaps > 0) {
    if (opts.loggerGapAllowed) notes.push(`logger: ${gaps} gap(s) in its numbering`);
    else lost.push(`the logger's log skips numbers ${gaps} time(s)`);
  }
  return { lost, notes, auditRecords };
}

// --- the faults ----------------------------------------------------------------

interface Fault {
  /** The unit the fault hits, drawn with the run's random numbers. */
  target(r: () => number): string;
  /** Injects the fault; returns what the injection printed. */
  inject(g: Guest, target: string, base: Map<string, UnitView>): Promise<string>;
  /** Must the target's process be replaced for the run to count as recovered? */
  replaced: boolean;
  /** How long the cause lasts before it is cleared (ms). */
  holdMs?: number;
  clear?(g: Guest): Promise<void>;
  /** More to check before the run counts as recovered. */
  done?(g: Guest, target: string): Promise<boolean>;
  /**
   * Did the fault take hold? A run whose fault missed its target proves
   * nothing. Given the target's states seen from the fault until recovery and
   * what the injection printed. Without it: a fault that replaces the target
   * took hold when recovery saw the process change.
   */
  tookHold?(seen: Set<string>, injected: string, ctx: { supervisorReplaced: boolean }): boolean;
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const pidOf = (base: Map<string, UnitView>, unit: string): number => {
  const pid = base.get(unit)?.pid;
  if (!pid) throw new Error(`${unit} has no PID before the fault`);
  return pid;
};
const guest = async (g: Guest, script: string, timeoutMs?: number): Promise<string> => (await run(g, script, timeoutMs)).output;

const FAULTS: Record<Exclude<FaultClass, "power-cut">, Fault> = {
  "kill-unit": {
    target: (r) => pick(r, CHAOS_UNITS),
    inject: (g, t, base) => guest(g, `kill -9 ${pidOf(base, t)}`),
    replaced: true,
  },
  // Every process of the web service stopped: its HTTP check must find it dead.
  hang: {
    target: () => "web",
    inject: (g, t, base) => guest(g, `kill -STOP ${pidOf(base, t)}`),
    replaced: true,
  },
  // Busy for 20 s: checks time out while it works, so it is seen degraded. It must not be restarted.
  slow: {
    target: () => "web",
    inject: (g) => guest(g, "touch /run/chaos/slow"),
    replaced: false,
    holdMs: 20_000,
    clear: async (g) => void (await run(g, "rm -f /run/chaos/slow")),
    tookHold: (seen) => seen.has("degraded"),
  },
  // The batch job cannot start for 20 s: the start limit must end the loop,
  // and the unit must run again once its cause is gone.
  "crash-loop": {
    target: () => "batch",
    inject: (g, t, base) => guest(g, `echo $(( $(cut -d. -f1 /proc/uptime) + 20 )) > /run/chaos/crash-until; kill -9 ${pidOf(base, t)}`),
    replaced: true,
    // Not before its cause is gone: the process the supervisor starts at once fails a moment later, and must not count as recovered.
    done: async (g) => (await run(g, "[ $(cut -d. -f1 /proc/uptime) -gt $(cat /run/chaos/crash-until 2>/dev/null || echo 0) ]")).code === 0,
    tookHold: (seen) => seen.has("backoff") || seen.has("failed"),
  },
  "leak-oom": {
    target: () => "leaky",
    inject: (g) => guest(g, "touch /run/chaos/leak"),
    replaced: true,
  },
  // Recovered when the bomb is gone and the service runs again, unfrozen, with its usual few processes.
  "fork-bomb": {
    target: () => "workers",
    // The service looks for the flag every second; the most processes seen in the next 15 s (or until the bomb is ended) is printed.
    // The shell may die at its first failed fork between two looks, so failed forks in its log count too.
    inject: (g) => guest(g, `log=/var/lib/paio/logs/workers.log; f0=$(grep -c "can't fork" $log); touch /run/chaos/bomb; max=0; i=0
      while [ $i -lt 30 ]; do n=$(cat /sys/fs/cgroup/paio/workers/pids.current 2>/dev/null || echo 0); [ "$n" -gt "$max" ] && max=$n; [ "$max" -gt 20 ] && break; [ "$(grep -c "can't fork" $log)" -gt "$f0" ] && max=64 && break; sleep 0.5; i=$((i + 1)); done
      echo $max; [ -e /run/chaos/bomb ] && echo "the flag was never taken"; true`),
    replaced: true,
    done: async (g, t) => {
      const d = await unitDetail(g, t);
      return !!d && !d.frozen && (d.pids ?? 99) <= 8;
    },
    tookHold: (_seen, injected) => Number(injected.trim().split("\n")[0]) > 20,
  },
  // The data partition filled to the last block for 15 s, then the file is removed.
  // Nothing may be restarted, and the supervisor and agent must keep answering.
  "disk-full": {
    target: () => "(data partition)",
    inject: (g) => guest(g, "dd if=/dev/zero of=/var/lib/paio/chaos-fill bs=1M 2>/dev/null; sync; df -k /var/lib/paio | tail -n 1", 120_000),
    replaced: false,
    holdMs: 15_000,
    clear: async (g) => void (await run(g, "rm -f /var/lib/paio/chaos-fill; sync")),
    // df's "Available" column: no block left (ext4 keeps its reserved blocks for root, which dd used too).
    tookHold: (_seen, injected) => /\s0\s+100%/.test(injected),
  },
  // PID 1 starts a new supervisor, which takes the running units back (same PIDs).
  "kill-supervisor": {
    target: () => "(supervisor)",
    inject: (g) => guest(g, "p=$(pgrep /usr/lib/paio/supervisor.js); kill -9 $p; echo $p"),
    replaced: false,
    tookHold: (_seen, _injected, ctx) => ctx.supervisorReplaced,
  },
  "kill-agent": {
    target: () => "agent",
    inject: (g, t, base) => guest(g, `kill -9 ${pidOf(base, t)}`),
    replaced: true,
    done: async (g) => (await run(g, "timeout 10 paio agent status >/dev/null 2>&1")).code === 0,
  },
};

/** Units whose process may change when TARGET's does (none today: the publisher reconnects by itself). */
const FOLLOWERS: Record<string, string[]> = {};

async function oneRun(g: Guest, cls: Exclude<FaultClass, "power-cut">, runNo: number, seed: number, log: (s: string) => void): Promise<RunResult> {
  const r = rng(seed);
  const fault = FAULTS[cls];
  const target = fault.target(r);
  const result: RunResult = { class: cls, run: runNo, seed, target, recovered: false, wronglyKilled: [], lost: [], notes: [], tookHold: false };
  const notRunning = (u: Map<string, UnitView> | undefined): string =>
    [...(u ?? new Map<string, UnitView>()).entries()].filter(([, v]) => v.state !== "running").map(([k, v]) => `${k} ${v.state}`).join(", ");
  // Start from a quiet device: every unit running.
  if ((await until(async () => { const u = await units(g); return !!u && allRunning(u); }, 120_000)) === undefined) {
    result.notes.push(`not every unit was running before the fault: ${notRunning(await units(g))}`);
  }
  // ... and with no incident about the target still being worked on: each run is one fault met afresh. The same
  // fault again inside a remedy's recovery window (outcome_window, 60 s) is a fault that came back, which the agent
  // rightly meets with the next remedy of its ladder; that is tested in tests/unit/agent-learning.test.ts, not here.
  let busy: string[] | undefined;
  if ((await until(async () => (busy = await working(g, target))?.length === 0, 150_000)) === undefined) {
    result.notes.push(`the agent was still working on an incident before the fault: ${busy?.join(", ") ?? "(incidents could not be read)"}`);
  }
  let base = await units(g);
  for (let i = 0; !base && i < 10; i++) base = await units(g);
  if (!base) throw new Error(`${cls} run ${runNo}: the supervisor did not answer before the fault`);
  const supBefore = (await run(g, "pgrep /usr/lib/paio/supervisor.js")).output.trim();
  const sinceLine = await loggerMark(g);
  // The target's states from the fault until recovery.
  const seen = new Set<string>();
  const look = async (): Promise<Map<string, UnitView> | undefined> => {
    const u = await units(g);
    seen.add(u ? (u.get(target)?.state ?? "(gone)") : "(no answer)");
    return u;
  };
  // A random moment of the workload's life.
  await Bun.sleep(Math.floor(r() * 5000));
  const t0 = Date.now();
  const injected = await fault.inject(g, target, base);
  if (fault.holdMs) {
    // While the cause lasts, the supervisor must keep answering.
    const end = t0 + fault.holdMs;
    let silent = 0;
    while (Date.now() < end) {
      if (!(await look())) silent++;
      await Bun.sleep(1000);
    }
    if (silent > 0) result.notes.push(`the supervisor did not answer ${silent} time(s) during the fault`);
    await fault.clear!(g);
  }
  const targetPid = base.get(target)?.pid;
  const elapsed = await until(async () => {
    const u = await look();
    if (!u || !allRunning(u)) return false;
    if (fault.replaced && targetPid !== undefined && u.get(target)?.pid === targetPid) return false;
    if (fault.done && !(await fault.done(g, target))) return false;
    return true;
  }, 240_000);
  const after = await units(g);
  if (elapsed !== undefined) {
    result.recovered = true;
    result.recoveryMs = Date.now() - t0;
  } else {
    result.notes.push(`not recovered within 240 s: ${notRunning(after) || "(every unit running, but the fault's own condition not met)"}`);
  }
  const supAfter = (await run(g, "pgrep /usr/lib/paio/supervisor.js")).output.trim();
  result.tookHold = fault.tookHold
    ? fault.tookHold(seen, injected, { supervisorReplaced: supAfter !== supBefore })
    : !fault.replaced || (targetPid !== undefined && after?.get(target)?.pid !== targetPid);
  if (!result.tookHold) result.notes.push(`the fault did not take hold (target states seen: ${[...seen].join(", ")}; injection printed ${JSON.stringify(injected.trim().slice(0, 100))})`);
  // Who else lost their process?
  const mayChange = new Set(fault.replaced ? [target, ...(FOLLOWERS[target] ?? [])] : []);
  for (const [name, v] of base) {
    if (mayChange.has(name)) continue;
    const now = after?.get(name);
    if (now && now.pid !== v.pid) result.wronglyKilled.push(`${name} (pid ${v.pid} → ${now.pid ?? "none"}, ${now.state})`);
  }
  result.notes.push(`${target} states seen: ${[...seen].join(" → ")}`);
  if (!target.startsWith("(")) {
    const d = await unitDetail(g, target);
    if (d) result.notes.push(`${target} now: ${d.state} — ${d.reason}`);
  }
  const loss = await lossChecks(g, { loggerGapAllowed: cls === "disk-full" || (cls === "kill-unit" && target === "logger"), sinceLine });
  result.lost.push(...loss.lost);
  result.notes.push(...loss.notes);
  // A run that missed: the target's last log lines, to see why.
  if ((!result.recovered || !result.tookHold) && !target.startsWith("(")) {
    const tail = (await run(g, `tail -n 5 /var/lib/paio/logs/${target}.log 2>/dev/null`)).output.trim().split("\n").map((l) => l.slice(0, 120));
    if (tail.length) result.notes.push(`${target}'s last log lines: ${tail.join(" | ")}`);
    const why = (await run(g, `timeout 30 paio why ${target} 2>&1 | tail -n 3`, 45_000)).output.trim().split("\n").map((l) => l.slice(0, 300));
    result.notes.push(`the agent about ${target}: ${why.join(" | ")}`);
  }
  if (!result.recovered) {
    const sup = (await run(g, "tail -n 5 /var/lib/paio/logs/supervisor.log 2>/dev/null")).output.trim().split("\n").map((l) => l.slice(0, 200));
    result.notes.push(`the supervisor's last log lines: ${sup.join(" | ")}`);
    const init = g.console.lines().filter((l) => l.includes("paio-init")).slice(-5);
    if (init.length) result.notes.push(`PID 1 said last: ${init.join(" | ")}`);
  }
  // Clear what a failed run may have left (a fault the campaign caused must not spill into the next run).
  if (!result.recovered) {
    await run(g, "rm -f /run/chaos/slow /run/chaos/leak /run/chaos/bomb /run/chaos/crash-until /var/lib/paio/chaos-fill");
    for (const [name, v] of after ?? new Map<string, UnitView>()) if (v.state !== "running") await run(g, `paio thaw ${name} >/dev/null 2>&1; paio start ${name} >/dev/null 2>&1 || true`);
  }
  log(`  ${cls} run ${runNo} (seed ${seed}) target ${target}: ${result.recovered ? `recovered in ${(result.recoveryMs! / 1000).toFixed(1)} s` : "NOT recovered"}` +
    `${result.wronglyKilled.length ? `; wrongly killed: ${result.wronglyKilled.join(", ")}` : ""}${result.lost.length ? `; LOST: ${result.lost.join("; ")}` : ""}` +
    ` [${result.notes.join("; ")}]`);
  return result;
}

// --- power cuts ------------------------------------------------------------------

// A unit file replaced over and over (written beside it, then renamed over it) and applied with paio reload.
const UNIT_SWAPPER = `
v=0
while true; do
  v=$((v + 1))
  printf 'description = "swapped %d times"\\nexec = ["/bin/sleep", "%d"]\\nrestart = "always"\\n' $v $((100000 + v)) > /var/lib/paio/units/swap.toml.new
  mv /var/lib/paio/units/swap.toml.new /var/lib/paio/units/swap.toml
  paio reload >/dev/null 2>&1
  sleep 0.3
done
`;

/** e2fsck on a copy of the data partition: the journal replayed, then a full check that must find nothing. */
function fsckData(disk: string, dir: string): string | undefined {
  const { offset, size } = partition(disk, "paio-data");
  const copy = join(dir, "data.ext4");
  const dd = Bun.spawnSync(["dd", `if=${disk}`, `of=${copy}`, "bs=1M", `skip=${offset}`, `count=${size}`, "iflag=skip_bytes,count_bytes", "conv=sparse", "status=none"]);
  if (dd.exitCode !== 0) return `could not copy the data partition: ${dd.stderr.toString()}`;
  try {
    const replay = Bun.spawnSync(["e2fsck", "-y", "-E", "journal_only", copy], { stdout: "pipe", stderr: "pipe" });
    if ((replay.exitCode ?? 8) >= 4) return `journal replay failed (e2fsck ${replay.exitCode}): ${replay.stdout.toString().slice(-300)}`;
    const check = Bun.spawnSync(["e2fsck", "-fn", copy], { stdout: "pipe", stderr: "pipe" });
    if (check.exitCode !== 0) return `e2fsck found errors (${check.exitCode}): ${(check.stdout.toString() + check.stderr.toString()).slice(-400)}`;
    return undefined;
  } finally {
    rmSync(copy, { force: true });
  }
}

async function powerCuts(cuts: number, seed: number, log: (s: string) => void): Promise<RunResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "paio-chaos-cut-"));
  const disk = join(dir, "disk.img");
  Bun.spawnSync(["cp", "--sparse=always", IMAGE, disk]);
  const results: RunResult[] = [];
  try {
    let lastRecords = 0;
    let pending: RunResult | undefined;
    for (let i = 0; i <= cuts; i++) {
      const t0 = Date.now();
      const g = await bootGuest({ disk, snapshot: false });
      try {
        if (i === 0) {
          await run(g, installScript() + "\n" + `printf 'exec = ["/bin/sleep", "100000"]\\nrestart = "always"\\n' > /var/lib/paio/units/swap.toml; paio reload >/dev/null; sync`);
        }
        // After a cut: everything back, nothing lost.
        const back = await until(async () => {
          const u = await units(g);
          if (!u || !allRunning(u) || !u.has("swap") || !u.has("logger")) return false;
          return (await run(g, "timeout 10 paio agent status >/dev/null 2>&1")).code === 0;
        }, 300_000);
        if (pending) {
          const res = pending;
          if (back === undefined) {
            const u = await units(g);
            res.notes.push(`not every unit running 300 s after power-on: ${[...(u ?? new Map()).entries()].filter(([, v]) => v.state !== "running").map(([k, v]) => `${k} ${v.state}`).join(", ")}`);
          } else {
            res.recovered = true;
            res.recoveryMs = Date.now() - t0;
          }
          const loss = await lossChecks(g, { loggerGapAllowed: false });
          res.lost.push(...loss.lost);
          res.notes.push(...loss.notes);
          if (loss.auditRecords !== undefined) {
            if (loss.auditRecords < lastRecords) res.lost.push(`the audit log shrank from ${lastRecords} to ${loss.auditRecords} records`);
            lastRecords = loss.auditRecords;
          }
          const errs = (await run(g, "paio --json units >/dev/null; grep -c 'unit error' /var/lib/paio/logs/supervisor.log 2>/dev/null || true")).output.trim();
          res.notes.push(`audit records: ${loss.auditRecords ?? "?"}`);
          if (Number(errs) > 0) res.notes.push(`supervisor log: ${errs} unit error line(s)`);
          log(`  power-cut run ${res.run} (seed ${res.seed}) at ${res.target}: ${res.recovered ? `back in ${(res.recoveryMs! / 1000).toFixed(1)} s after power-on` : "NOT recovered"}${res.lost.length ? `; LOST: ${res.lost.join("; ")}` : ""} [${res.notes.join("; ")}]`);
          results.push(res);
        } else if (back === undefined) {
          throw new Error("the power-cut guest did not come up with every unit running");
        } else {
          lastRecords = (await lossChecks(g)).auditRecords ?? 0;
        }
        if (i === cuts) break;
        // Heavy writes: audit records, agent history (always), the logger, a unit file replaced and reloaded.
        const s = runSeed(seed, "power-cut", i + 1);
        const r = rng(s);
        await run(g, `cat > /run/writer.js <<'JS'\n${AUDIT_WRITER}JS\n(bun /run/writer.js </dev/null >/dev/null 2>&1 &)\ncat > /run/swapper.sh <<'SH'\n${UNIT_SWAPPER}SH\n(sh /run/swapper.sh </dev/null >/dev/null 2>&1 &)`);
        // The writer's first records (Bun starts slowly in a busy guest), then a random moment.
        const writing = await until(async () => {
          const v = await run(g, "paio --json audit verify 2>/dev/null || true");
          try { return JSON.parse(v.output).records > lastRecords; } catch { return false; }
        }, 60_000);
        const delay = 500 + Math.floor(r() * 5000);
        await Bun.sleep(delay);
        pending = { class: "power-cut", run: i + 1, seed: s, target: `${(delay / 1000).toFixed(1)} s into the writes`, recovered: false, wronglyKilled: [], lost: [], notes: [], tookHold: writing !== undefined };
        if (writing === undefined) pending.notes.push("the audit writer added no record within 60 s: the cut fell on a quiet device");
        g.kill();
        const bad = fsckData(disk, dir);
        if (bad) pending.lost.push(`data file system: ${bad}`);
      } catch (e) {
        g.kill();
        throw e;
      } finally {
        if (i === cuts) await g.shutdown().catch(() => g.kill());
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

// --- the campaign --------------------------------------------------------------

export interface CampaignOptions {
  runs: number;
  cuts: number;
  seed: number;
  classes: readonly FaultClass[];
  /** One run again: the class and its seed. */
  replay?: { class: FaultClass; seed: number };
  /** Add these classes' results to the earlier ones in chaos.json (addTo). */
  add?: boolean;
  log?: (s: string) => void;
}

const median = (xs: number[]): number | undefined => {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

export function summarize(runs: RunResult[]): Partial<Record<FaultClass, ClassSummary>> {
  const out: Partial<Record<FaultClass, ClassSummary>> = {};
  for (const cls of FAULT_CLASSES) {
    const rs = runs.filter((r) => r.class === cls);
    if (!rs.length) continue;
    const times = rs.filter((r) => r.recovered).map((r) => r.recoveryMs!);
    out[cls] = {
      runs: rs.length,
      recovered: rs.filter((r) => r.recovered).length,
      medianRecoveryMs: median(times),
      maxRecoveryMs: times.length ? Math.max(...times) : undefined,
      wronglyKilled: rs.reduce((n, r) => n + r.wronglyKilled.length, 0),
      lost: rs.filter((r) => r.lost.length).length,
    };
  }
  return out;
}

/** Every run that missed a goal: not recovered, a unit wrongly killed, anything lost. */
export function failuresOf(runs: RunResult[]): string[] {
  return runs.flatMap((r) => {
    const why = [
      ...(r.recovered ? [] : ["not recovered"]),
      ...(r.tookHold ? [] : ["the fault did not take hold, so the run proves nothing"]),
      ...r.wronglyKilled.map((w) => `wrongly killed ${w}`),
      ...r.lost.map((l) => `lost: ${l}`),
    ];
    return why.length ? [`${r.class} run ${r.run} (seed ${r.seed}, replay with --replay ${r.class}:${r.seed}): ${why.join("; ")}`] : [];
  });
}

export async function campaign(opts: CampaignOptions): Promise<CampaignResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  requireBuiltImage();
  // The commit the image was built from: read at the start, so work committed during a long campaign is not credited to it.
  const commit = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: REPO }).stdout.toString().trim() || "unknown";
  const started = Date.now();
  const runs: RunResult[] = [];
  const inGuest = opts.replay
    ? (opts.replay.class === "power-cut" ? [] : [opts.replay.class])
    : opts.classes.filter((c): c is Exclude<FaultClass, "power-cut"> => c !== "power-cut");
  if (inGuest.length) {
    // One guest for the in-guest classes, two CPUs like a small board; the
    // workload stays across runs, as on a device that meets fault after fault.
    log(`chaos: booting the image with the workload (${CHAOS_UNITS.join(", ")})`);
    // It lives through every in-guest run: QEMU's own time limit (30 min unless told) would end it mid-campaign.
    const n = opts.replay ? 1 : opts.runs;
    const g = await bootGuest({ cpus: 2, lifetimeS: 1800 + inGuest.length * n * 600 });
    try {
      await run(g, installScript());
      // A run that cannot even start (the supervisor no longer answers) is a missed run, kept with the others: the
      // guest is in no state for more, so the in-guest classes end there, and what ran before is still written.
      guest: for (const cls of inGuest as Exclude<FaultClass, "power-cut">[]) {
        log(`chaos: ${cls}`);
        for (let k = 1; k <= n; k++) {
          const seed = opts.replay?.seed ?? runSeed(opts.seed, cls, k);
          try {
            runs.push(await oneRun(g, cls, k, seed, log));
          } catch (e) {
            const why = (e as Error).message;
            runs.push({ class: cls, run: k, seed, target: "-", recovered: false, wronglyKilled: [], lost: [], notes: [`the run could not be carried out: ${why}; the campaign's in-guest part stopped here`], tookHold: false });
            log(`  ${cls} run ${k} (seed ${seed}): NOT carried out: ${why}; the in-guest classes stop here`);
            break guest;
          }
        }
      }
    } finally {
      await g.shutdown().catch(() => g.kill());
    }
  }
  const cuts = opts.replay ? (opts.replay.class === "power-cut" ? 1 : 0) : opts.classes.includes("power-cut") ? opts.cuts : 0;
  if (cuts > 0) {
    log(`chaos: power-cut (${cuts} cuts during heavy writes, each followed by a boot that checks everything)`);
    runs.push(...(await powerCuts(cuts, opts.replay?.seed ?? opts.seed, log)));
  }
  return {
    date: new Date().toISOString(),
    commit,
    durationS: Math.round((Date.now() - started) / 1000),
    quietStart: true,
    machine: `${cpus().length} CPUs (${cpus()[0]?.model ?? "unknown"}), guest: ${OUT.endsWith("arm64") ? "arm64" : "x86_64"} under QEMU`,
    seed: opts.seed,
    runsPerClass: opts.runs,
    powerCuts: cuts,
    classes: summarize(runs),
    runs,
    failures: failuresOf(runs),
  };
}

const secs = (ms?: number): string => (ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`);

export function table(res: CampaignResult): string {
  const rows = [["class", "runs", "recovered", "median recovery", "max recovery", "wrongly killed", "lost"]];
  for (const [cls, s] of Object.entries(res.classes)) {
    rows.push([cls, String(s!.runs), `${s!.recovered}/${s!.runs}`, secs(s!.medianRecoveryMs), secs(s!.maxRecoveryMs), String(s!.wronglyKilled), String(s!.lost)]);
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  ")).join("\n");
}

function parseArgs(argv: string[]): CampaignOptions {
  const opts: CampaignOptions = {
    runs: Number(process.env.PAIO_CHAOS_RUNS ?? 10),
    cuts: Number(process.env.PAIO_CHAOS_CUTS ?? 50),
    seed: Number(process.env.PAIO_CHAOS_SEED ?? Date.now() % 1_000_000),
    classes: FAULT_CLASSES,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    const need = (): string => {
      if (v === undefined) throw new Error(`${a} needs a value`);
      i++;
      return v;
    };
    if (a === "--runs") opts.runs = Number(need());
    else if (a === "--cuts") opts.cuts = Number(need());
    else if (a === "--seed") opts.seed = Number(need());
    else if (a === "--add") opts.add = true;
    else if (a === "--class") {
      const cs = need().split(",");
      const bad = cs.filter((c) => !(FAULT_CLASSES as readonly string[]).includes(c));
      if (bad.length) throw new Error(`unknown fault class ${bad.join(", ")}; the classes: ${FAULT_CLASSES.join(", ")}`);
      opts.classes = cs as FaultClass[];
    } else if (a === "--replay") {
      const [c, s] = need().split(":");
      if (!(FAULT_CLASSES as readonly string[]).includes(c!) || !/^\d+$/.test(s ?? "")) throw new Error(`--replay wants CLASS:SEED (a seed the campaign printed), not ${v}`);
      opts.replay = { class: c as FaultClass, seed: Number(s) };
    } else throw new Error(`unknown argument ${a}; usage: campaign.ts [--runs N] [--cuts N] [--seed S] [--class a,b] [--add] | --replay CLASS:SEED`);
  }
  for (const [k, n] of [["--runs", opts.runs], ["--cuts", opts.cuts], ["--seed", opts.seed]] as const) {
    if (!Number.isInteger(n) || n < 0) throw new Error(`${k} must be a whole number ≥ 0, not ${n}`);
  }
  return opts;
}

if (import.meta.main) {
  let opts: CampaignOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`chaos: ${(e as Error).message}`);
    process.exit(2);
  }
  console.log(`chaos: seed ${opts.seed}, ${opts.runs} run(s) per class, ${opts.cuts} power cut(s)`);
  const file = join(REPO, "out", "reliability", "chaos.json");
  const ran = await campaign(opts);
  let earlier: CampaignResult | undefined;
  if (opts.add && existsSync(file)) {
    try {
      earlier = JSON.parse(readFileSync(file, "utf8")) as CampaignResult;
    } catch (e) {
      console.error(`chaos: ${file}: cannot add to it (${(e as Error).message}); writing this run's results alone`);
    }
  }
  const res = opts.add ? addTo(earlier, ran) : ran;
  mkdirSync(join(REPO, "out", "reliability"), { recursive: true });
  writeFileSync(file + ".tmp", JSON.stringify(res, null, 2) + "\n");
  copyFileSync(file + ".tmp", file);
  rmSync(file + ".tmp");
  console.log(`\n${table(res)}\n\nseed ${res.seed}; results in out/reliability/chaos.json`);
  if (res.failures.length) {
    console.log(`\nchaos: ${res.failures.length} run(s) missed a goal:\n${res.failures.map((f) => `  ${f}`).join("\n")}`);
    process.exit(1);
  }
  console.log("chaos: every run recovered, nothing wrongly killed, nothing lost");
}

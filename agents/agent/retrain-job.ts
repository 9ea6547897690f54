// Retraining as a separate, low-priority process, so the agent's tick never
// waits on it and its CPU is never the agent's.
//
// The agent starts the worker (`bun agent.js retrain SPEC`, the same bundle)
// at nice 19, and, where cgroup v2 is writable, inside the group
// /sys/fs/cgroup/paio-retrain, limited to `retrain_cpu_percent` of one CPU
// (cpu.max), the least CPU weight (cpu.weight 1) and 256 MiB (memory.max).
// The worker's shell wrapper joins the group before it execs Bun, so nothing
// of the worker runs outside it. The group is a sibling of the units' tree,
// like the quarantine group, not a child of the agent's own: cgroup v2 lets a
// group with processes of its own (the agent's) have no child groups with
// their own CPU limit. Without a writable cgroup v2 (a host running the
// tests), the worker runs at nice 19 only, and the agent says so.
//
// The agent looks at the worker once a tick; when it has exited, the agent
// reads its report, applies the gate (agents/models/retrain.ts) and installs
// or discards the candidate.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { CPU_PERIOD_US } from "../../lib/config/measure.ts";
import { Knowledge } from "../knowledge/store.ts";
import { deviceKey } from "../models/manifest.ts";
import { discardCandidate, gate, installCandidate, retrainWorker, type RetrainReport, type RetrainSpec, type WorkerResult } from "../models/retrain.ts";

/** The worker's cgroup, beside /sys/fs/cgroup/paio (the units) and paio-quarantine. */
export const RETRAIN_GROUP = "paio-retrain";
/** A worker still running after this long is stopped; the next retraining starts afresh. */
export const RETRAIN_TIMEOUT_MS = 30 * 60_000;
export const RETRAIN_MEMORY_MAX = 256 << 20;
/** How much history a retraining uses (the knowledge base keeps 1-second frames for an hour). */
export const RETRAIN_HOURS = 1;

/** The worker: this same program with the `retrain` subcommand (agents/agent/main.ts). */
export function defaultWorkerCommand(): string[] {
  return [process.execPath, Bun.main, "retrain"];
}

/**
 * Makes the worker's cgroup and sets its limits; returns its folder, or why
 * it cannot (then the worker runs at nice 19 only). A worker left by an
 * earlier agent (one that crashed while it trained) is killed first.
 */
export function prepareRetrainGroup(base: string, cpuPercent: number): { dir: string } | { why: string } {
  if (!existsSync(join(base, "cgroup.controllers"))) return { why: `no cgroup v2 hierarchy at ${base}` };
  let enabled = "";
  try {
    enabled = readFileSync(join(base, "cgroup.subtree_control"), "utf8");
  } catch (e) {
    return { why: `cannot read ${join(base, "cgroup.subtree_control")}: ${(e as Error).message}` };
  }
  if (!/\bcpu\b/.test(enabled)) return { why: `the cpu controller is not enabled in ${join(base, "cgroup.subtree_control")}` };
  const dir = join(base, RETRAIN_GROUP);
  try {
    mkdirSync(dir, { recursive: true });
    if (existsSync(join(dir, "cgroup.kill")) && readFileSync(join(dir, "cgroup.procs"), "utf8").trim()) writeFileSync(join(dir, "cgroup.kill"), "1");
    const quota = Math.max(1000, Math.round((cpuPercent / 100) * CPU_PERIOD_US));
    writeFileSync(join(dir, "cpu.max"), `${quota} ${CPU_PERIOD_US}`);
    writeFileSync(join(dir, "cpu.weight"), "1");
    if (existsSync(join(dir, "memory.max"))) writeFileSync(join(dir, "memory.max"), String(RETRAIN_MEMORY_MAX));
    return { dir };
  } catch (e) {
    return { why: `cannot set up ${dir}: ${(e as Error).message}` };
  }
}

export interface StartOptions {
  command?: string[];
  /** The cgroup v2 mount (PAIO_CGROUP_ROOT, /sys/fs/cgroup by default). */
  cgroupBase?: string;
  cpuPercent: number;
}

/** A running worker. */
export class RetrainJob {
  private out: Promise<string>;
  private err: Promise<string>;

  constructor(
    private proc: Subprocess<"ignore", "pipe", "pipe">,
    readonly spec: RetrainSpec,
    /** Where it runs: "cgroup DIR, nice 19, ..." or "nice 19 only (why)". */
    readonly placement: string,
    readonly startedAt: number,
  ) {
    this.out = new Response(proc.stdout).text();
    this.err = new Response(proc.stderr).text();
  }

  get pid(): number {
    return this.proc.pid;
  }

  finished(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  kill(): void {
    this.proc.kill("SIGKILL");
  }

  /** The worker's report, once it has exited (waits for it otherwise). */
  async result(): Promise<WorkerResult> {
    const code = await this.proc.exited;
    const [out, err] = await Promise.all([this.out, this.err]);
    const last = out.trim().split("\n").pop() ?? "";
    try {
      const r = JSON.parse(last) as WorkerResult;
      if (r && typeof r.ok === "boolean") return r;
    } catch {
      // not a report: said below
    }
    const why = err.trim().split("\n").slice(-3).join(" / ") || `no report on its output${this.proc.signalCode ? `, killed by ${this.proc.signalCode}` : ""}`;
    return { ok: false, pid: this.proc.pid, reason: `the retraining process ${this.proc.pid} exited with status ${code}: ${why}` };
  }
}

/**
 * The worker's wrapper: the shell lowers itself to nice 19 and joins the
 * group (when there is one, named by $0), then becomes the worker, so every
 * thread Bun starts inherits both. renice, not nice: busybox in the image
 * has only renice.
 */
const WRAPPER =
  'renice -n 19 -p $$ >/dev/null || { echo "paio-retrain: cannot lower its priority with renice" >&2; exit 112; }; ' +
  'if [ -n "$0" ]; then echo $$ > "$0/cgroup.procs" || exit 113; fi; exec "$@"';

/** Starts the worker; never waits for it. */
export function startRetrain(spec: RetrainSpec, opts: StartOptions, now = Date.now()): RetrainJob {
  const worker = [...(opts.command ?? defaultWorkerCommand()), JSON.stringify(spec)];
  const group = prepareRetrainGroup(opts.cgroupBase ?? process.env.PAIO_CGROUP_ROOT ?? "/sys/fs/cgroup", opts.cpuPercent);
  const placement = "dir" in group
    ? `cgroup ${group.dir} (cpu.max ${opts.cpuPercent}% of one CPU, cpu.weight 1, memory.max ${RETRAIN_MEMORY_MAX >> 20} MiB), nice 19`
    : `nice 19 only, no CPU limit: ${group.why}`;
  const proc = Bun.spawn(["/bin/sh", "-c", WRAPPER, "dir" in group ? group.dir : "", ...worker], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env } });
  return new RetrainJob(proc, spec, placement, now);
}

/** Removes temporary files a worker left (an agent stopped while it trained). */
export function removeLeftovers(dir: string): void {
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) if (f.endsWith(".tmp")) discardCandidate(join(dir, f));
}

export interface RetrainOutcome {
  installed: boolean;
  /** One sentence for the log and the audit record's justification. */
  why: string;
  report?: RetrainReport;
}

/**
 * Judges a finished worker's report: a candidate that scores better than the
 * model in use is installed (signed with the device key in `keysDir`), any
 * other is deleted. The caller loads and uses an installed model.
 */
export async function finishRetrain(job: RetrainJob, paths: { dir: string; keysDir: string }, now = Date.now()): Promise<RetrainOutcome> {
  const r = await job.result();
  if (!r.ok) {
    discardCandidate(job.spec.out);
    return { installed: false, why: `retraining did not give a model: ${r.reason}` };
  }
  const g = gate(r);
  if (!g.install) {
    discardCandidate(r.candidate.file);
    return { installed: false, why: g.why, report: r };
  }
  try {
    installCandidate(r, paths.dir, deviceKey(paths.keysDir), now, job.spec.hours);
  } catch (e) {
    discardCandidate(r.candidate.file);
    return { installed: false, why: `${g.why}; but it could not be installed: ${(e as Error).message}`, report: r };
  }
  return { installed: true, why: g.why, report: r };
}

/** The worker's side: `agent.js retrain SPEC` prints one JSON report and exits. */
export async function retrainMain(arg: string | undefined): Promise<number> {
  let spec: RetrainSpec;
  try {
    spec = JSON.parse(arg ?? "") as RetrainSpec;
    if (typeof spec.db !== "string" || typeof spec.out !== "string" || typeof spec.now !== "number" || typeof spec.hours !== "number") throw new Error("needs db, out, now and hours");
  } catch (e) {
    console.error(`paio-retrain: the argument must be the agent's JSON retraining request: ${(e as Error).message}`);
    return 2;
  }
  let k: Knowledge | undefined;
  try {
    k = new Knowledge(spec.db);
    const r = await retrainWorker(spec, (from, to) => k!.frames(from, to));
    console.log(JSON.stringify(r));
    return 0;
  } catch (e) {
    console.error(`paio-retrain: ${(e as Error).stack ?? e}`);
    console.log(JSON.stringify({ ok: false, pid: process.pid, reason: (e as Error).message }));
    return 1;
  } finally {
    k?.close();
  }
}

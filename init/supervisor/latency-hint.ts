// A unit's latency hint (docs/units.md, `latency_nice`), per task, and how it
// is read back. What the kernel offers decides how a hint is carried out:
//
//   "per-task"  patched kernel: sched_setattr on the task (lib/sched-latency.ts),
//               and cpu.latency.nice on the unit's group, since CFS compares
//               only siblings: the task's hint acts inside its group, the
//               group's hint against the other units;
//   "cgroup"    only cpu.latency.nice (an older patched kernel): the group's hint;
//   "none"      stock kernel: plain nice of the main process.
//
// The hint is set on the main process right after it is spawned and before
// it joins its cgroup (the start wrapper waits for that, then execs), so the
// program and everything it forks inherit it.

import { readdirSync } from "node:fs";
import * as sched from "../../lib/sched-latency.ts";
import type { Cgroups } from "./cgroup.ts";

export type HintKernel = "per-task" | "cgroup" | "none";

/** What the kernel offers, and why (for the unit's log and `paio status`). */
export function hintKernel(cgroups: Cgroups): { kernel: HintKernel; why: string } {
  const p = sched.probe();
  if (p.state === "present") return { kernel: "per-task", why: p.why };
  if (cgroups.latencyHooks) return { kernel: "cgroup", why: p.why };
  return { kernel: "none", why: `${p.why}, and no cpu.latency.nice` };
}

/** The settings a unit asks for: a latency hint and a plain nice, each from a request at run time or (the hint) its unit file. */
export interface TaskWants {
  latencyNice?: number;
  /** Where the hint comes from, for the log line. */
  from?: "unit file" | "request";
  nice?: number;
}

/**
 * Applies what the unit asks for to its freshly spawned main process.
 * Returns the lines for the unit's log: which way was used and why, or why
 * nothing could be (the unit starts anyway).
 */
export function applyAtStart(pid: number, wants: TaskWants, cgroups: Cgroups, groupValue: () => number | undefined): string[] {
  const lines: string[] = [];
  const v = wants.latencyNice;
  if (v !== undefined) {
    const what = `latency_nice ${v}${wants.from === "request" ? " (set by request)" : ""}`;
    const { kernel, why } = hintKernel(cgroups);
    const group = () => `cgroup cpu.latency.nice ${groupValue() ?? "not set (no cgroup)"}`;
    if (kernel === "per-task") {
      const r = sched.set(pid, v);
      lines.push(r.ok
        ? `paio: ${what}: per-task hint set on the main process (pid ${pid}) through sched_setattr, inherited by what it runs; ${group()}`
        : `paio: ${what}: per-task hint not set: ${r.message}; ${group()}`);
    } else if (kernel === "cgroup") {
      lines.push(`paio: ${what}: ${group()} used instead, since ${why}`);
    } else if (wants.nice !== undefined) {
      lines.push(`paio: ${what}: not applied, since ${why}; the nice set by request is used`);
    } else {
      // The nearest stock lever; inside a cgroup it orders only the unit's own processes.
      const r = sched.setNice(pid, v);
      lines.push(r.ok
        ? `paio: ${what}: nice ${v} on the main process (pid ${pid}) used instead, since ${why}`
        : `paio: ${what}: not applied, since ${why}; nice ${v} failed too: ${r.message}`);
    }
  }
  if (wants.nice !== undefined) {
    const r = sched.setNice(pid, wants.nice);
    lines.push(r.ok ? `paio: nice ${wants.nice} (set by request) on the main process (pid ${pid})` : `paio: nice ${wants.nice} (set by request) not applied: ${r.message}`);
  }
  return lines;
}

/** The threads of a process (/proc/PID/task), for a unit without a cgroup. */
function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [];
  }
}

export interface TaskResult {
  /** Tasks (threads) changed. */
  tasks: number;
  /** Sentences for the tasks that could not be changed (a task that exited meanwhile is not one). */
  failed: string[];
}

/** Sets the hint and/or nice on every task of a running unit: its cgroup's threads, or without one the main process's. */
export function applyToTasks(unit: string, pid: number | undefined, wants: { latencyNice?: number; nice?: number }, cgroups: Cgroups): TaskResult {
  const tids = cgroups.available ? cgroups.threads(unit) : pid ? threadsOf(pid) : [];
  const out: TaskResult = { tasks: 0, failed: [] };
  for (const tid of tids) {
    let ok = true;
    for (const r of [wants.latencyNice === undefined ? undefined : sched.set(tid, wants.latencyNice), wants.nice === undefined ? undefined : sched.setNice(tid, wants.nice)]) {
      if (!r || r.ok) continue;
      ok = false;
      if (r.code !== "ESRCH" && !out.failed.includes(r.message)) out.failed.push(r.message);
    }
    if (ok) out.tasks++;
  }
  return out;
}

/** The hint in force for a unit, read back from the kernel (`paio status`). */
export interface HintStatus {
  /** What the kernel offers. */
  kernel: HintKernel;
  /** The main process. */
  pid?: number;
  /** The main process's per-task hint (sched_getattr), on a kernel that has it. */
  task?: number;
  /** The group's cpu.latency.nice, on a kernel that has it. */
  cgroup?: number;
  /** The main process's nice. */
  nice?: number;
  /** What the unit asks for: the hint set by request, else its unit file's latency_nice. */
  wanted?: number;
}

export function readHint(unit: string, pid: number | undefined, wanted: number | undefined, cgroups: Cgroups): HintStatus {
  const s: HintStatus = { kernel: hintKernel(cgroups).kernel };
  if (wanted !== undefined) s.wanted = wanted;
  if (cgroups.available) s.cgroup = cgroups.latencyNice(unit);
  if (pid === undefined) return s;
  s.pid = pid;
  const a = sched.get(pid);
  if (a.ok) {
    s.nice = a.nice;
    if (a.latencyNice !== undefined) s.task = a.latencyNice;
  }
  return s;
}

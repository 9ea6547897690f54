// How the agent gives a unit priority, by what the kernel offers (docs/agent.md,
// "Scheduling hooks"). Three tiers:
//
//   task-latency-nice    the patched kernel's per-task hint: on every task of
//                        the unit, and cpu.latency.nice on its group, since
//                        CFS compares siblings only (a task's hint acts inside
//                        its group, the group's against the other units);
//   cgroup-latency-nice  only cpu.latency.nice (a kernel with the group hint alone);
//   stock                cpu.weight and nice, and cpu.uclamp.min where the
//                        kernel has it.
//
// Every tier also sets cpu.weight. All changes go through the supervisor.

import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Request } from "../../init/control/protocol.ts";
import { probe } from "../../lib/sched-latency.ts";

export type SchedulingTier = "task-latency-nice" | "cgroup-latency-nice" | "stock";

export interface Scheduling {
  tier: SchedulingTier;
  /** The units' groups have cpu.uclamp.min (CONFIG_UCLAMP_TASK_GROUP). */
  uclamp: boolean;
}

/** What this kernel offers; `taskHint` says whether it has the per-task hint (the probe of lib/sched-latency.ts by default). */
export function detectScheduling(cgroupRoot: string, taskHint = () => probe().state === "present"): Scheduling {
  const uclamp = existsSync(join(cgroupRoot, "cpu.uclamp.min"));
  if (taskHint()) return { tier: "task-latency-nice", uclamp };
  return { tier: existsSync(join(cgroupRoot, "cpu.latency.nice")) ? "cgroup-latency-nice" : "stock", uclamp };
}

/** The agent's startup line: what it schedules through. */
export function schedulingLine(s: Scheduling): string {
  if (s.tier === "task-latency-nice") return "scheduling through per-task latency nice and cpu.latency.nice (patched kernel)";
  if (s.tier === "cgroup-latency-nice") return "scheduling through cpu.latency.nice (patched kernel)";
  return "scheduling through cpu.weight, nice and PSI (stock kernel: no latency hint)";
}

/** The tier in words, for a decision's justification. */
export function schedulingWords(s: Scheduling): string {
  if (s.tier === "task-latency-nice") return "the kernel's per-task latency nice on every task and its group's cpu.latency.nice (tier task-latency-nice)";
  if (s.tier === "cgroup-latency-nice") return "its group's cpu.latency.nice (tier cgroup-latency-nice: this kernel has no per-task latency hint)";
  return `cpu.weight and nice${s.uclamp ? " and cpu.uclamp.min" : ""} (tier stock: this kernel has no latency hint${s.uclamp ? "" : ", and no cpu.uclamp.min"})`;
}

export type Level = "high" | "normal" | "low";
const WEIGHT = { high: 400, normal: 100, low: 20 } as const;
/** The latency hint per level; on a stock kernel the same number is the tasks' nice, as the supervisor's fallback does. */
const LATENCY = { high: -10, normal: 0, low: 10 } as const;
/** cpu.uclamp.min in percent: a boosted unit runs at a higher CPU frequency when it wakes. */
const UCLAMP = { high: 20, normal: 0, low: 0 } as const;

/** The supervisor requests that give a unit a priority level, in order, and what they do in words. */
export function prioritizeRequests(s: Scheduling, unit: string, level: Level): { requests: Request[]; words: string } {
  const weight = WEIGHT[level];
  const hint = LATENCY[level];
  if (s.tier === "task-latency-nice") {
    return {
      requests: [
        { op: "set-limits", unit, limits: { cpu_weight: weight, latency_nice: hint } },
        { op: "set-task-priority", unit, latency_nice: hint },
      ],
      words: `per-task latency nice ${hint}, cgroup cpu.latency.nice ${hint}, cpu.weight ${weight}`,
    };
  }
  if (s.tier === "cgroup-latency-nice") {
    return {
      requests: [{ op: "set-limits", unit, limits: { cpu_weight: weight, latency_nice: hint } }],
      words: `cpu.weight ${weight}, cgroup cpu.latency.nice ${hint}; this kernel has no per-task latency hint`,
    };
  }
  return {
    requests: [
      { op: "set-limits", unit, limits: s.uclamp ? { cpu_weight: weight, uclamp_min: UCLAMP[level] } : { cpu_weight: weight } },
      { op: "set-task-priority", unit, nice: hint },
    ],
    words: `cpu.weight ${weight}, nice ${hint}${s.uclamp ? `, cpu.uclamp.min ${UCLAMP[level]}%` : "; no cpu.uclamp.min in this kernel"}; this kernel has no latency hint`,
  };
}

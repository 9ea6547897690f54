// Plan: for each class of trouble, a ladder of remedies from mild to drastic.
// A new incident starts at the remedy that has worked best for its signature
// so far (measured success, with a prior so that one lucky try does not
// dominate), and climbs one rung each time a remedy fails; the last rung is
// always "mark failed and tell the person". Rungs that cannot apply (raising a
// limit the unit does not have) are skipped with a note. Freezing,
// quarantining and marking failed contain trouble without fixing it: they are
// scored as containments, never as fixes.

import type { UnitStatus } from "../../init/control/protocol.ts";
import type { RemedyStat } from "../knowledge/store.ts";
import type { Args, ToolName } from "../tools/catalog.ts";
import type { Finding, FindingClass } from "../analyze/detect.ts";

export type Remedy =
  | "restart" | "restart-with-limits" | "deprioritize" | "limit-cpu" | "freeze" | "mark-failed"
  | "contain-limit" | "contain-freeze" | "observe" | "renew-network" | "bounce-link" | "notify"
  | "cap-cpu" | "cap-cpu-hard";

export const LADDERS: Record<FindingClass, readonly Remedy[]> = {
  crash: ["restart", "restart-with-limits", "mark-failed"],
  oom: ["restart-with-limits", "restart", "mark-failed"],
  hung: ["restart", "restart-with-limits", "mark-failed"],
  unhealthy: ["restart", "restart-with-limits", "mark-failed"],
  leak: ["restart", "restart-with-limits", "mark-failed"],
  "cpu-hog": ["deprioritize", "limit-cpu", "freeze", "mark-failed"],
  // A restart kills every process of the unit (cgroup.kill) and starts it clean: the bomb is gone and the service runs.
  // A bomb that comes back with it is frozen for a person.
  "fork-bomb": ["restart", "freeze", "mark-failed"],
  "outside-hog": ["contain-limit", "contain-freeze"],
  "outside-fork-bomb": ["contain-freeze"],
  "new-port": ["contain-freeze"],
  anomaly: ["observe"],
  // The network unit itself falls back to the last configuration that reached the gateway (docs/network.md).
  "network-down": ["renew-network", "bounce-link", "restart", "notify"],
  // The limits go back when the SoC has been cool for a while (thermal.cool_for), whatever rung was reached.
  "soc-hot": ["cap-cpu", "cap-cpu-hard", "notify"],
};

export interface PlannedCall {
  tool: ToolName;
  args: Args;
}

export interface Step {
  remedy: Remedy;
  calls: PlannedCall[];
  /** Why this remedy, in words (for the audit log). */
  why: string;
  /** Not before this time (ms): the agent waits, the incident open, and then carries the step out. */
  notBefore?: number;
}

/**
 * How long after the supervisor gave a unit up at its start limit the agent
 * tries it once more (agent.toml start_limit_pause). The start limit ends the
 * tight loop; the pause gives a passing cause (a file not there yet, a device
 * still starting, a server down for a moment) time to clear, so a device
 * heals without a person when it can, and marks the unit failed when the one
 * paused restart fails too.
 */
export const START_LIMIT_PAUSE_MS = 30_000;

/** What a remedy that touches many units needs to know: the units, which are protected, and the thermal policy. */
export interface PlanContext {
  units?: UnitStatus[];
  protectedUnits?: readonly string[];
  cpuCapPercent?: number;
  coolForMs?: number;
  /** The pause before restarting a unit the supervisor gave up at its start limit (START_LIMIT_PAUSE_MS when not given). */
  startLimitPauseMs?: number;
}

/** A unit's cpu_max ("50%") as a percentage of one core; undefined when it has none. */
export function cpuPercentOf(cpuMax: string | undefined): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(cpuMax ?? "");
  return m ? Number(m[1]) : undefined;
}

/** The CPU limit of a rung of the soc-hot ladder, percent of one core. */
export function capPercentOf(remedy: "cap-cpu" | "cap-cpu-hard", ctx: PlanContext): number {
  const p = ctx.cpuCapPercent ?? 50;
  return remedy === "cap-cpu" ? p : Math.max(1, Math.round(p / 2));
}

/** Remedies that hide the trouble (the unit or process stops running, or is cut off) rather than fix it. */
export const CONTAINMENT: ReadonlySet<Remedy> = new Set<Remedy>(["freeze", "contain-limit", "contain-freeze", "mark-failed"]);

export function isContainment(r: Remedy): boolean {
  return CONTAINMENT.has(r);
}

/**
 * Laplace-smoothed rate of fixes: (successes + 1) / (attempts + 2). An
 * untried remedy scores 0.5; a containment counts as an attempt that fixed
 * nothing, so a remedy that only hides the trouble sinks below one that fixes it.
 */
export function score(stat: RankStat | undefined): number {
  return stat ? (stat.successes + 1) / (stat.attempts + 2) : 0.5;
}

/**
 * The order to try remedies in for a signature: by measured success, best
 * first, the ladder's own order breaking ties; the final rung stays last.
 */
export function rankRemedies(cls: FindingClass, stats: RankStat[]): { remedy: Remedy; score: number }[] {
  const ladder = LADDERS[cls];
  const last = ladder[ladder.length - 1]!;
  const body = ladder.length > 1 && (last === "mark-failed" || last === "observe" || last === "notify") ? ladder.slice(0, -1) : ladder.slice();
  const scored = body.map((remedy, i) => ({ remedy, score: score(stats.find((s) => s.remedy === remedy)), i }));
  // An untried remedy scores 0.5; a tried one that failed ranks below it, one that worked above it.
  scored.sort((a, b) => b.score - a.score || a.i - b.i);
  const out = scored.map(({ remedy, score }) => ({ remedy, score }));
  if (body.length < ladder.length) out.push({ remedy: last, score: score(stats.find((s) => s.remedy === last)) });
  return out;
}

/** What ranking needs of a remedy's record: containments are attempts that fixed nothing. */
export type RankStat = Pick<RemedyStat, "remedy" | "attempts" | "successes">;

const MB = 2 ** 20;

/** The tool calls of one remedy for one finding, or a reason it cannot apply. */
export function stepFor(remedy: Remedy, f: Finding, status: UnitStatus | undefined, ctx: PlanContext = {}): Step | { skip: string } {
  const unit = f.unit ?? "";
  switch (remedy) {
    case "restart":
      // The supervisor restarted it until its start limit: at once, one more restart would end the same way; after a pause, the cause may be gone.
      if (status?.state === "failed" && /^start limit reached/.test(status.reason)) {
        const pause = ctx.startLimitPauseMs ?? START_LIMIT_PAUSE_MS;
        return {
          remedy,
          calls: [{ tool: "unit.restart", args: { unit } }],
          why: `the supervisor restarted ${unit} until its start limit (${status.reason.split(";")[0]!.replace(/^start limit reached: /, "")}), so one restart ${Math.round(pause / 1000)} s after it gave up gives a passing cause time to clear`,
          notBefore: status.since + pause,
        };
      }
      // A crash loop the supervisor is still restarting (between two starts the unit is in backoff, starting, or running for
      // a moment): a restart now would only cut its retries short. The agent lets them run for the pause after the trouble
      // was found, then restarts it; ended at the start limit meanwhile, the pause above applies.
      if ((f.class === "crash" || f.class === "oom") && status && ["backoff", "starting", "running", "degraded"].includes(status.state)) {
        const pause = ctx.startLimitPauseMs ?? START_LIMIT_PAUSE_MS;
        return {
          remedy,
          calls: [{ tool: "unit.restart", args: { unit } }],
          why: `the supervisor is restarting ${unit} itself, so the agent lets its retries run for ${Math.round(pause / 1000)} s before it restarts it`,
          notBefore: f.time + pause,
        };
      }
      return { remedy, calls: [{ tool: "unit.restart", args: { unit } }], why: "a clean restart clears transient faults and leaked memory" };
    case "restart-with-limits": {
      const mem = status?.limits.memory_max;
      if (!mem) return { skip: `${unit} has no memory limit to raise` };
      const raised = Math.ceil(((mem * (f.class === "oom" || f.class === "leak" ? 1.5 : 2)) / MB));
      return {
        remedy,
        calls: [{ tool: "unit.limit", args: { unit, memory_mb: raised } }, { tool: "unit.restart", args: { unit } }],
        why: `raising memory.max from ${Math.round(mem / MB)} MiB to ${raised} MiB gives it room if its limit is too tight`,
      };
    }
    case "deprioritize":
      return { remedy, calls: [{ tool: "unit.prioritize", args: { unit, level: "low" } }], why: "a lower CPU weight lets other units run first without stopping this one" };
    case "limit-cpu":
      return { remedy, calls: [{ tool: "unit.limit", args: { unit, cpu_percent: 30 } }], why: "a hard CPU limit (30% of one core) caps what it can take" };
    case "freeze":
      return { remedy, calls: [{ tool: "unit.freeze", args: { unit } }], why: "freezing stops it from doing more harm while a person looks" };
    case "mark-failed":
      if (status?.state === "failed") return { remedy, calls: [], why: `${unit} is already failed (${status.reason.split(";")[0]}) and stays so until a person starts it` };
      return { remedy, calls: [{ tool: "unit.mark-failed", args: { unit, reason: "ladder-exhausted" } }], why: "every remedy failed; a person must look" };
    case "contain-limit":
      return { remedy, calls: [{ tool: "process.contain", args: { pid: f.pid ?? 0, how: "limit" } }], why: "a process outside every unit is limited to a tenth of a CPU" };
    case "contain-freeze":
      return { remedy, calls: [{ tool: "process.contain", args: { pid: f.pid ?? 0, how: "freeze" } }], why: "a process outside every unit is frozen until a person decides" };
    case "observe":
      return { skip: "anomalies are recorded and explained, not healed" };
    case "renew-network":
      return { remedy, calls: [{ tool: "network.renew", args: {} }], why: "asking the DHCP server (and the Wi-Fi access point) again clears a lost lease or association" };
    case "bounce-link":
      return { remedy, calls: [{ tool: "network.bounce", args: {} }], why: "taking the link down and up again resets the driver's view of the cable or radio" };
    case "notify":
      if (f.class === "soc-hot") return { remedy, calls: [], why: "the SoC stays hot with the CPU limits lowered: a heatsink, a fan or better airflow may be needed, or a person must decide which service may slow down more" };
      return { remedy, calls: [], why: "no remedy on the device brought the network back: a cable, a switch or an access point may need a person" };
    case "cap-cpu":
    case "cap-cpu-hard": {
      const cap = capPercentOf(remedy, ctx);
      const prot = ctx.protectedUnits ?? [];
      const live = (ctx.units ?? []).filter((u) => !["inactive", "failed", "stopping"].includes(u.state));
      const left = live.filter((u) => prot.includes(u.name)).map((u) => u.name);
      const targets = live.filter((u) => !prot.includes(u.name) && (cpuPercentOf(u.limits.cpu_max) ?? Infinity) > cap);
      if (targets.length === 0) {
        return { skip: live.some((u) => !prot.includes(u.name)) ? `every running unit outside protected_units already has a CPU limit of ${cap}% of one core or less` : "no unit outside protected_units is running" };
      }
      const was = targets.map((u) => `${u.name} ${u.limits.cpu_max ?? "no limit"}`).join(", ");
      return {
        remedy,
        calls: targets.map((u) => ({ tool: "unit.limit", args: { unit: u.name, cpu_percent: cap } })),
        why: `a lower CPU limit (cpu.max ${cap}% of one core, was: ${was}) makes the units do less work at once, so the SoC draws less power and heats less${left.length ? `; protected units (${left.join(", ")}) are left alone` : ""}; the limits go back when the SoC has been cool for ${Math.round((ctx.coolForMs ?? 120_000) / 1000)} s`,
      };
    }
  }
}

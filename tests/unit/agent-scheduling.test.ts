// How the agent gives a unit priority on each kind of kernel: the tier it
// detects, the line it says at start, and the supervisor requests of
// "unit.prioritize". The patched tiers are checked against a recording
// supervisor; the stock tier for real, on this host's stock kernel, against
// a real supervisor (nice of the unit's process read back from /proc).
import { describe, expect, test } from "vitest";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Executor, type ReadSources } from "../../agents/execute/executor.ts";
import { detectScheduling, schedulingLine, schedulingWords, type Scheduling } from "../../agents/execute/scheduling.ts";
import type { ToolCall } from "../../agents/tools/catalog.ts";
import { ControlClient } from "../../init/control/client.ts";
import type { Request, Response } from "../../init/control/protocol.ts";
import { startSupervisor, statePids, tempDir, unit } from "../helpers/host-supervisor.ts";

function sources(s: Scheduling): ReadSources {
  const none = () => ({ reply: "", output: undefined });
  return { systemStatus: none, incidents: none, explain: none, setMode: () => "", scheduling: () => s };
}

/** A supervisor that records requests and answers as the real one does; `refuse` names an op to fail. */
function recorder(refuse?: string): { sup: { request(r: Request): Promise<Response> }; seen: Request[] } {
  const seen: Request[] = [];
  return {
    seen,
    sup: {
      async request(r) {
        seen.push(r);
        if (r.op === refuse) return { ok: false, error: { code: "bad-request", message: "refused for the test" } };
        return { ok: true, result: r.op === "set-task-priority" ? { unit: r.unit, latency_nice: r.latency_nice, nice: r.nice, tasks: 3, failed: [] } : {} };
      },
    },
  };
}

const prioritize = (level: string): ToolCall => ({ tool: "unit.prioritize", args: { unit: "cam", level }, origin: "agent" });

describe("scheduling tiers", () => {
  test("detected from the per-task probe and the units' cgroup files", () => {
    const d = tempDir();
    const root = join(d, "paio");
    mkdirSync(root);
    expect(detectScheduling(root, () => false)).toEqual({ tier: "stock", uclamp: false });
    writeFileSync(join(root, "cpu.uclamp.min"), "0.00\n");
    expect(detectScheduling(root, () => false)).toEqual({ tier: "stock", uclamp: true });
    writeFileSync(join(root, "cpu.latency.nice"), "0\n");
    expect(detectScheduling(root, () => false)).toEqual({ tier: "cgroup-latency-nice", uclamp: true });
    expect(detectScheduling(root, () => true)).toEqual({ tier: "task-latency-nice", uclamp: true });
    // This host's kernel, asked for real, has no per-task hint.
    expect(detectScheduling(join(d, "none")).tier).toBe("stock");
  });

  test("the startup line and the justification say which tier is used", () => {
    expect(schedulingLine({ tier: "task-latency-nice", uclamp: true })).toBe("scheduling through per-task latency nice and cpu.latency.nice (patched kernel)");
    expect(schedulingLine({ tier: "cgroup-latency-nice", uclamp: false })).toBe("scheduling through cpu.latency.nice (patched kernel)");
    expect(schedulingLine({ tier: "stock", uclamp: true })).toBe("scheduling through cpu.weight, nice and PSI (stock kernel: no latency hint)");
    expect(schedulingWords({ tier: "task-latency-nice", uclamp: false })).toContain("(tier task-latency-nice)");
    expect(schedulingWords({ tier: "cgroup-latency-nice", uclamp: false })).toContain("(tier cgroup-latency-nice: this kernel has no per-task latency hint)");
    expect(schedulingWords({ tier: "stock", uclamp: false })).toBe("cpu.weight and nice (tier stock: this kernel has no latency hint, and no cpu.uclamp.min)");
    expect(schedulingWords({ tier: "stock", uclamp: true })).toBe("cpu.weight and nice and cpu.uclamp.min (tier stock: this kernel has no latency hint)");
  });

  test("per-task tier: the group's hint and weight, then the hint on every task", async () => {
    const { sup, seen } = recorder();
    const r = await new Executor(sup, sources({ tier: "task-latency-nice", uclamp: true }), () => []).run(prioritize("high"));
    expect(seen).toEqual([
      { op: "set-limits", unit: "cam", limits: { cpu_weight: 400, latency_nice: -10 } },
      { op: "set-task-priority", unit: "cam", latency_nice: -10 },
    ]);
    expect(r).toMatchObject({ ok: true, reply: "gave cam high priority (per-task latency nice -10, cgroup cpu.latency.nice -10, cpu.weight 400; 3 tasks now)" });
  });

  test("cgroup tier: the group's hint and weight only", async () => {
    const { sup, seen } = recorder();
    const r = await new Executor(sup, sources({ tier: "cgroup-latency-nice", uclamp: false }), () => []).run(prioritize("low"));
    expect(seen).toEqual([{ op: "set-limits", unit: "cam", limits: { cpu_weight: 20, latency_nice: 10 } }]);
    expect(r.reply).toBe("gave cam low priority (cpu.weight 20, cgroup cpu.latency.nice 10; this kernel has no per-task latency hint)");
  });

  test("stock tier: weight and uclamp where the kernel has it, nice on the tasks; a refused step is reported", async () => {
    const { sup, seen } = recorder("set-task-priority");
    const r = await new Executor(sup, sources({ tier: "stock", uclamp: true }), () => []).run(prioritize("high"));
    expect(seen).toEqual([
      { op: "set-limits", unit: "cam", limits: { cpu_weight: 400, uclamp_min: 20 } },
      { op: "set-task-priority", unit: "cam", nice: -10 },
    ]);
    expect(r).toEqual({ ok: false, reply: "unit.prioritize unit=cam level=high failed: refused for the test (its group's settings were changed, its tasks' were not)" });
  });

  test("stock tier on this host, for real: the supervisor sets nice on the unit's process; no uclamp, and the reply says so", async () => {
    const d = tempDir();
    unit(d, "cam", 'exec = ["/bin/sh", "-c", "exec sleep 1000"]\nrestart = "always"\n');
    const sock = join(d, "run", "control.sock");
    const s = startSupervisor(d, { PAIO_CONTROL_SOCKET: sock });
    await s.waitFor(/cam: started/);
    const pid = statePids(d).cam!;
    const c = await ControlClient.connect(sock);
    try {
      const r = await new Executor(c, sources(detectScheduling(join(d, "no-cgroup"))), () => []).run(prioritize("high"));
      expect(r).toMatchObject({ ok: true, reply: "gave cam high priority (cpu.weight 400, nice -10; no cpu.uclamp.min in this kernel; this kernel has no latency hint; 1 task now)" });
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      expect(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16])).toBe(-10);
      await s.waitFor(/cam: nice -10 per task by request \(1 task now\)/);
    } finally {
      c.close();
    }
  });
});

// The control protocol's checks of the scheduling requests: set-task-priority
// (the per-task latency hint and nice) and set-limits' latency_nice and
// uclamp_min. A wrong request gets a sentence that says what is expected; a
// right one passes unchanged.
import { describe, expect, test } from "vitest";
import { validateRequest } from "../../init/control/protocol.ts";

function refusal(req: unknown): string {
  const v = validateRequest(req);
  if (v.ok) throw new Error(`accepted: ${JSON.stringify(req)}`);
  return v.message;
}

describe("set-task-priority", () => {
  test("latency_nice and nice, each -20..19 or null, are accepted as sent", () => {
    for (const req of [
      { op: "set-task-priority", unit: "cam", latency_nice: -10 },
      { op: "set-task-priority", unit: "cam", nice: 19 },
      { op: "set-task-priority", unit: "cam", latency_nice: -20, nice: 0 },
      { op: "set-task-priority", unit: "cam", latency_nice: null },
      { id: 7, op: "set-task-priority", unit: "cam", nice: null },
    ]) expect(validateRequest(req)).toEqual({ ok: true, req });
  });

  test("garbage is refused with what is expected", () => {
    const range = (k: string) => `'${k}' must be a whole number from -20 to 19, or null`;
    expect(refusal({ op: "set-task-priority", unit: "cam" })).toBe("'set-task-priority' needs 'latency_nice' or 'nice' (or both)");
    expect(refusal({ op: "set-task-priority", latency_nice: -1 })).toBe("'set-task-priority' needs 'unit', a unit name");
    expect(refusal({ op: "set-task-priority", unit: "", latency_nice: -1 })).toBe("'set-task-priority' needs 'unit', a unit name");
    for (const bad of [-21, 20, 1.5, "-3", true, [], {}, Number.MAX_SAFE_INTEGER]) {
      expect(refusal({ op: "set-task-priority", unit: "cam", latency_nice: bad })).toBe(range("latency_nice"));
      expect(refusal({ op: "set-task-priority", unit: "cam", nice: bad })).toBe(range("nice"));
    }
    // One good field does not carry a bad one.
    expect(refusal({ op: "set-task-priority", unit: "cam", latency_nice: -5, nice: 99 })).toBe(range("nice"));
  });
});

describe("set-limits: the scheduling limits", () => {
  test("latency_nice (cpu.latency.nice) and uclamp_min (cpu.uclamp.min) in range, or null", () => {
    for (const limits of [{ latency_nice: -20 }, { latency_nice: null }, { uclamp_min: 0 }, { uclamp_min: 12.5 }, { uclamp_min: 100 }, { uclamp_min: null, cpu_weight: 400 }]) {
      expect(validateRequest({ op: "set-limits", unit: "cam", limits }).ok).toBe(true);
    }
  });

  test("out of range or of the wrong type is refused", () => {
    for (const v of [-21, 20, 0.5, "x"]) expect(refusal({ op: "set-limits", unit: "cam", limits: { latency_nice: v } })).toBe("'latency_nice' must be a whole number from -20 to 19, or null");
    for (const v of [-1, 100.1, "20%", Number.NaN]) expect(refusal({ op: "set-limits", unit: "cam", limits: { uclamp_min: v } })).toBe("'uclamp_min' must be a percentage from 0 to 100, or null");
    expect(refusal({ op: "set-limits", unit: "cam", limits: { task_latency_nice: -3 } })).toBe("unknown limit 'task_latency_nice'; known: cpu_weight, cpu_max, memory_max, pids_max, latency_nice, uclamp_min");
  });
});

// The guard's verdicts, the policy file's errors, the ladder's ranking and the
// forecast rule: pure functions, checked directly.
import { describe, expect, test } from "vitest";
import { decide } from "../../agents/guard/guard.ts";
import { DEFAULT_POLICY, parsePolicy, PolicyError } from "../../agents/guard/policy.ts";
import { rankRemedies } from "../../agents/plan/ladder.ts";
import { ruleForecast, HORIZON } from "../../agents/analyze/forecast.ts";
import { validateCall, type ToolCall } from "../../agents/tools/catalog.ts";

const call = (tool: string, args: Record<string, unknown>, origin: "agent" | "person" | "llm"): ToolCall => {
  const v = validateCall(tool, args, origin);
  if (!v.ok) throw new Error(v.error);
  return v.call;
};

describe("guard", () => {
  const p = { ...DEFAULT_POLICY, protectedUnits: ["console"] };
  test("the agent acts alone only in auto mode, within its risk levels, never on protected units", () => {
    expect(decide(call("unit.restart", { unit: "demo" }, "agent"), p, "auto").verdict).toBe("allow");
    expect(decide(call("unit.restart", { unit: "demo" }, "agent"), p, "advise").verdict).toBe("propose");
    expect(decide(call("unit.restart", { unit: "demo" }, "agent"), p, "off").verdict).toBe("forbid");
    expect(decide(call("unit.restart", { unit: "console" }, "agent"), p, "auto").verdict).toBe("propose");
    expect(decide(call("process.kill", { pid: 99 }, "agent"), p, "auto").verdict).toBe("propose");
    expect(decide(call("unit.freeze", { unit: "demo" }, "agent"), { ...p, agentAlone: ["none", "low"] }, "auto")).toMatchObject({ verdict: "propose", rule: expect.stringMatching(/agent\.alone/) });
  });

  test("a person reads at once; dangerous tools and protected units need a yes", () => {
    expect(decide(call("unit.logs", { unit: "console" }, "person"), p, "auto").verdict).toBe("allow");
    expect(decide(call("unit.restart", { unit: "demo" }, "person"), p, "off").verdict).toBe("allow");
    expect(decide(call("power.poweroff", {}, "person"), p, "auto").verdict).toBe("confirm");
    expect(decide(call("power.poweroff", {}, "person"), p, "auto", true).verdict).toBe("allow");
    expect(decide(call("unit.stop", { unit: "console" }, "person"), p, "auto")).toMatchObject({ verdict: "confirm", rule: expect.stringMatching(/protected/) });
    expect(decide(call("unit.restart", { unit: "demo" }, "llm"), p, "auto").verdict).toBe("confirm");
    expect(decide(call("power.reboot", {}, "person"), { ...p, forbidden: ["power.reboot"] }, "auto", true).verdict).toBe("forbid");
  });

  test("agent-only tools cannot be called by a person", () => {
    expect(validateCall("unit.freeze", { unit: "demo" }, "person")).toMatchObject({ ok: false, error: expect.stringMatching(/agent only/) });
  });
});

describe("policy file", () => {
  test("a full policy parses", () => {
    const p = parsePolicy(`mode = "advise"\nprotected_units = ["camera"]\n[agent]\nalone = ["none", "low"]\n[person]\nconfirm = ["medium", "high"]\n[tools]\nforbidden = ["process.kill"]\n[ports]\nallowed = [8080]\n`, "/etc/paio/policy.toml");
    expect(p).toMatchObject({ mode: "advise", protectedUnits: ["camera"], agentAlone: ["none", "low"], personConfirm: ["medium", "high"], forbidden: ["process.kill"], allowedPorts: [8080] });
  });

  test.each([
    ['mode = "yolo"\n', /line 1 field 'mode': must be one of auto, advise, off/],
    ['[agent]\nalone = ["low", "extreme"]\n', /line 2 field 'agent.alone': 'extreme' is not a risk level/],
    ['[tools]\nforbidden = ["rm.rf"]\n', /field 'tools.forbidden': 'rm.rf' is not a tool/],
    ['protected = ["x"]\n', /field 'protected': unknown field/],
    ['mode = "auto"\n[agent\n', /line 2: not valid TOML/],
  ])("%j is refused with file, line and field", (text, re) => {
    expect(() => parsePolicy(text, "/etc/paio/policy.toml")).toThrow(PolicyError);
    expect(() => parsePolicy(text, "/etc/paio/policy.toml")).toThrow(re);
  });
});

describe("remedy ranking", () => {
  test("a new signature climbs the ladder in order; what worked before comes first; mark-failed stays last", () => {
    expect(rankRemedies("crash", []).map((r) => r.remedy)).toEqual(["restart", "restart-with-limits", "mark-failed"]);
    const learned = rankRemedies("crash", [
      { remedy: "restart", attempts: 1, successes: 0 },
      { remedy: "restart-with-limits", attempts: 1, successes: 1 },
    ]);
    expect(learned.map((r) => r.remedy)).toEqual(["restart-with-limits", "restart", "mark-failed"]);
    expect(learned[0]!.score).toBeCloseTo(2 / 3);
  });
});

describe("forecast rule", () => {
  test("a steady leak gets an ETA; a flat or noisy series does not", () => {
    const leak = Array.from({ length: 30 }, (_, i) => 0.3 + i * 0.01);
    const f = ruleForecast(leak);
    expect(f.slope).toBeCloseTo(0.01, 5);
    expect(f.etaS).toBeCloseTo((1 - 0.59) / 0.01, 3);
    expect(f.predicted).toBeCloseTo(0.59 + 0.01 * HORIZON, 5);
    expect(f.r2).toBeGreaterThan(0.99);
    const flat = ruleForecast(Array.from({ length: 30 }, (_, i) => 0.5 + (i % 2 ? 0.01 : -0.01)));
    expect(flat.etaS).toBeGreaterThan(3600);
    expect(flat.r2).toBeLessThan(0.1);
  });
});

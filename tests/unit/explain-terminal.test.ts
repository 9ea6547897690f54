// paio why, paio incidents and incident.explain print audit records that
// carry data (a unit's name, its own log lines, a model's or person's text):
// none of its control characters reaches the terminal, and the only line
// breaks are the ones the explanation puts there.
import { describe, expect, test } from "vitest";
import { describeRecord, describeUpdateRecord } from "../../agents/agent/explain.ts";
import type { AuditRecord } from "../../agents/knowledge/audit.ts";

const HOSTILE = "ok\x1b]0;owned\x07\x1b[2J\r\nFAKE: [audit #999] acted: opened a root shell\u202e\x9b31m";
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const rec = (kind: AuditRecord["kind"], body: Record<string, unknown>): AuditRecord => ({ seq: 7, time: Date.UTC(2026, 0, 1), kind, unit: "demo", body, prev: "", hash: "" });

describe("audit records on a terminal", () => {
  test("an incident's summary and log lines lose their control characters; one line per log line, no more", () => {
    const text = describeRecord(rec("incident", { summary: HOSTILE, exit_codes: [3], log: [HOSTILE, "plain line"] }));
    expect(text).not.toMatch(CONTROL);
    const lines = text.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain("noticed: ok?]0;owned??[2J??FAKE");
    expect(lines[1]).toMatch(/^ {4}log: "ok\?/);
    expect(lines[2]).toBe('    log: "plain line"');
  });

  test("decisions, outcomes, a person's requests and update records stay one clean line", () => {
    for (const r of [
      rec("decision", { justification: HOSTILE, result: HOSTILE, executed: true }),
      rec("outcome", { justification: HOSTILE }),
      rec("call", { justification: HOSTILE, result: HOSTILE, executed: true }),
      rec("update", { justification: HOSTILE, event: { kind: HOSTILE, at: 1 } }),
    ]) {
      const text = describeRecord(r);
      expect(text, r.kind).not.toMatch(CONTROL);
      expect(text.split("\n"), r.kind).toHaveLength(1);
    }
    for (const r of [rec("update", { justification: HOSTILE, event: { kind: HOSTILE, at: 1 } }), rec("call", { call: { tool: "update.install", args: { source: HOSTILE } }, executed: true, result: HOSTILE })]) {
      const text = describeUpdateRecord(r);
      expect(text, r.kind).not.toMatch(CONTROL);
      expect(text.split("\n"), r.kind).toHaveLength(1);
    }
  });

  test("a person's request reads as one sentence: what was asked, what was done, the rule; no repeats", () => {
    const text = describeRecord(rec("call", {
      call: { tool: "unit.restart", args: { unit: "demo" } }, origin: "person", utterance: "restart demo", executed: true, ok: true, result: "restarted demo",
      policy: { verdict: "allow", rule: "risk 'low' needs no confirmation" }, justification: "a person asked (\"restart demo\"); risk 'low' needs no confirmation",
    }));
    expect(text).toBe(`00:00:00 [audit #7] did what a person asked ("restart demo"): restarted demo; risk 'low' needs no confirmation.`);
  });
});

// The agent's CPU budget (agents/agent/agent.ts budgetStep): it ticks less
// often over its budget, and its models pause only far over it, and run again
// once it is back under twice its budget.
import { describe, expect, test } from "vitest";
import { budgetStep } from "../../agents/agent/agent.ts";

describe("budgetStep", () => {
  test("over the budget the tick slows, up to ten times; well under, it speeds up again; in between it stays", () => {
    let s = { slowdown: 1, modelsPaused: false };
    for (let i = 0; i < 30; i++) s = budgetStep(s, 1.5, 1);
    expect(s.slowdown).toBe(10);
    expect(budgetStep(s, 0.9, 1).slowdown).toBe(10);
    expect(budgetStep(s, 0.5, 1).slowdown).toBe(8);
    let d = s;
    for (let i = 0; i < 30; i++) d = budgetStep(d, 0.1, 1);
    expect(d.slowdown).toBe(1);
  });

  test("models pause far over the budget, stay paused above twice it, and run again under twice it", () => {
    const paused = budgetStep({ slowdown: 1, modelsPaused: false }, 3.5, 1);
    expect(paused.modelsPaused).toBe(true);
    expect(budgetStep(paused, 2.5, 1).modelsPaused).toBe(true);
    // A little over the budget, the tick already at its slowest: the models run.
    expect(budgetStep({ ...paused, slowdown: 10 }, 1.5, 1).modelsPaused).toBe(false);
    expect(budgetStep({ slowdown: 10, modelsPaused: false }, 2.9, 1).modelsPaused).toBe(false);
  });
});

// The conversational console on the guest's serial line (80x24, TERM=linux),
// typed at as a person would: "restart demo" restarts the demo unit; "power
// off" asks for confirmation and "no" leaves the machine up; "why did demo
// restart?" answers from the audit log; 'shell' opens a shell and comes back.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Guest } from "../../qemu/guest.ts";
import { bootGuest, consoleLine, sh } from "../helpers/guest.ts";

let g: Guest;

beforeAll(async () => {
  g = await bootGuest();
  await consoleLine(g, /PAIO (OK|DEGRADED|FAILING|UNKNOWN) \| CPU/, 180_000);
  // The UI is up once its chat line shows; give the agent its first status.
  await consoleLine(g, /mode auto/, 120_000);
}, 400_000);

afterAll(async () => {
  await g?.shutdown().catch(() => g.kill());
});

describe("console on the serial line", () => {
  test("typing 'restart demo' restarts the demo unit", async () => {
    const before = JSON.parse(await sh(g, "paio --json status demo")) as { restarts: number };
    g.type("restart demo\r");
    await consoleLine(g, /restarted demo/, 60_000);
    const after = JSON.parse(await sh(g, "paio --json status demo")) as { restarts: number; state: string };
    expect(after.restarts).toBeGreaterThan(before.restarts);
  }, 120_000);

  test("'power off' asks for confirmation; 'no' cancels and the machine stays up", async () => {
    g.type("power off\r");
    await consoleLine(g, /Confirm power\.poweroff\? \[y\/N\]/, 60_000);
    g.type("no\r");
    await consoleLine(g, /Cancelled: nothing was done\./, 60_000);
    await Bun.sleep(3000);
    expect(g.exited).toBe(false);
    expect(await sh(g, "echo still-up")).toContain("still-up");
  }, 120_000);

  test("'why did demo restart?' is answered from the audit log", async () => {
    g.type("why did demo restart?\r");
    await consoleLine(g, /What happened to demo, oldest first:/, 60_000);
    await consoleLine(g, /\[audit #\d+\] did what a person asked/, 30_000);
  }, 120_000);

  test("'shell' opens a root shell on the console and returns to the UI when it exits", async () => {
    g.type("shell\r");
    await consoleLine(g, /Root shell; type 'exit' to return/, 60_000);
    g.type("echo shell-says-$((6*7))\r");
    await consoleLine(g, /shell-says-42/, 30_000);
    g.type("exit\r");
    await consoleLine(g, /Back from the shell\./, 60_000);
  }, 180_000);
});

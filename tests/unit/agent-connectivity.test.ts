// Connectivity from the network unit's events: an outage becomes a finding
// only after a grace, a flap does not, a recovery ends it and says whether
// the carrier itself was lost; the ladder ends with telling a person.
import { describe, expect, test } from "vitest";
import { Connectivity } from "../../agents/analyze/connectivity.ts";
import { rankRemedies, stepFor } from "../../agents/plan/ladder.ts";
import { validateCall } from "../../agents/tools/catalog.ts";

const ev = (kind: string, time: number, subject = "eth0") => ({ event: "network" as const, kind, message: `${subject}: ${kind}`, subject, time });

describe("connectivity", () => {
  test("a link down for longer than the grace is one finding; its recovery is reported with the carrier lost", () => {
    const c = new Connectivity(10_000);
    c.onEvent(ev("link-down", 1000));
    expect(c.findings(5000)).toEqual([]);
    expect(c.isUp("eth0")).toBe(false);
    const f = c.findings(12_000);
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ class: "network-down", unit: "network", detail: "iface=eth0", summary: "eth0: link down for 11 s" });
    expect(c.findings(20_000)).toEqual([]); // once
    c.onEvent(ev("link-up", 30_000));
    expect(c.isUp("eth0")).toBe(true);
    expect(c.takeRecoveries()).toEqual([{ subject: "eth0", since: 1000, until: 30_000, what: "eth0: link-up", carrierLost: true }]);
    expect(c.takeRecoveries()).toEqual([]);
  });

  test("a flap shorter than the grace is no incident and no recovery", () => {
    const c = new Connectivity(10_000);
    c.onEvent(ev("link-down", 1000));
    c.onEvent(ev("link-up", 3000));
    expect(c.findings(20_000)).toEqual([]);
    expect(c.takeRecoveries()).toEqual([]);
  });

  test("a lost address needs an address back; a silent gateway needs it to answer", () => {
    const c = new Connectivity(1000);
    c.onEvent(ev("address-lost", 0));
    c.onEvent(ev("gateway-unreachable", 0));
    expect(c.findings(2000)[0]!.summary).toBe("eth0: no address, gateway unreachable for 2 s");
    c.onEvent(ev("address", 3000));
    expect(c.isUp("eth0")).toBe(false);
    c.onEvent(ev("gateway-reachable", 4000));
    expect(c.takeRecoveries()).toMatchObject([{ subject: "eth0", carrierLost: false }]);
  });

  test("events of other systems and unknown kinds change nothing", () => {
    const c = new Connectivity(0);
    c.onEvent({ ...ev("link-down", 0), event: "other" as "network" });
    c.onEvent(ev("port-open", 0));
    expect(c.findings(10)).toEqual([]);
  });
});

describe("the network ladder", () => {
  test("renew, bounce, restart the network unit, and last tell the person", () => {
    expect(rankRemedies("network-down", []).map((r) => r.remedy)).toEqual(["renew-network", "bounce-link", "restart", "notify"]);
    // A renewal that never worked ranks below an untried bounce; telling the person stays last.
    expect(rankRemedies("network-down", [{ remedy: "renew-network", attempts: 4, successes: 0 }]).map((r) => r.remedy)).toEqual(["bounce-link", "restart", "renew-network", "notify"]);
    const f = new Connectivity(0);
    f.onEvent(ev("link-down", 0));
    const finding = f.findings(1)[0]!;
    for (const remedy of ["renew-network", "bounce-link", "restart"] as const) {
      const step = stepFor(remedy, finding, undefined);
      if ("skip" in step) throw new Error(step.skip);
      for (const c of step.calls) expect(validateCall(c.tool, c.args, "agent").ok).toBe(true);
    }
    const notify = stepFor("notify", finding, undefined);
    expect("calls" in notify && notify.calls).toEqual([]);
    // The remedies are the agent's own: a person (or the language model) cannot call them.
    expect(validateCall("network.renew", {}, "person").ok).toBe(false);
  });
});

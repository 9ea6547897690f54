// Every unit that fails, however fast, is an incident: a real supervisor on
// the host with real processes, and the real agent loop over its control
// socket and a real knowledge base. A unit that reaches its start limit
// before the agent looks, and one that fails after two crashes while the
// agent listens, both become incidents with their exit codes and last log
// lines; the agent restarts such a unit once after a pause (the cause may
// have passed), and when that fails too it says why it does nothing more; a
// restarted agent does not count them again.
import { describe, expect, test } from "vitest";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startSupervisor, tempDir, unit, type Sup } from "../helpers/host-supervisor.ts";
import { Agent } from "../../agents/agent/agent.ts";
import { explainUnit, incidentsText } from "../../agents/agent/explain.ts";
import { DEFAULT_CONFIG } from "../../agents/agent/config.ts";
import { SupervisorLink } from "../../agents/agent/supervisor-link.ts";
import { DEFAULT_POLICY } from "../../agents/guard/policy.ts";
import { Knowledge } from "../../agents/knowledge/store.ts";
import type { Collector } from "../../agents/monitor/monitor.ts";
import { ControlClient } from "../../init/control/client.ts";
import type { UnitEvent, UnitStatus } from "../../init/control/protocol.ts";
import { stepFor } from "../../agents/plan/ladder.ts";
import type { Finding } from "../../agents/analyze/detect.ts";

/** Writes "cannot open /dev/video0" and exits with status 3 a fifth of a second after it starts; restarted quickly. */
const FAST = `exec = ["/bin/sh", "-c", "echo 'fast: cannot open /dev/video0'; sleep 0.2; exit 3"]
restart = "on-failure"
restart_delay = "100ms"
restart_delay_max = "200ms"
`;

function setUp(): { d: string; s: Sup; sock: string } {
  const d = tempDir();
  const sock = join(d, "run", "control.sock");
  return { d, s: startSupervisor(d, { PAIO_CONTROL_SOCKET: sock }), sock };
}

function agentOn(d: string, link: SupervisorLink, k: Knowledge, startLimitPauseMs = 60_000): Agent {
  const steady: Collector[] = [{ name: "steady", minPeriodMs: 0, costMs: 0, lastRun: 0, last: {}, run: async () => ({ "sys.cpu_pct": 5 }) }];
  mkdirSync(join(d, "sys"), { recursive: true });
  return new Agent({
    supervisor: link, knowledge: k, policy: DEFAULT_POLICY,
    config: { ...DEFAULT_CONFIG, retrainEveryMs: 0, cooldownMs: 0, startLimitPauseMs },
    detector: { outsideScanMs: Infinity },
    cgroupRoot: join(d, "no-cgroup"),
    monitor: { collectors: steady, sysfsRoot: join(d, "sys"), thermalPeriodMs: 0 },
    updateJournal: join(d, "journal.jsonl"),
  });
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

describe("a unit that fails fast", () => {
  test("it reached its start limit before the agent looked: an incident with its exit codes and last log lines; the agent says why it did nothing; a restarted agent does not count it again", async () => {
    const { d, s, sock } = setUp();
    unit(d, "fast", FAST);
    await s.waitFor(/fast: failed: start limit reached/, 15_000);
    // The supervisor keeps the exits for whoever was not listening.
    const link = new SupervisorLink(sock, () => {}, () => {});
    const st = (await link.status("fast")) as UnitStatus;
    expect(st.exits?.map((x) => x.reason)).toEqual(Array(5).fill("exited with status 3"));

    const path = join(d, "state", "agent", "knowledge.db");
    let k = new Knowledge(path);
    let agent = agentOn(d, link, k, 2000);
    await agent.tick();
    await agent.tick();
    const incidents = k.incidents();
    expect(incidents).toHaveLength(1);
    const [i] = incidents;
    expect(i).toMatchObject({ unit: "fast", class: "crash", signature: "crash:fast:exit=3", state: "open" });
    expect(i!.summary).toMatch(/^fast failed \(start limit reached: 5 starts within [^)]+\) after 5 crashes in \d+ s \(exit 3 ×5\)$/);
    expect(i!.details?.exit_codes).toEqual([3, 3, 3, 3, 3]);
    expect(i!.details?.log?.at(-1)).toBe("fast: cannot open /dev/video0");
    // At once, a restart would only fail the same way: the agent waits the pause, the incident open, and says so.
    expect(i!.decision).toMatch(/^waiting \d+ s to restart fast: the supervisor restarted fast until its start limit \(5 starts within [^)]+\), so one restart 2 s after it gave up gives a passing cause time to clear$/);
    expect((await link.status("fast"))?.state).toBe("failed");
    // After the pause, one restart; it fails the same way (the camera is still missing), and the ladder's last rung marks it failed.
    const settled = await until("the incident to end", async () => {
      await agent.tick();
      const x = k.incidents()[0]!;
      return x.state === "failed" ? x : undefined;
    }, 25_000);
    expect(settled.decision).toBe("every remedy failed; fast is stopped and marked failed until a person starts it");
    const actions = k.audit.recent(10, "fast", ["decision"]).filter((r) => (r.body as { executed?: boolean }).executed).reverse();
    expect(actions.map((r) => (r.body as { action: { tool: string }[] }).action.map((c) => c.tool))).toEqual([["unit.restart"], ["unit.mark-failed"]]);
    expect(String((actions.at(-1)!.body as { justification: string }).justification)).toMatch(/Skipped: raise fast's memory limit and restart it does not apply \(fast has no memory limit to raise\)\./);
    expect((await link.status("fast"))?.state).toBe("failed");

    const why = explainUnit(k, "fast").reply;
    expect(why).toMatch(/noticed: fast failed \(start limit reached.*\) after 5 crashes in \d+ s \(exit 3 ×5\)\. Exit codes: exit 3 ×5\.\n {4}log: "fast: cannot open \/dev\/video0" \(5 times\)$/m);
    expect(why).toMatch(/restart fast did not work: the same trouble came back/);
    const list = incidentsText(k).reply;
    expect(list).toContain('exit codes: exit 3 ×5; last log line: "fast: cannot open /dev/video0"');
    expect(list).toMatch(/agent: every remedy failed; fast is stopped and marked failed/);
    k.close();

    // The agent restarts: the same failure is not a new incident.
    k = new Knowledge(path);
    agent = agentOn(d, link, k);
    await agent.tick();
    await agent.tick();
    expect(k.incidents()).toHaveLength(1);
    k.close();
  }, 30_000);

  test("it reached its start limit after two crashes while the agent listened: an incident at once, though no crash loop was counted", async () => {
    const { d, s, sock } = setUp();
    await s.waitFor(/paio: supervisor ready/);
    const path = join(d, "state", "agent", "knowledge.db");
    const k = new Knowledge(path);
    const link = new SupervisorLink(sock, () => {}, () => {});
    const agent = agentOn(d, link, k);
    const events = await ControlClient.connect(sock);
    const handled: Promise<void>[] = [];
    events.onEvent((e) => {
      if (e.event === "unit") handled.push(agent.onUnitEvent(e as unknown as UnitEvent));
    });
    expect((await events.request({ op: "subscribe" })).ok).toBe(true);
    try {
      unit(d, "twice", `${FAST.replace(/fast/g, "twice")}start_limit = { burst = 2, interval = "60s" }\n`);
      expect((await link.request({ op: "reload" })).ok).toBe(true);
      const i = await until("an incident about twice", () => k.incidents().find((x) => x.unit === "twice" && x.decision));
      expect(i.summary).toMatch(/^twice failed \(start limit reached: 2 starts within [^)]+\) after 2 crashes in \d+ s \(exit 3 ×2\)$/);
      expect(i.details?.exit_codes).toEqual([3, 3]);
      expect(i.details?.log).toContain("twice: cannot open /dev/video0");
      expect(i.decision).toMatch(/^waiting \d+ s to restart twice: the supervisor restarted twice until its start limit/);
      await Promise.all(handled);
      // The next look at the supervisor's record finds nothing new.
      await agent.tick();
      expect(k.incidents().filter((x) => x.unit === "twice")).toHaveLength(1);
    } finally {
      events.close();
      k.close();
    }
  }, 30_000);

  test("its cause passed while the supervisor had given up: the agent's one restart after the pause brings it back", async () => {
    const { d, s, sock } = setUp();
    const flag = join(d, "camera-missing");
    writeFileSync(flag, "");
    unit(d, "passing", `exec = ["/bin/sh", "-c", "if [ -e ${flag} ]; then echo 'passing: no camera yet'; exit 3; fi; exec sleep 1000"]\nrestart = "on-failure"\nrestart_delay = "100ms"\nrestart_delay_max = "200ms"\n`);
    await s.waitFor(/passing: failed: start limit reached/, 15_000);
    const k = new Knowledge(join(d, "state", "agent", "knowledge.db"));
    const link = new SupervisorLink(sock, () => {}, () => {});
    const agent = agentOn(d, link, k, 3000);
    try {
      await agent.tick();
      expect(k.incidents()[0]?.decision).toMatch(/^waiting \d s to restart passing/);
      // The camera appears while the agent waits.
      rmSync(flag);
      const healing = await until("the paused restart", async () => {
        await agent.tick();
        const x = k.incidents()[0]!;
        return x.state === "healing" ? x : undefined;
      }, 20_000);
      expect(healing.decision).toBe("did: restarted passing (remedy 1 of 3)");
      await until("passing to run", async () => ((await link.status("passing"))?.state === "running" ? true : undefined));
    } finally {
      k.close();
    }
  }, 30_000);

  test("a crash loop found between two of the supervisor's starts (backoff, or running for a moment) gets the pause before the agent's restart", () => {
    const f = { class: "crash", unit: "fast", detail: "", summary: "fast crashed 3 times in 60 s", inputs: {}, evidence: { by: "rule", name: "crash-loop", rule: "" }, time: 1_000_000 } as Finding;
    for (const state of ["backoff", "starting", "running"] as const) {
      const step = stepFor("restart", f, { state, reason: "", since: 999_000, limits: {} } as unknown as UnitStatus, { startLimitPauseMs: 30_000 });
      expect(step, state).toMatchObject({ remedy: "restart", notBefore: 1_030_000 });
    }
    // Stopped by a person: nothing is retrying it, so the restart is at once.
    expect(stepFor("restart", f, { state: "inactive", reason: "", since: 999_000, limits: {} } as unknown as UnitStatus, { startLimitPauseMs: 30_000 })).not.toHaveProperty("notBefore");
  });
});

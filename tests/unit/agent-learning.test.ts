// What the agent learns from a remedy, on a real knowledge base (SQLite
// file) and the real agent loop, over a scripted supervisor whose units
// answer remedies the way a device would: a remedy is a fix only when the
// unit is healthy for the whole recovery window and the trouble does not
// come back; a freeze is a containment, not a fix; over a recurring failure
// the ladder converges to the remedy that fixes it while the one that only
// hides the failure loses; the hourly action limit and what was learned
// survive a restart of the agent.
import { afterEach, describe, expect, test } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "../../agents/agent/agent.ts";
import { DEFAULT_CONFIG, type AgentConfig } from "../../agents/agent/config.ts";
import { DEFAULT_POLICY } from "../../agents/guard/policy.ts";
import { Knowledge } from "../../agents/knowledge/store.ts";
import type { Collector } from "../../agents/monitor/monitor.ts";
import { rankRemedies } from "../../agents/plan/ladder.ts";
import type { Request, Response, UnitStatus, UnitSummary } from "../../init/control/protocol.ts";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "paio-learn-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const MB = 2 ** 20;
const WINDOW = 10_000;

/**
 * A scripted supervisor: units with state, health, limits and failed exits,
 * answering the control requests the agent's remedies make. `onStart` says
 * what a (re)start leads to, from the unit's limits: the world's rule.
 */
class World {
  units = new Map<string, UnitStatus>();
  requests: Request[] = [];
  clock = Date.now();
  constructor(private onStart: (u: UnitStatus) => void) {}

  add(name: string, init: Partial<UnitStatus> = {}): UnitStatus {
    const u: UnitStatus = {
      name, description: "", state: "running", reason: "started", since: this.clock, restarts: 0, ports: [], frozen: false, exec: ["/bin/app"], restart: "always",
      limits: {}, latency_sensitive: false, exits: [], ...init,
    };
    this.units.set(name, u);
    return u;
  }

  /** The unit exits with status 3 at `time`, and the supervisor restarts it: what the agent hears, and what the status keeps. */
  crash(agent: Agent, name: string, time: number): Promise<void> {
    const u = this.units.get(name)!;
    const reason = "exited with status 3";
    u.exits = [...(u.exits ?? []).slice(-9), { time, reason }];
    u.restarts++;
    u.state = "running";
    u.since = time + 1;
    return agent.onUnitEvent({ event: "unit", unit: name, from: "running", to: "backoff", reason: `${reason}; restarting in 200ms`, time });
  }

  async request(req: Request): Promise<Response> {
    this.requests.push(req);
    const ok = (result: unknown): Response => ({ ok: true, result });
    const u = "unit" in req ? this.units.get(req.unit) : undefined;
    switch (req.op) {
      case "list":
        return ok(this.summaries());
      case "status":
        return u ? ok(structuredClone(u)) : { ok: false, error: { code: "no-such-unit", message: `no unit named '${req.unit}'` } };
      case "logs":
        return ok({ unit: req.unit, lines: ["starting", "out of memory while loading the model"] });
      case "restart":
        u!.restarts++;
        u!.frozen = false;
        u!.state = "running";
        u!.reason = "restart requested";
        u!.since = this.clock;
        this.onStart(u!);
        return ok({});
      case "set-limits":
        if (typeof req.limits.memory_max === "string") u!.limits.memory_max = Number.parseInt(req.limits.memory_max, 10) * MB;
        return ok(u!.limits);
      case "freeze":
        u!.frozen = req.frozen;
        return ok({});
      case "mark-failed":
        u!.state = "failed";
        u!.reason = req.reason;
        return ok({});
      default:
        return ok({});
    }
  }

  summaries(): UnitSummary[] {
    return [...this.units.values()].map(({ name, description, state, reason, pid, since, restarts, ports }) => ({ name, description, state, reason, pid, since, restarts, ports }));
  }

  async list(): Promise<UnitSummary[]> {
    return this.summaries();
  }

  async status(name: string): Promise<UnitStatus | undefined> {
    const u = this.units.get(name);
    return u && structuredClone(u);
  }

  /** The remedies the agent carried out, in order. */
  remedies(k: Knowledge, from = 0): string[] {
    return k.db.query<{ remedy: string }, [number]>("SELECT remedy FROM actions WHERE id > ? ORDER BY id").all(from).map((r) => r.remedy);
  }
}

function agentOn(world: World, k: Knowledge, root: string, config: Partial<AgentConfig> = {}): Agent {
  const steady: Collector[] = [{ name: "steady", minPeriodMs: 0, costMs: 0, lastRun: 0, last: {}, run: async () => ({ "sys.cpu_pct": 20, "sys.mem_pct": 30 }) }];
  return new Agent({
    supervisor: world,
    knowledge: k,
    policy: DEFAULT_POLICY,
    config: { ...DEFAULT_CONFIG, retrainEveryMs: 0, cooldownMs: 0, outcomeWindowMs: WINDOW, startLimitPauseMs: 0, ...config },
    detector: { outsideScanMs: Infinity },
    cgroupRoot: join(root, "cgroup"),
    monitor: { collectors: steady, sysfsRoot: join(root, "sys"), thermalPeriodMs: 0 },
    updateJournal: join(root, "journal.jsonl"),
  });
}

/** Ticks the agent once a second from the world's clock for `seconds`, calling `each` before every tick. */
async function run(world: World, agent: Agent, seconds: number, each?: (t: number) => Promise<void> | void): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    world.clock += 1000;
    await each?.(world.clock);
    await agent.tick(world.clock);
  }
}

/** A crash loop: three exits within a few seconds. */
async function crashLoop(world: World, agent: Agent, unit: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    world.clock += 1000;
    await world.crash(agent, unit, world.clock);
  }
}

/** A fresh knowledge base and one unit `name` in a world where a restart brings the unit back running, with the agent over it. */
function restartingWorld(name: string, config: Partial<AgentConfig> = {}): { k: Knowledge; world: World; agent: Agent } {
  const root = tmp();
  const k = new Knowledge(join(root, "agent", "knowledge.db"));
  const world = new World((u) => {
    u.state = "running";
  });
  world.add(name);
  return { k, world, agent: agentOn(world, k, root, config) };
}

const outcomes = (k: Knowledge) => k.db.query<{ remedy: string; outcome: string | null }, []>("SELECT remedy, outcome FROM actions ORDER BY id").all();

/**
 * The camera world: with a memory limit under 48 MiB the camera crash-loops,
 * and a plain restart only hides that: it starts, stops crashing, but stays
 * busy and never answers its health check (degraded). With 48 MiB or more it
 * is healthy.
 */
function cameraWorld(): World {
  return new World((u) => {
    const roomy = (u.limits.memory_max ?? 0) >= 48 * MB;
    u.state = roomy ? "running" : "degraded";
    u.health = { type: "http", last: { result: roomy ? "pass" : "timeout-busy", latency_ms: roomy ? 4 : 2500, at: Date.now() } };
  });
}

describe("a remedy counts as a fix only when the unit is healthy for the whole recovery window", () => {
  test("a restart after which the unit runs but never passes its health check is not a fix; the next rung, which makes it healthy, is", async () => {
    const root = tmp();
    const k = new Knowledge(join(root, "agent", "knowledge.db"));
    const world = cameraWorld();
    world.add("camera", { limits: { memory_max: 32 * MB }, health: { type: "http", last: { result: "pass", latency_ms: 4, at: Date.now() } } });
    const agent = agentOn(world, k, root);
    await crashLoop(world, agent, "camera");
    expect(world.remedies(k)).toEqual(["restart"]);
    // Degraded (busy, its health check timing out) for the whole window: not yet judged a fix, nor at twice the window.
    await run(world, agent, WINDOW / 1000 + 2);
    expect(outcomes(k)).toEqual([{ remedy: "restart", outcome: null }]);
    await run(world, agent, WINDOW / 1000);
    expect(outcomes(k)).toEqual([{ remedy: "restart", outcome: "failure" }, { remedy: "restart-with-limits", outcome: null }]);
    expect(world.units.get("camera")!.limits.memory_max).toBe(64 * MB);
    await run(world, agent, WINDOW / 1000 + 1);
    expect(outcomes(k)).toEqual([{ remedy: "restart", outcome: "failure" }, { remedy: "restart-with-limits", outcome: "success" }]);
    expect(k.incidents()[0]).toMatchObject({ unit: "camera", state: "resolved", decision: expect.stringMatching(/camera was healthy \(running, its health check passing, not frozen\) for 10 s/) });
    const why = k.audit.recent(10, "camera", ["outcome"]).map((r) => String((r.body as { justification: string }).justification));
    expect(why).toContainEqual(expect.stringMatching(/^restart camera did not work: camera was not healthy for 10 s in a row within 20 s of the remedy: it is degraded/));
    k.close();
  });

  test("the same failure again within the recovery window fails the remedy, although the unit is healthy when the window ends", async () => {
    const { k, world, agent } = restartingWorld("worker");
    await crashLoop(world, agent, "worker");
    expect(world.remedies(k)).toEqual(["restart"]);
    // Healthy for half the window, then it crashes once (the supervisor restarts it at once), then healthy again.
    await run(world, agent, WINDOW / 2000);
    world.clock += 500;
    await world.crash(agent, "worker", world.clock);
    expect(outcomes(k)[0]).toEqual({ remedy: "restart", outcome: "failure" });
    expect(k.remedyStats("crash:worker:exit=3").find((s) => s.remedy === "restart")).toEqual({ remedy: "restart", attempts: 1, successes: 0, contained: 0 });
    const outcome = k.audit.recent(5, "worker", ["outcome"]).at(-1)!;
    expect((outcome.body as { justification: string }).justification).toMatch(/^restart worker did not work: the same trouble came back: worker crashed 4 times in 60 s \(exit 3\)$/);
    k.close();
  });
});

describe("a unit the remedies bring back", () => {
  test("when a restart brings a unit back but its trouble returns a while later, the unit is left running: the incident ends and says why; it is not marked failed", async () => {
    const { k, world, agent } = restartingWorld("web", { outcomeWindowMs: 30_000 });
    await crashLoop(world, agent, "web");
    expect(world.remedies(k)).toEqual(["restart"]);
    // Healthy for 15 s (brought back), then the same trouble again, within the recovery window.
    await run(world, agent, 15);
    world.clock += 500;
    await world.crash(agent, "web", world.clock);
    await run(world, agent, 2);
    expect(outcomes(k)[0]).toEqual({ remedy: "restart", outcome: "failure" });
    expect(world.remedies(k)).toEqual(["restart"]);
    expect(world.requests.filter((r) => r.op === "mark-failed")).toEqual([]);
    expect(world.units.get("web")!.state).toBe("running");
    const [incident] = k.incidents();
    expect(incident).toMatchObject({ unit: "web", state: "failed", decision: expect.stringMatching(/^did nothing: restart web brought web back, but the trouble keeps returning; marking it failed would take the service down/) });
    k.close();
  });

  test("a web service that hangs again seconds after the restart made its health check pass is left running too", async () => {
    const root = tmp();
    const k = new Knowledge(join(root, "agent", "knowledge.db"));
    const world = new World((u) => {
      u.state = "running";
      u.health = { type: "http", last: { result: "pass", latency_ms: 20, at: world.clock } };
    });
    world.add("web", { health: { type: "http", last: { result: "pass", latency_ms: 20, at: world.clock } } });
    const agent = agentOn(world, k, root, { outcomeWindowMs: 60_000 });
    // Stopped (SIGSTOP): the supervisor finds it unhealthy and restarts it; it passes its check again a few seconds later.
    const hang = async () => {
      world.clock += 1000;
      await agent.onUnitEvent({ event: "unit", unit: "web", from: "running", to: "unhealthy", reason: "health check failed 3 times in a row: stopped (SIGSTOP): the check timed out and no process can run", time: world.clock });
      world.units.get("web")!.restarts++;
    };
    await hang();
    await run(world, agent, 5);
    await hang();
    await run(world, agent, 3);
    expect(world.remedies(k)).toEqual(["restart"]);
    await hang();
    await run(world, agent, 2);
    expect(world.remedies(k)).toEqual(["restart"]);
    expect(world.requests.filter((r) => r.op === "mark-failed")).toEqual([]);
    expect(k.incidents()[0]).toMatchObject({ unit: "web", class: "hung", state: "failed", decision: expect.stringMatching(/^did nothing: restart web brought web back, but the trouble keeps returning/) });
    k.close();
  });

  test("brought back, but then given up by the supervisor at its start limit: the agent does not pretend the supervisor will restart it", async () => {
    const { k, world, agent } = restartingWorld("leaky", { outcomeWindowMs: 30_000 });
    await crashLoop(world, agent, "leaky");
    await run(world, agent, 15);
    // The trouble returns as the supervisor's last restart: it gives the unit up at its start limit.
    world.clock += 500;
    const reason = "start limit reached: 5 starts within 60 s; not restarting";
    const u = world.units.get("leaky")!;
    Object.assign(u, { state: "failed", reason, since: world.clock, exits: [...u.exits!, { time: world.clock, reason: "exited with status 3" }] });
    await agent.onUnitEvent({ event: "unit", unit: "leaky", from: "backoff", to: "failed", reason, time: world.clock });
    await run(world, agent, 2);
    expect(world.remedies(k)).toEqual(["restart"]);
    const [incident] = k.incidents();
    expect(incident).toMatchObject({ unit: "leaky", state: "failed", decision: expect.stringMatching(/^did nothing: leaky is already failed \(start limit reached: 5 starts within 60 s\) and stays so until a person starts it/) });
    expect(incident!.decision).not.toMatch(/supervisor's restarts/);
    k.close();
  });

  test("a unit that no remedy brings back is still marked failed", async () => {
    const { k, world, agent } = restartingWorld("web", { outcomeWindowMs: 30_000 });
    await crashLoop(world, agent, "web");
    // Healthy for 5 s only: the trouble returns before the restart can be said to have brought it back.
    await run(world, agent, 5);
    world.clock += 500;
    await world.crash(agent, "web", world.clock);
    await run(world, agent, 2);
    expect(world.remedies(k)).toEqual(["restart", "mark-failed"]);
    expect(world.units.get("web")!.state).toBe("failed");
    k.close();
  });
});

describe("containment is not a fix", () => {
  test("a freeze is scored as a containment at once, never as a fix; the incident stays open as contained, and the freeze ranks below an untried remedy", async () => {
    const root = tmp();
    const k = new Knowledge(join(root, "agent", "knowledge.db"));
    const world = new World(() => {});
    world.add("forky");
    mkdirSync(join(root, "cgroup", "forky"), { recursive: true });
    const agent = agentOn(world, k, root);
    // A fork bomb: 20 more processes every second, until it is frozen (it comes back after the restart, the ladder's first rung).
    let pids = 1;
    const grow = () => writeFileSync(join(root, "cgroup", "forky", "pids.current"), `${world.units.get("forky")!.frozen ? pids : (pids += 20)}\n`);
    await run(world, agent, 4, grow);
    await run(world, agent, 8, grow);
    expect(world.requests.filter((r) => r.op === "restart" || r.op === "freeze").map((r) => r.op)).toEqual(["restart", "freeze"]);
    expect(world.requests.filter((r) => r.op === "freeze")).toEqual([{ op: "freeze", unit: "forky", frozen: true }]);
    // Frozen, running, no health check: the old rule ("running at the end of the window") would have called this a success.
    await run(world, agent, 3 * WINDOW / 1000, grow);
    expect(outcomes(k)).toEqual([{ remedy: "restart", outcome: "failure" }, { remedy: "freeze", outcome: "contained" }]);
    const stats = k.remedyStats("fork-bomb:forky");
    expect(stats).toContainEqual({ remedy: "freeze", attempts: 1, successes: 0, contained: 1 });
    const [incident] = k.incidents();
    expect(incident).toMatchObject({ class: "fork-bomb", state: "contained", closed: null, decision: expect.stringMatching(/^contained, not fixed: froze forky; a person must look/) });
    // recent() is newest first: the freeze's containment, then the restart that did not work.
    expect(k.audit.recent(5, "forky", ["outcome"]).map((r) => (r.body as { success: boolean; contained?: boolean }))).toEqual([
      expect.objectContaining({ remedy: "freeze", success: false, contained: true }),
      expect.objectContaining({ remedy: "restart", success: false }),
    ]);
    // On the cpu-hog ladder a freeze that only ever contained comes after the remedies not yet tried.
    const order = rankRemedies("cpu-hog", [{ remedy: "freeze", attempts: 3, successes: 0 }]).map((r) => r.remedy);
    expect(order).toEqual(["deprioritize", "limit-cpu", "freeze", "mark-failed"]);
    k.close();
  });
});

describe("learning over a recurring failure", () => {
  test("the ladder converges to the remedy that fixes the failure, the one that only hides it loses, and what was learned survives a restart of the agent", async () => {
    const root = tmp();
    const path = join(root, "agent", "knowledge.db");
    const world = cameraWorld();
    world.add("camera", { limits: { memory_max: 32 * MB } });
    const firstTried: string[] = [];
    for (let round = 0; round < 4; round++) {
      // Each round is a new agent process over the same knowledge base.
      const k = new Knowledge(path);
      const agent = agentOn(world, k, root);
      const before = k.db.query<{ n: number }, []>("SELECT COALESCE(MAX(id), 0) AS n FROM actions").get()!.n;
      // The failure comes back: someone sets the limit back to 32 MiB, and the camera crash-loops.
      world.units.get("camera")!.limits.memory_max = 32 * MB;
      world.clock += 3600_000;
      await crashLoop(world, agent, "camera");
      await run(world, agent, 4 * WINDOW / 1000);
      const tried = world.remedies(k, before);
      firstTried.push(tried[0]!);
      expect(k.incidents()[0]).toMatchObject({ state: "resolved" });
      k.close();
    }
    // Round 1 climbs past the restart, which only hid the crash loop; from then on the fix comes first.
    expect(firstTried).toEqual(["restart", "restart-with-limits", "restart-with-limits", "restart-with-limits"]);
    const k = new Knowledge(path);
    const stats = Object.fromEntries(k.remedyStats("crash:camera:exit=3").map((s) => [s.remedy, s]));
    expect(stats.restart).toEqual({ remedy: "restart", attempts: 1, successes: 0, contained: 0 });
    expect(stats["restart-with-limits"]).toEqual({ remedy: "restart-with-limits", attempts: 4, successes: 4, contained: 0 });
    const ranked = rankRemedies("crash", k.remedyStats("crash:camera:exit=3"));
    expect(ranked.map((r) => r.remedy)).toEqual(["restart-with-limits", "restart", "mark-failed"]);
    expect(ranked[0]!.score).toBeGreaterThan(ranked[1]!.score);
    k.close();
  });
});

describe("rate limits across restarts", () => {
  test("the hourly action limit counts the actions of the agent before its restart; the agent says it did nothing, and why", async () => {
    const root = tmp();
    const path = join(root, "agent", "knowledge.db");
    // A unit no restart fixes: it crash-loops whatever the agent does.
    const world = new World((u) => {
      u.state = "running";
    });
    world.add("loopy");
    let k = new Knowledge(path);
    let agent = agentOn(world, k, root, { maxActionsPerHour: 2 });
    await crashLoop(world, agent, "loopy");
    await run(world, agent, 2);
    world.clock += 500;
    await world.crash(agent, "loopy", world.clock);
    // restart, then (no memory limit to raise) stop and mark failed: two actions.
    expect(world.remedies(k)).toEqual(["restart", "mark-failed"]);
    k.close();

    // The agent restarts; a person starts loopy again, and it crash-loops again within the hour.
    k = new Knowledge(path);
    agent = agentOn(world, k, root, { maxActionsPerHour: 2 });
    const u = world.units.get("loopy")!;
    u.state = "running";
    u.reason = "start requested";
    world.clock += 60_000;
    const sent = world.requests.length;
    await crashLoop(world, agent, "loopy");
    await run(world, agent, 2);
    expect(world.requests.slice(sent).filter((r) => r.op !== "list" && r.op !== "status" && r.op !== "logs")).toEqual([]);
    expect(world.remedies(k)).toEqual(["restart", "mark-failed"]);
    const [incident] = k.incidents();
    expect(incident).toMatchObject({ unit: "loopy", state: "failed", decision: "did nothing: I took 2 actions on loopy within the last hour, the most max_actions_per_hour allows; a person must look" });
    const decision = k.audit.recent(1, "loopy", ["decision"])[0]!;
    expect(decision.body).toMatchObject({ executed: false, justification: expect.stringMatching(/I did nothing more: I took 2 actions on loopy within the last hour/) });
    k.close();
  });
});

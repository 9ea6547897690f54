// The healing logic, model-checked with SPIN: the supervisor's restart,
// backoff and start-limit machine (init/supervisor/model/) and the agent's
// remedy ladder against it (agents/plan/model/). The models are made from the
// same tables the code changes states by (unit-states.ts, incident-states.ts,
// ladder.ts), so these tests fail when the code and the models drift apart;
// broken variants that SPIN must reject show the checks are not vacuous.
// docs/units.md and docs/agent.md say what is checked and how to run it.

import { afterAll, describe, expect, test } from "vitest";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ident } from "../../lib/model/promela.ts";
import { UNIT_STATES_PML, unitStatesPromela } from "../../init/supervisor/model/generate.ts";
import { INCIDENT_STATES_PML, incidentStatesPromela, MODEL_CLASSES, remedyConst } from "../../agents/plan/model/generate.ts";
import { UNIT_MOVES } from "../../init/supervisor/unit-states.ts";
import { INCIDENT_MOVES, type IncidentMoveName } from "../../agents/plan/incident-states.ts";
import { LADDERS } from "../../agents/plan/ladder.ts";
import { Cgroups } from "../../init/supervisor/cgroup.ts";
import { parseUnitFile } from "../../init/supervisor/unit-file.ts";
import { UnitRunner, type StateChange } from "../../init/supervisor/unit-runner.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SUPERVISOR_MODEL = "init/supervisor/model";
const AGENT_MODEL = "agents/plan/model";
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

/** The hand-written models: what they do with the tables' moves. */
const handWritten = () => [read(`${SUPERVISOR_MODEL}/runner.pml`), read(`${SUPERVISOR_MODEL}/supervisor.pml`), read(`${AGENT_MODEL}/healing.pml`)].join("\n");

/** Incident moves of troubles that are not a unit's failures: the model of a unit's healing has no part in them. */
const NOT_IN_THE_UNIT_MODEL: Partial<Record<IncidentMoveName, string>> = {
  recorded: "anomalies are recorded, never healed",
  contained: "freezing is on the ladders of CPU hogs and fork bombs, not of a failing unit",
  quarantined: "processes outside every unit",
  recovered: "the network and the SoC recover by themselves",
};

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A copy of both model folders, where a test may change what it checks. */
function workspace(change: (path: string, text: string) => string = (_, t) => t): string {
  const dir = mkdtempSync(join(tmpdir(), "paio-model-"));
  dirs.push(dir);
  for (const m of [SUPERVISOR_MODEL, AGENT_MODEL]) {
    cpSync(join(ROOT, m), join(dir, m), { recursive: true, filter: (src) => !src.endsWith(".ts") });
  }
  for (const f of ["runner.pml", "supervisor.pml", "unit-states.pml"].map((f) => `${SUPERVISOR_MODEL}/${f}`).concat(["healing.pml", "incident-states.pml"].map((f) => `${AGENT_MODEL}/${f}`))) {
    const path = join(dir, f);
    const text = readFileSync(path, "utf8");
    const changed = change(f, text);
    if (changed !== text) writeFileSync(path, changed);
  }
  return dir;
}

/** Replaces one piece of a model's text, which must be there exactly once (so a changed model cannot make a test pass by missing). */
function replaceOnce(text: string, from: string, to: string): string {
  expect(text.split(from).length - 1, `'${from}' should appear once`).toBe(1);
  return text.replace(from, to);
}

function run(cmd: string[], cwd: string): string {
  const p = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const out = p.stdout.toString() + p.stderr.toString();
  if (p.exitCode !== 0 && cmd[0] !== "./pan") throw new Error(`${cmd.join(" ")} failed (${p.exitCode}):\n${out}`);
  return out;
}

interface Result {
  errors: number;
  states: number;
  seconds: number;
  out: string;
}

/** Max search depth: a search that reaches it is incomplete, which fails the check. */
const DEPTH = 200_000;

/**
 * Generates and compiles the verifier for one model (low optimisation: the
 * compiler, not the search, is the slow part here) and runs each search.
 * A run is -a with an LTL claim (acceptance cycles), or -l (non-progress cycles).
 */
function verify(dir: string, model: string, defines: string[], runs: ({ claim: string } | { progress: true })[]): Result[] {
  if (!Bun.which("spin")) throw new Error("spin is not installed: make deps installs it (image/host-packages.txt), or apt-get install spin");
  const cwd = join(dir, model.slice(0, model.lastIndexOf("/")));
  const file = model.slice(model.lastIndexOf("/") + 1);
  run(["spin", ...defines.map((d) => `-D${d}`), "-a", file], cwd);
  const needNP = runs.some((r) => "progress" in r);
  const needPlain = runs.some((r) => "claim" in r);
  if (needPlain) run(["cc", "-O0", "-w", "-o", "pan", "pan.c"], cwd);
  if (needNP) run(["cc", "-O0", "-w", "-DNP", "-o", "pan-np", "pan.c"], cwd);
  return runs.map((r) => {
    const t0 = performance.now();
    const out = "claim" in r ? run(["./pan", "-a", "-N", r.claim, `-m${DEPTH}`], cwd) : run(["./pan-np", "-l", `-m${DEPTH}`], cwd);
    const wall = (performance.now() - t0) / 1000;
    expect(out, `${model} ${defines.join(" ")}: the search reached its depth limit`).not.toMatch(/max search depth too small/);
    const errors = Number(/errors: (\d+)/.exec(out)?.[1] ?? NaN);
    const states = Number(/([\d.e+]+) states, stored/.exec(out)?.[1] ?? NaN);
    const seconds = Number(/elapsed time ([\d.e+-]+) seconds/.exec(out)?.[1] ?? wall);
    const what = "claim" in r ? r.claim : "no livelock (non-progress cycles)";
    console.log(`${file} ${defines.map((d) => `-D${d}`).join(" ") || "(no profile)"}: ${what}: errors ${errors}, ${states} states stored, ${seconds} s`);
    return { errors, states, seconds, out };
  });
}

function expectHolds(results: Result[]): void {
  for (const r of results) {
    expect(r.out).toMatch(/State-vector \d+ byte/);
    expect(r.errors, r.out).toBe(0);
    expect(r.states).toBeGreaterThan(0);
  }
}

describe("the models are the code's tables", () => {
  test("the generated Promela is what the tables give now", () => {
    expect(readFileSync(UNIT_STATES_PML, "utf8"), "init/supervisor/model/unit-states.pml is out of date: run bun init/supervisor/model/generate.ts").toBe(unitStatesPromela());
    expect(readFileSync(INCIDENT_STATES_PML, "utf8"), "agents/plan/model/incident-states.pml is out of date: run bun agents/plan/model/generate.ts").toBe(incidentStatesPromela());
  });

  test("every unit move and every incident move of a unit's healing is taken in the models", () => {
    const models = handWritten();
    for (const move of Object.keys(UNIT_MOVES)) expect(models, `the unit move '${move}' is in the table but no model takes it`).toContain(`u_${ident(move)}()`);
    for (const move of Object.keys(INCIDENT_MOVES) as IncidentMoveName[]) {
      if (NOT_IN_THE_UNIT_MODEL[move]) continue;
      expect(models, `the incident move '${move}' is in the table but healing.pml never takes it`).toContain(`i_${ident(move)}(k)`);
    }
  });

  test("every remedy on the ladders of a failing unit has a meaning in the model", () => {
    const healing = read(`${AGENT_MODEL}/healing.pml`);
    for (const cls of MODEL_CLASSES) for (const r of LADDERS[cls]) expect(healing, `remedy '${r}' (ladder '${cls}') is not modelled`).toMatch(new RegExp(`r == ${remedyConst(r)}\\b`));
  });

  test("the runner and the agent change states only through the tables", () => {
    const runner = read("init/supervisor/unit-runner.ts");
    // setState is called once, from go(), which takes a move of the table.
    expect(runner.match(/this\.setState\(/g)).toHaveLength(1);
    expect(runner).toMatch(/this\.setState\(UNIT_MOVES\[move\]\.to, reason\)/);
    const agent = read("agents/agent/agent.ts");
    expect(agent).not.toMatch(/setIncidentState\([^)]*"(open|healing|resolved|failed|proposed|contained)"/);
  });

  test("a crash loop of a real unit moves only as the table allows", async () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-model-unit-"));
    dirs.push(dir);
    const parsed = parseUnitFile('exec = ["/bin/sh", "-c", "exit 3"]\nrestart = "always"\nrestart_delay = "10ms"\n[start_limit]\nburst = 3\ninterval = "60s"\n', "/test/loop.toml");
    if (!parsed.ok) throw new Error(parsed.error);
    const changes: StateChange[] = [];
    let done: () => void = () => {};
    const failed = new Promise<void>((resolve) => (done = resolve));
    const r = new UnitRunner(parsed.unit, {
      cgroups: new Cgroups(join(dir, "no-cgroup-here")),
      logDir: dir,
      baseEnv: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      say: () => {},
      changed: (c) => {
        changes.push(c);
        if (c.to === "failed") done();
      },
    });
    const before = UnitRunner.offTable.length;
    r.start("test");
    await failed;
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(["inactive->running", "running->backoff", "backoff->running", "running->backoff", "backoff->running", "running->backoff", "backoff->failed"]);
    expect(changes.at(-1)!.reason).toMatch(/^start limit reached/);
    expect(UnitRunner.offTable.slice(before)).toEqual([]);
  });
});

describe("SPIN: the supervisor alone", () => {
  test("the start limit ends every crash loop; a slow unit is never restarted; a hung unit always is", () => {
    expectHolds(verify(workspace(), `${SUPERVISOR_MODEL}/supervisor.pml`, [], [{ claim: "crash_loop_ends" }, { claim: "slow_never_restarted" }, { claim: "hung_is_restarted" }]));
  });

  test("broken: a scheduled restart that clears the start limit never ends a crash loop", () => {
    const dir = workspace((f, t) => (f.endsWith("runner.pml") ? replaceOnce(t, ":: unit == U_BACKOFF && timer -> do_start(false)", ":: unit == U_BACKOFF && timer -> do_start(true)") : t));
    const [r] = verify(dir, `${SUPERVISOR_MODEL}/supervisor.pml`, [], [{ claim: "crash_loop_ends" }]);
    expect(r!.errors).toBe(1);
    expect(r!.out).toMatch(/acceptance cycle/);
  });

  test("broken: a health check that takes slow for dead restarts a slow unit", () => {
    const dir = workspace((f, t) => (f.endsWith("runner.pml") ? replaceOnce(t, "  :: run_b == B_HANGS ->", "  :: run_b == B_HANGS || run_b == B_SLOW ->") : t));
    const [r] = verify(dir, `${SUPERVISOR_MODEL}/supervisor.pml`, [], [{ claim: "slow_never_restarted" }]);
    expect(r!.errors).toBe(1);
  });

  test("broken: a table that no longer lets a degraded unit pass its check back to running is caught by the model's assertions", () => {
    const dir = workspace((f, t) => (f.endsWith("unit-states.pml") ? replaceOnce(t, "#define can_u_check_passed (unit == U_STARTING || unit == U_DEGRADED)", "#define can_u_check_passed (unit == U_STARTING)") : t));
    const [r] = verify(dir, `${SUPERVISOR_MODEL}/supervisor.pml`, [], [{ claim: "slow_never_restarted" }]);
    expect(r!.errors).toBe(1);
    expect(r!.out).toMatch(/assertion violated/);
  });
});

describe("SPIN: the agent healing a unit under the supervisor", () => {
  test("a crash loop: it ends failed, every incident ends, no livelock", () => {
    expectHolds(verify(workspace(), `${AGENT_MODEL}/healing.pml`, ["CRASHLOOP"], [{ claim: "crash_loop_ends" }, { claim: "incidents_end" }, { progress: true }]));
  });

  test("a slow unit: never restarted, no incident at all", () => {
    expectHolds(verify(workspace(), `${AGENT_MODEL}/healing.pml`, ["SLOW"], [{ claim: "slow_never_restarted" }, { claim: "incidents_end" }, { progress: true }]));
  });

  test("a hung unit: every incident ends, no livelock", () => {
    expectHolds(verify(workspace(), `${AGENT_MODEL}/healing.pml`, ["HANGS"], [{ claim: "incidents_end" }, { progress: true }]));
  });

  test("a flaky unit: every incident ends, no livelock, and a remedy can be judged a fix", () => {
    expectHolds(verify(workspace(), `${AGENT_MODEL}/healing.pml`, ["FLAKY"], [{ claim: "incidents_end" }, { progress: true }]));
    // Not vacuous: the checked runs include incidents that end resolved.
    const dir = workspace((f, t) => (f.endsWith("healing.pml") ? `${t}\nltl never_fixed { [] !fixed_once }\n` : t));
    const [r] = verify(dir, `${AGENT_MODEL}/healing.pml`, ["FLAKY"], [{ claim: "never_fixed" }]);
    expect(r!.errors).toBe(1);
  });

  test("broken: if a late report of a failure an incident already ended on opened a new incident, the agent would restart a unit it had left failed, and the crash loop would not end", () => {
    const dir = workspace((f, t) => (f.endsWith("healing.pml") ? replaceOnce(t, ":: !working(k) && stale[k] > 0 -> skip", ":: false -> skip") : t));
    const [r] = verify(dir, `${AGENT_MODEL}/healing.pml`, ["CRASHLOOP"], [{ claim: "crash_loop_ends" }]);
    expect(r!.errors).toBe(1);
    expect(r!.out).toMatch(/acceptance cycle/);
  });

  test("broken: without max_actions_per_hour, the agent's restarts (which clear the start limit) and its proposals chase a crash loop forever", () => {
    const dir = workspace((f, t) => (f.endsWith("healing.pml") ? replaceOnce(t, ":: actions >= MAX_ACTIONS -> i_gave_up(k)", ":: false -> i_gave_up(k)") : t));
    const [r] = verify(dir, `${AGENT_MODEL}/healing.pml`, ["CRASHLOOP"], [{ progress: true }]);
    expect(r!.errors).toBe(1);
    expect(r!.out).toMatch(/non-progress cycle/);
  });
});

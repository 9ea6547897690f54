// The unit state machine, transition by transition, with real processes on
// the host (no cgroups here: the runner falls back to process groups and /proc).
import { afterEach, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cgroups } from "../../init/supervisor/cgroup.ts";
import { parseUnitFile, type Unit } from "../../init/supervisor/unit-file.ts";
import { UnitRunner, type StateChange } from "../../init/supervisor/unit-runner.ts";

const runners: UnitRunner[] = [];
const dirs: string[] = [];

function unit(name: string, toml: string): Unit {
  const r = parseUnitFile(toml, `/test/${name}.toml`);
  if (!r.ok) throw new Error(r.error);
  return r.unit;
}

function runner(u: Unit): { r: UnitRunner; changes: StateChange[]; until(to: string, ms?: number): Promise<StateChange> } {
  const dir = mkdtempSync(join(tmpdir(), "paio-states-"));
  dirs.push(dir);
  const changes: StateChange[] = [];
  const waiters: { to: string; resolve: (c: StateChange) => void }[] = [];
  const r = new UnitRunner(u, {
    cgroups: new Cgroups(join(dir, "no-cgroup-here")),
    logDir: dir,
    baseEnv: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    say: () => {},
    changed: (c) => {
      changes.push(c);
      for (const w of waiters.filter((w) => w.to === c.to)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(c);
      }
    },
  });
  runners.push(r);
  return {
    r,
    changes,
    until(to, ms = 8000) {
      const seen = changes.find((c) => c.to === to && !(c as { used?: boolean }).used);
      if (seen) {
        (seen as { used?: boolean }).used = true;
        return Promise.resolve(seen);
      }
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no change to '${to}' within ${ms} ms; got ${changes.map((c) => `${c.from}->${c.to}`).join(", ")}`)), ms);
        waiters.push({ to, resolve: (c) => { clearTimeout(t); (c as { used?: boolean }).used = true; resolve(c); } });
      });
    },
  };
}

const path = (cs: StateChange[]) => cs.map((c) => `${c.from}->${c.to}`);

afterEach(async () => {
  for (const r of runners.splice(0)) await r.stop("test over");
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("unit states", () => {
  test("inactive -> running -> stopping -> inactive, with reasons", async () => {
    const t = runner(unit("plain", 'exec = ["/bin/sleep", "30"]\n'));
    t.r.start("started at boot");
    expect((await t.until("running")).reason).toBe("started at boot");
    await t.r.stop("stopped by request");
    expect(path(t.changes)).toEqual(["inactive->running", "running->stopping", "stopping->inactive"]);
    expect(t.changes.at(-1)!.reason).toMatch(/^stopped by request \(killed by signal SIGTERM\)$/);
  });

  test("running -> backoff -> running after an exit; the exit status is the reason", async () => {
    const t = runner(unit("flaky", 'exec = ["/bin/sh", "-c", "sleep 0.2; exit 3"]\nrestart = "on-failure"\nrestart_delay = "50ms"\n'));
    t.r.start();
    await t.until("running");
    const backoff = await t.until("backoff");
    expect(backoff.reason).toBe("exited with status 3; restarting in 50ms");
    await t.until("running");
    expect(path(t.changes).slice(0, 3)).toEqual(["inactive->running", "running->backoff", "backoff->running"]);
  });

  test("backoff -> failed at the start limit; a start by hand clears it", async () => {
    const t = runner(unit("loop", 'exec = ["/bin/sh", "-c", "exit 1"]\nrestart = "always"\nrestart_delay = "20ms"\nstart_limit = { burst = 2, interval = "1m" }\n'));
    t.r.start();
    const failed = await t.until("failed");
    expect(failed.from).toBe("backoff");
    expect(failed.reason).toBe("start limit reached: 2 starts within 1m; start it by hand when fixed");
    const before = t.changes.length;
    t.r.start("started by request", true);
    expect(t.changes.slice(before).map((c) => `${c.from}->${c.to}`)[0]).toBe("failed->running");
  });

  test("a clean exit with restart = on-failure ends inactive; a failure with restart = never ends failed", async () => {
    const ok = runner(unit("once", 'exec = ["/bin/true"]\nrestart = "on-failure"\n'));
    ok.r.start();
    expect((await ok.until("inactive")).reason).toBe('exited with status 0; not restarted (restart = "on-failure")');
    const bad = runner(unit("never", 'exec = ["/bin/false"]\nrestart = "never"\n'));
    bad.r.start();
    expect((await bad.until("failed")).reason).toBe('exited with status 1; not restarted (restart = "never")');
  });

  test("starting -> running when the first health check passes", async () => {
    const t = runner(unit("checked", 'exec = ["/bin/sleep", "30"]\n[health]\ntype = "exec"\ntarget = "true"\ninterval = "200ms"\ntimeout = "100ms"\ngrace = "50ms"\n'));
    t.r.start();
    await t.until("starting");
    expect((await t.until("running")).reason).toMatch(/^health check passed \(\d+ ms\)$/);
  });

  test("running -> degraded when a check times out while the unit is busy; not restarted", async () => {
    const t = runner(unit("busy", 'exec = ["/bin/sh", "-c", "while :; do :; done"]\n[health]\ntype = "exec"\ntarget = "sleep 0.5"\ninterval = "300ms"\ntimeout = "100ms"\nretries = 1\ngrace = "10ms"\n'));
    t.r.start();
    const degraded = await t.until("degraded");
    expect(degraded.reason).toMatch(/while the unit was busy .*slow, not dead/);
    await Bun.sleep(1000);
    expect(t.changes.some((c) => c.to === "unhealthy")).toBe(false);
  });

  test("a stopped (SIGSTOP) unit: unhealthy -> stopping -> backoff -> running again", async () => {
    const t = runner(unit("frozen", 'exec = ["/bin/sleep", "30"]\nrestart = "always"\n[health]\ntype = "exec"\ntarget = "sleep 0.5"\ninterval = "300ms"\ntimeout = "100ms"\nretries = 2\ngrace = "10ms"\n[stop]\ntimeout = "1s"\n'));
    t.r.start();
    await t.until("starting");
    process.kill(t.r.pid!, "SIGSTOP");
    const unhealthy = await t.until("unhealthy");
    expect(unhealthy.reason).toMatch(/health check failed 2 times in a row: stopped \(SIGSTOP\)/);
    await t.until("stopping");
    await t.until("backoff");
    await t.until("starting");
    expect(t.r.restarts).toBe(1);
  });

  test("a hung unit (no CPU while its check times out) counts as failing", async () => {
    const t = runner(unit("hung", 'exec = ["/bin/sleep", "30"]\nrestart = "always"\n[health]\ntype = "exec"\ntarget = "sleep 0.5"\ninterval = "300ms"\ntimeout = "100ms"\nretries = 1\ngrace = "10ms"\n'));
    t.r.start();
    expect((await t.until("unhealthy")).reason).toMatch(/used no CPU while it waited \(hung\)/);
  });
});

// The supervisor on the host, with real processes: start, restart policies,
// refused unit files, logs, stop, re-adoption after a crash, a broken state dir.
import { describe, expect, test } from "vitest";
import { closeSync, existsSync, openSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { ControlClient } from "../../init/control/client.ts";
import { join } from "node:path";
import { startTime } from "../../init/supervisor/proc.ts";
import { alive, startSupervisor, statePids, tempDir, unit } from "../helpers/host-supervisor.ts";
describe("supervisor", () => {
  test("starts good units, refuses a bad file with file and line, and says it is ready", async () => {
    const d = tempDir();
    unit(d, "good", 'exec = ["/bin/sh", "-c", "echo started-ok; sleep 100"]\nrestart = "always"\n');
    unit(d, "bad", 'exec = ["/bin/true"]\nrestart = = "always"\n');
    const s = startSupervisor(d);
    const ready = await s.waitFor(/paio: supervisor ready/);
    expect(ready).toMatch(/uptime \d+\.\d+ s, 1 units started, 1 refused/);
    expect(s.lines.join("\n")).toMatch(/unit error: .*bad\.toml line 2: not valid TOML/);
    await s.waitFor(/good: started \(pid \d+\)/);
    for (let i = 0; i < 50 && !readFileSync(join(d, "state/logs/good.log"), "utf8").includes("started-ok"); i++) await Bun.sleep(50);
    expect(readFileSync(join(d, "state/logs/good.log"), "utf8")).toContain("started-ok");
  });

  test("restart policies: always restarts, on-failure only after a failure, never does not", async () => {
    const d = tempDir();
    unit(d, "alw", 'exec = ["/bin/sh", "-c", "sleep 0.2; exit 0"]\nrestart = "always"\n');
    unit(d, "onf-ok", 'exec = ["/bin/sh", "-c", "exit 0"]\nrestart = "on-failure"\n');
    unit(d, "onf-bad", 'exec = ["/bin/sh", "-c", "exit 4"]\nrestart = "on-failure"\n');
    unit(d, "nev", 'exec = ["/bin/sh", "-c", "exit 4"]\nrestart = "never"\n');
    const s = startSupervisor(d);
    await s.waitFor(/alw: exited with status 0; restarting in 200 ms/);
    await s.waitFor(/onf-bad: exited with status 4; restarting/);
    await s.waitFor(/onf-ok: exited with status 0; not restarting \(restart = "on-failure"\)/);
    await s.waitFor(/nev: exited with status 4; not restarting \(restart = "never"\)/);
    await s.waitFor(/alw: exited with status 0; restarting in 400 ms/); // backoff doubles
  });

  test("a missing program is retried with backoff until the start limit, then failed", async () => {
    const d = tempDir();
    unit(d, "ghost", 'exec = ["/nonexistent/program"]\nrestart = "always"\nrestart_delay = "50ms"\nstart_limit = { burst = 3, interval = "1m" }\n');
    const s = startSupervisor(d);
    await s.waitFor(/paio: supervisor ready/);
    // Without cgroups the spawn itself fails; with them the start wrapper's exec does (status 127).
    await s.waitFor(/ghost: (cannot start \/nonexistent\/program: ENOENT|exited with status 127); restarting in 50 ms/);
    await s.waitFor(/ghost: (cannot start \/nonexistent\/program: ENOENT|exited with status 127); restarting in 100 ms/);
    await s.waitFor(/ghost: failed: start limit reached: 3 starts within 1m/);
  });

  test("a TCP-checked unit stopped with SIGSTOP fails its checks and is restarted, though the kernel still completes its connections", async () => {
    const d = tempDir();
    const port = 20000 + Math.floor(Math.random() * 20000);
    const server = `Bun.listen({ hostname: "127.0.0.1", port: ${port}, socket: { data() {} } }); setInterval(() => {}, 1000);`;
    unit(d, "broker", `exec = [${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(server)}]\nrestart = "always"\n[health]\ntype = "tcp"\ntarget = "127.0.0.1:${port}"\ninterval = "300ms"\ntimeout = "200ms"\nretries = 2\ngrace = "0s"\n`);
    const s = startSupervisor(d);
    await s.waitFor(/broker: started \(pid \d+\)/);
    // Running, its port open: a connection succeeds.
    for (let i = 0; i < 100; i++) {
      const ok = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then((c) => (c.end(), true), () => false);
      if (ok) break;
      await Bun.sleep(100);
    }
    await Bun.sleep(1000);
    const pid = statePids(d).broker!;
    process.kill(pid, "SIGSTOP");
    // The kernel still completes the handshake for the stopped process.
    expect(await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then((c) => (c.end(), true), () => false)).toBe(true);
    await s.waitFor(/broker: unhealthy: health check failed 2 times in a row: stopped \(SIGSTOP\): the check passed \(a listening socket is answered by the kernel\) but no process of the unit can run; restarting/);
    for (let i = 0; i < 100 && statePids(d).broker === pid; i++) await Bun.sleep(100);
    expect(statePids(d).broker).not.toBe(pid);
  });

  test("SIGTERM stops every unit's processes and exits 0", async () => {
    const d = tempDir();
    unit(d, "tree", 'exec = ["/bin/sh", "-c", "sleep 100 & sleep 100 & wait"]\nrestart = "always"\n');
    const s = startSupervisor(d);
    await s.waitFor(/tree: started/);
    await Bun.sleep(300);
    const pid = statePids(d).tree!;
    s.proc.kill("SIGTERM");
    expect(await s.proc.exited).toBe(0);
    expect(s.lines.join("\n")).toContain("supervisor stopped 1 units");
    expect(alive(pid)).toBe(false);
    // the children in its process group are gone too
    await Bun.sleep(200);
    const group = Bun.spawnSync(["pgrep", "-g", String(pid)], { stdout: "pipe" }).stdout.toString().split("\n").filter(Boolean);
    // Zombies do not count: they are dead, waiting for whoever adopted them to reap them.
    expect(group.filter((p) => startTime(Number(p)) !== undefined)).toEqual([]);
  });

  test("after kill -9, a new supervisor adopts the running unit instead of starting it again", async () => {
    const d = tempDir();
    unit(d, "svc", 'exec = ["/bin/sh", "-c", "sleep 100"]\nrestart = "always"\n');
    const s1 = startSupervisor(d);
    await s1.waitFor(/svc: started \(pid (\d+)\)/);
    const pid = statePids(d).svc!;
    s1.proc.kill("SIGKILL");
    await s1.proc.exited;
    expect(alive(pid)).toBe(true);
    const s2 = startSupervisor(d);
    await s2.waitFor(new RegExp(`svc: adopted running process \\(pid ${pid}\\)`));
    await s2.waitFor(/supervisor ready/);
    expect(s2.lines.some((l) => l.includes("svc: started"))).toBe(false);
    // an adopted process that dies is restarted by its policy
    process.kill(pid, "SIGKILL");
    await s2.waitFor(/svc: exited \(exit status unknown: adopted after a supervisor restart\); restarting/);
    await s2.waitFor(/svc: started \(pid \d+\)/);
  });

  test("an unwritable state directory gives a warning and the supervisor still becomes ready", async () => {
    const d = tempDir();
    const blocker = join(d, "not-a-dir");
    writeFileSync(blocker, "");
    unit(d, "svc", 'exec = ["/bin/sh", "-c", "sleep 100"]\n');
    const s = startSupervisor(d, { PAIO_STATE_DIR: join(blocker, "paio") });
    const warning = await s.waitFor(/warning: cannot write/);
    expect(warning).toContain("not-a-dir/paio");
    expect(warning).toMatch(/ENOTDIR|ENOENT/);
    await s.waitFor(/supervisor ready \(uptime [\d.]+ s, 1 units started\)/);
  });

  test("SIGHUP starts units added since the start", async () => {
    const d = tempDir();
    unit(d, "first", 'exec = ["/bin/sh", "-c", "sleep 100"]\n');
    const s = startSupervisor(d);
    await s.waitFor(/supervisor ready/);
    unit(d, "second", 'exec = ["/bin/sh", "-c", "sleep 100"]\n');
    s.proc.kill("SIGHUP");
    await s.waitFor(/second: started/);
    await s.waitFor(/reloaded: 1 added, 0 removed, 0 changed, 1 unchanged/);
  });
});

describe("supervisor: files that must not stall it", () => {
  test("a FIFO and a link to /dev/zero in the units folder are refused at start and at reload; control requests keep being answered", async () => {
    const d = tempDir();
    unit(d, "good", 'exec = ["/bin/sh", "-c", "sleep 100"]\nrestart = "always"\n');
    Bun.spawnSync(["mkfifo", join(d, "units", "fifo.toml")]);
    symlinkSync("/dev/zero", join(d, "units", "zero.toml"));
    const sock = join(d, "run", "control.sock");
    const s = startSupervisor(d, { PAIO_CONTROL_SOCKET: sock });
    expect(await s.waitFor(/supervisor ready/)).toMatch(/1 units started, 2 refused/);
    expect(s.lines.join("\n")).toContain(`unit error: ${join(d, "units", "fifo.toml")}: a FIFO (named pipe), not a regular file`);
    expect(s.lines.join("\n")).toContain(`unit error: ${join(d, "units", "zero.toml")}: a symbolic link to /dev/zero; PAIO reads only regular files`);

    // At run time: another FIFO and a new good unit, then a reload over the socket.
    Bun.spawnSync(["mkfifo", join(d, "units", "late.toml")]);
    unit(d, "second", 'exec = ["/bin/sh", "-c", "sleep 100"]\n');
    const client = await ControlClient.connect(sock);
    const reload = (await Promise.race([client.request({ op: "reload" }), Bun.sleep(10_000).then(() => "HUNG")])) as { ok: boolean; result?: { added: string[]; errors: string[] } } | string;
    expect(reload).not.toBe("HUNG");
    const r = reload as { ok: boolean; result: { added: string[]; errors: string[] } };
    expect(r.ok).toBe(true);
    expect(r.result.added).toEqual(["second"]);
    expect(r.result.errors.join("\n")).toContain("late.toml: a FIFO");
    const status = (await client.request({ op: "status", unit: "good" })) as { ok: boolean; result: { state: string } };
    expect(status.ok).toBe(true);
    expect(status.result.state).toBe("running");
    client.close();
  });

  test("started by PID 1, it says ready on the notify descriptor, then beats; units do not inherit the descriptor", async () => {
    const d = tempDir();
    unit(d, "fds", `exec = ["/bin/sh", "-c", "ls -l /proc/self/fd/ > ${join(d, "fds.txt")}; sleep 100"]\n`);
    const notify = join(d, "notify");
    const fd = openSync(notify, "w");
    const s = startSupervisor(d, { PAIO_NOTIFY_FD: "3" }, [fd]);
    closeSync(fd);
    await s.waitFor(/supervisor ready/);
    for (let i = 0; i < 100 && !existsSync(join(d, "fds.txt")); i++) await Bun.sleep(50);
    await Bun.sleep(4500); // two heartbeats
    const text = readFileSync(notify, "utf8");
    expect(text.startsWith("ready\n")).toBe(true);
    expect(text.slice("ready\n".length)).toMatch(/^\.{2,3}$/);
    expect(readFileSync(join(d, "fds.txt"), "utf8")).not.toContain(notify);
  });
});

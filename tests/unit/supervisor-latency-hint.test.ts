// A unit's latency hint on this host's stock kernel (no per-task hint, no
// cgroup v2), with a real supervisor and real processes: latency_nice falls
// back to nice of the main process, its children inherit it, the unit's log
// says which was used and why, `paio status` reads it back; the
// set-task-priority request refuses the hint here, sets nice, and refuses
// garbage without changing anything.
import { describe, expect, test } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ControlClient } from "../../init/control/client.ts";
import type { Response } from "../../init/control/protocol.ts";
import { startSupervisor, statePids, tempDir, unit, type Sup } from "../helpers/host-supervisor.ts";

const CLI = join(import.meta.dirname, "../../init/cli/paio.ts");
const NO_HINT = "sched_attr is 56 bytes, not 60: this kernel has no per-task latency hint, and no cpu.latency.nice";

function niceOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return ""; // exited meanwhile
  }
}

async function until<T>(what: string, fn: () => T | undefined, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

function logLines(d: string, name: string): string[] {
  try {
    return readFileSync(join(d, "state", "logs", `${name}.log`), "utf8").split("\n");
  } catch {
    return [];
  }
}

async function paio(sock: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([process.execPath, CLI, ...args], { env: { ...process.env, PAIO_CONTROL_SOCKET: sock }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

async function start(units: Record<string, string>): Promise<{ d: string; s: Sup; sock: string }> {
  const d = tempDir();
  for (const [name, text] of Object.entries(units)) unit(d, name, text);
  const sock = join(d, "run", "control.sock");
  const s = startSupervisor(d, { PAIO_CONTROL_SOCKET: sock });
  await s.waitFor(/supervisor ready/);
  return { d, s, sock };
}

describe("latency hint on a stock kernel", () => {
  test("latency_nice falls back to nice of the main process, inherited by what it forks; the unit's log and paio status say so", async () => {
    // The child is forked after a pause: without cgroups the program runs before the supervisor sets the nice.
    const { d, sock } = await start({
      quick: 'exec = ["/bin/sh", "-c", "sleep 0.5; sleep 1000 & wait"]\nrestart = "always"\nlatency_nice = -10\n',
      plain: 'exec = ["/bin/sh", "-c", "exec sleep 1000"]\nrestart = "always"\n',
    });
    const pid = await until("quick's pid", () => statePids(d).quick);
    const line = await until("the hint's line in quick's log", () => logLines(d, "quick").find((l) => l.startsWith("paio: latency_nice")));
    expect(line).toBe(`paio: latency_nice -10: nice -10 on the main process (pid ${pid}) used instead, since ${NO_HINT}`);
    expect(niceOf(pid)).toBe(-10);
    // The "sleep 1000" it forks later, not the "sleep 0.5" it may have forked before the nice was set.
    const child = await until("quick's child", () => childrenOf(pid).find((c) => cmdlineOf(c) === "sleep\u00001000\u0000"));
    expect(niceOf(child)).toBe(-10);
    // A unit that asks for nothing is left alone, and its log gets no line.
    const plain = statePids(d).plain!;
    expect(niceOf(plain)).toBe(0);
    expect(logLines(d, "plain").filter((l) => l.startsWith("paio:"))).toEqual([]);

    const human = await paio(sock, "status", "quick");
    expect(human.out).toContain(`\n  latency hint: none (stock kernel); nice -10 instead (main process ${pid})\n`);
    expect((await paio(sock, "status", "plain")).out).toContain("\n  latency hint: none (stock kernel)\n");
    expect(JSON.parse((await paio(sock, "--json", "status", "quick")).out).latency_hint).toEqual({ kernel: "none", pid, nice: -10, wanted: -10 });
    expect(JSON.parse((await paio(sock, "--json", "status", "plain")).out).latency_hint).toEqual({ kernel: "none", pid: plain, nice: 0 });

    // A nice set by request, taken back, returns to the file's fallback.
    expect((await paio(sock, "priority", "quick", "--nice", "3")).out).toBe("quick: nice 3 per task, 1 task now\n");
    expect(niceOf(pid)).toBe(3);
    expect((await paio(sock, "priority", "quick", "--nice", "none")).out).toBe("quick: nice -10 per task, 1 task now\n");
    expect(niceOf(pid)).toBe(-10);
  });

  test("set-task-priority: the per-task hint is refused here, garbage changes nothing, nice reaches every task now and the main process at its next start", async () => {
    const { d, sock } = await start({ svc: 'exec = ["/bin/sh", "-c", "sleep 1000 & wait"]\nrestart = "always"\n' });
    const pid = await until("svc's pid", () => statePids(d).svc);
    const c = await ControlClient.connect(sock);
    const ask = (req: Record<string, unknown>) => c.request(req as never) as Promise<Response>;
    try {
      expect(await ask({ op: "set-task-priority", unit: "svc", latency_nice: -5 })).toMatchObject({
        ok: false,
        error: { code: "bad-request", message: `latency_nice per task needs a kernel with the per-task latency hint (${NO_HINT}); use set-limits latency_nice (cpu.latency.nice) or nice` },
      });
      const garbage: [Record<string, unknown>, string][] = [
        [{ unit: "svc" }, "'set-task-priority' needs 'latency_nice' or 'nice' (or both)"],
        [{ unit: "svc", nice: 20 }, "'nice' must be a whole number from -20 to 19, or null"],
        [{ unit: "svc", nice: "5" }, "'nice' must be a whole number from -20 to 19, or null"],
        [{ unit: "svc", latency_nice: -2.5 }, "'latency_nice' must be a whole number from -20 to 19, or null"],
        [{ nice: 1 }, "'set-task-priority' needs 'unit', a unit name"],
      ];
      for (const [req, message] of garbage) expect(await ask({ op: "set-task-priority", ...req })).toMatchObject({ ok: false, error: { code: "bad-request", message } });
      expect(await ask({ op: "set-task-priority", unit: "ghost", nice: 1 })).toMatchObject({ ok: false, error: { code: "no-such-unit" } });
      expect(await ask({ op: "set-limits", unit: "svc", limits: { uclamp_min: 20 } })).toMatchObject({ ok: false, error: { code: "bad-request", message: expect.stringMatching(/^uclamp_min needs cpu\.uclamp\.min/) } });
      const child = await until("svc's child", () => childrenOf(pid)[0]);
      expect([niceOf(pid), niceOf(child)]).toEqual([0, 0]);

      expect(await ask({ op: "set-task-priority", unit: "svc", nice: 5 })).toMatchObject({ ok: true, result: { unit: "svc", nice: 5, tasks: 1, failed: [] } });
      expect(niceOf(pid)).toBe(5);
      // Without a cgroup the main process's threads are the unit's tasks: a child it forked before keeps its own.
      expect(niceOf(child)).toBe(0);

      // The next start gets it too, and the log says so.
      process.kill(pid, "SIGKILL");
      const next = await until("svc restarted", () => (statePids(d).svc !== pid ? statePids(d).svc : undefined));
      expect(await until("the nice line", () => logLines(d, "svc").find((l) => l.startsWith("paio: nice")))).toBe(`paio: nice 5 (set by request) on the main process (pid ${next})`);
      expect(niceOf(next)).toBe(5);
      expect((await paio(sock, "status", "svc")).out).toContain(`\n  latency hint: none (stock kernel); nice 5 instead (main process ${next})\n`);

      const back = await paio(sock, "priority", "svc", "--nice", "none");
      expect(back).toMatchObject({ code: 0, out: "svc: nice 0 per task, 1 task now\n" });
      expect(niceOf(next)).toBe(0);
      expect(await paio(sock, "priority", "svc", "--nice", "x")).toMatchObject({ code: 2 });
    } finally {
      c.close();
    }
  });
});

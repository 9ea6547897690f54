// A device must never be bricked by a file in its units folder or by a
// supervisor that is alive but stuck: a FIFO and a link to /dev/zero are
// refused at reload and at boot; PID 1 kills a supervisor that stops
// answering (its units keep running and are taken back) and opens the rescue
// shell when supervisor after supervisor never becomes ready.
import { describe, expect, test } from "vitest";
import { Guest } from "../../qemu/guest.ts";
import { bootGuest, consoleLine, OUT, scratchDisk, sh } from "../helpers/guest.ts";

describe("files and hangs that must not brick a device", () => {
  const scratch = scratchDisk("hang");

  test("a FIFO and a link to /dev/zero in /var/lib/paio/units: reload answers, and the next boot comes up with every other unit", async () => {
    const g1 = await bootGuest({ disk: scratch(), snapshot: false });
    const out = await sh(g1, `
      mkfifo /var/lib/paio/units/fifo.toml
      ln -s /dev/zero /var/lib/paio/units/zero.toml
      timeout 30 paio reload; echo "reload-exit=$?"
      timeout 10 paio status >/dev/null; echo "status-exit=$?"`);
    expect(out).toContain("fifo.toml: a FIFO (named pipe), not a regular file");
    expect(out).toContain("zero.toml: a symbolic link to /dev/zero; PAIO reads only regular files");
    expect(out).toMatch(/reload-exit=[01]\n/); // 1: the reload reports refused files; 124 would be a hang
    expect(out).toContain("status-exit=0");
    expect(await g1.shutdown("REBOOT")).toBe(0);

    const g2 = await bootGuest({ disk: scratch(), snapshot: false });
    try {
      const ready = g2.console.lines().find((l) => l.includes("paio: supervisor ready"))!;
      expect(ready).toMatch(/2 refused/);
      const status = await sh(g2, "paio status demo");
      expect(status).toMatch(/running/);
    } finally {
      expect(await g2.shutdown()).toBe(0);
    }
  }, 900_000);

  test("a supervisor stopped with SIGSTOP is killed by PID 1 and replaced; its units keep their processes", async () => {
    const g = await bootGuest({ disk: scratch(), snapshot: true, append: ["paio.supervisor_stall_timeout=6"] });
    try {
      const before = await sh(g, `paio --json status demo | sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p'; echo sup=$(pgrep /usr/lib/paio/supervisor.js)`);
      const demoPid = before.split("\n")[0]!;
      const supPid = /sup=(\d+)/.exec(before)![1]!;
      const readyBefore = g.console.lines().filter((l) => l.includes("paio: supervisor ready")).length;
      await sh(g, `kill -STOP ${supPid}`);
      const line = await consoleLine(g, /paio-init: supervisor \(pid \d+\) stopped answering/, 60_000);
      expect(line).toContain(`pid ${supPid}`);
      for (let i = 0; i < 300 && g.console.lines().filter((l) => l.includes("paio: supervisor ready")).length === readyBefore; i++) await Bun.sleep(200);
      const after = await sh(g, `paio --json status demo | sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p'; echo sup=$(pgrep /usr/lib/paio/supervisor.js)`);
      expect(after.split("\n")[0]).toBe(demoPid);
      expect(/sup=(\d+)/.exec(after)![1]).not.toBe(supPid);
    } finally {
      g.kill();
    }
  }, 600_000);

  test("a supervisor killed after it has worked for a while is replaced at once, however often that happens; quick deaths make the wait grow", async () => {
    const g = await bootGuest({ snapshot: true });
    /** The first console line after `mark` that matches. */
    const lineAfter = async (mark: number, re: RegExp, timeoutMs: number): Promise<string> => {
      for (const end = Date.now() + timeoutMs; Date.now() < end; await Bun.sleep(100)) {
        const hit = g.console.lines().slice(mark).find((l) => re.test(l));
        if (hit) return hit;
      }
      throw new Error(`no console line matching ${re} within ${timeoutMs} ms; last lines:\n${g.console.lastLines(20).join("\n")}`);
    };
    const KILLED = /paio-init: supervisor \(pid \d+\) killed by signal 9 \(Killed\); restarting in (\d+) ms/;
    try {
      // Each killed 12 s after it became ready (10 s counts as working): no growing wait. (Five deaths
      // within 60 s, whatever their kind, are a crash loop: four deaths in all here.)
      const waits: string[] = [];
      for (let k = 0; k < 2; k++) {
        await Bun.sleep(12_000);
        const mark = g.consoleMark();
        await sh(g, "kill -9 $(pgrep /usr/lib/paio/supervisor.js)");
        waits.push(KILLED.exec(await lineAfter(mark, KILLED, 30_000))![1]!);
        await lineAfter(mark, /paio: supervisor ready/, 60_000);
      }
      expect(waits).toEqual(["250", "250"]);
      // Killed at once after it says ready, twice: the wait grows (after the 250 ms above, 500, then 1000).
      const quick: string[] = [];
      let last = -1;
      for (let k = 0; k < 2; k++) {
        // The one started after the last kill has said ready.
        if (last >= 0) await lineAfter(last, /paio-init: supervisor \(pid \d+\) is ready/, 60_000);
        const mark = (last = g.consoleMark());
        await sh(g, "kill -9 $(pgrep /usr/lib/paio/supervisor.js)");
        quick.push(KILLED.exec(await lineAfter(mark, KILLED, 30_000))![1]!);
      }
      expect(quick).toEqual(["500", "1000"]);
      expect(g.console.lines().some((l) => l.includes("rescue shell"))).toBe(false);
    } finally {
      g.kill();
    }
  }, 600_000);

  test("supervisors that never become ready are killed; the third in a row opens the rescue shell, and the supervisor is still tried every 30 s", async () => {
    // A "supervisor" that starts and then does nothing, kept on the data partition.
    const g1 = await bootGuest({ disk: scratch(), snapshot: false });
    await sh(g1, "printf '#!/bin/sh\\nexec sleep 100000\\n' > /var/lib/paio/stuck.sh; chmod 755 /var/lib/paio/stuck.sh; sync");
    expect(await g1.shutdown()).toBe(0);

    const g = await Guest.start({
      outDir: OUT, disk: scratch(), boot: "direct", snapshot: true,
      append: ["paio.supervisor=/var/lib/paio/stuck.sh", "paio.supervisor_ready_timeout=4"],
    });
    try {
      await consoleLine(g, /paio-init: supervisor \(pid \d+\) not ready within 4 s; killing it/, 300_000);
      const rescue = await consoleLine(g, /paio-init: 3 supervisors in a row never became ready; starting a rescue shell/, 120_000);
      expect(rescue).toBeTruthy();
      expect(g.console.lines().filter((l) => /not ready within 4 s/.test(l)).length).toBe(3);
      expect(rescue).toContain("trying the supervisor again in 30 s meanwhile");
      // A device nobody stands at is not left without a supervisor: it is tried again while the shell is open.
      await consoleLine(g, /paio-init: 3 supervisors in a row never became ready; the rescue shell \(pid \d+\) is still open; trying the supervisor again in 30 s/, 180_000);
      expect(g.console.lines().filter((l) => /not ready within 4 s/.test(l)).length).toBe(6);
    } finally {
      g.kill();
    }
  }, 600_000);
});

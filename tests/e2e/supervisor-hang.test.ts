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

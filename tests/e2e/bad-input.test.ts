// Bad input at run time gets a clear error and changes nothing else: a unit
// file that is not TOML, and a data partition that is full.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Guest } from "../../qemu/guest.ts";
import { bootGuest, consoleLine, sh } from "../helpers/guest.ts";

/** Kills the supervisor and waits until PID 1 has started a new one that is ready. */
const RESTART_SUPERVISOR = `
  old=$(pgrep /usr/lib/paio/supervisor.js)
  kill -9 $old
  for i in $(seq 1 150); do
    new=$(pgrep /usr/lib/paio/supervisor.js)
    [ -n "$new" ] && [ "$new" != "$old" ] && break
    sleep 0.2
  done
  echo "supervisor $old -> $new"`;

describe("bad input in a running system", () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await bootGuest();
  }, 400_000);
  afterAll(async () => {
    if (guest && !guest.exited) expect(await guest.shutdown()).toBe(0);
  }, 120_000);

  test("a unit file that is not valid TOML is refused with file and line; the others start", async () => {
    await sh(guest, `
      mkdir -p /var/lib/paio/units
      printf 'description = "broken"\\nexec = ["/bin/true"\\nrestart = = "always"\\n' > /var/lib/paio/units/broken.toml
      printf 'exec = ["/bin/sh", "-c", "echo ok > /run/paio/added.ok; sleep 1000"]\\nrestart = "always"\\n' > /var/lib/paio/units/added.toml
      ${RESTART_SUPERVISOR}`);
    const err = await consoleLine(guest, /\/var\/lib\/paio\/units\/broken\.toml/);
    expect(err).toMatch(/line \d+/);
    await consoleLine(guest, /paio: supervisor ready/);
    const out = await sh(guest, "for i in $(seq 1 50); do test -e /run/paio/added.ok && break; sleep 0.2; done; cat /run/paio/added.ok; [ -n \"$(pgrep demo.heartbeat)\" ] && echo demo-ok");
    expect(out).toContain("ok");
    expect(out).toContain("demo-ok");
  }, 120_000);

  test("a full data partition gives a clear warning and the supervisor still becomes ready", async () => {
    const readyBefore = guest.console.lines().filter((l) => l.includes("paio: supervisor ready")).length;
    // The agent frees space as it compacts its database: stopped, it cannot hide the full disk.
    const out = await sh(guest, `
      paio stop agent >/dev/null
      dd if=/dev/zero of=/var/lib/paio/fill bs=1M 2>&1 | grep -i 'space'
      df -k /var/lib/paio | tail -1
      ${RESTART_SUPERVISOR}`);
    expect(out).toMatch(/No space left on device/i);
    await consoleLine(guest, /warning: .*\/var\/lib\/paio.*(ENOSPC|no space)/i);
    for (let i = 0; i < 300; i++) {
      if (guest.console.lines().filter((l) => l.includes("paio: supervisor ready")).length > readyBefore) break;
      await Bun.sleep(200);
    }
    expect(guest.console.lines().filter((l) => l.includes("paio: supervisor ready")).length).toBeGreaterThan(readyBefore);
    await sh(guest, "rm /var/lib/paio/fill; paio start agent >/dev/null");
  }, 300_000);
});

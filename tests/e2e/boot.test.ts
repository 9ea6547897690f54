// Boots the image once (direct kernel boot, snapshot disk) and checks what a
// user relies on: our PID 1, the supervisor and its units, a read-only root,
// a data partition, zombies reaped, the supervisor respawned after a crash.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Guest } from "../../qemu/guest.ts";
import { bootGuest, consoleLine, sh } from "../helpers/guest.ts";

describe("booted image", () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await bootGuest();
  }, 400_000);
  afterAll(async () => {
    if (guest && !guest.exited) expect(await guest.shutdown()).toBe(0);
  }, 120_000);

  test("PID 1 is PAIO's init, and it reported its start", async () => {
    const out = await sh(guest, `readlink /proc/1/exe; cat /proc/1/comm; grep -q 'paio-init: must run as PID 1' /proc/1/exe && echo ours`);
    expect(out.split("\n")).toEqual(["/usr/sbin/init", "init", "ours", ""]);
    expect(guest.console.lines().some((l) => /paio-init: started at uptime \d+\.\d+ s/.test(l))).toBe(true);
  });

  test("the supervisor runs under PID 1 with the demo unit", async () => {
    const out = await sh(guest, `
      sup=$(pgrep /usr/lib/paio/supervisor.js)
      echo "supervisor=$sup parent=$(awk '/^PPid:/{print $2}' /proc/$sup/status)"
      sleep 1; test -s /run/paio/demo.heartbeat && echo heartbeat
      demo=$(pgrep demo.heartbeat) && tr '\\0' '\\n' < /proc/$demo/environ | grep -qx PAIO_UNIT=demo && echo demo-running`);
    expect(out).toMatch(/supervisor=\d+ parent=1\b/);
    expect(out).toContain("heartbeat");
    expect(out).toContain("demo-running");
  });

  test("the root is a read-only squashfs", async () => {
    const out = await sh(guest, `awk '$2 == "/" {print $3, $4}' /proc/mounts; touch /probe 2>&1 || echo refused`);
    expect(out).toMatch(/^squashfs ro/);
    expect(out).toContain("refused");
  });

  test("the data partition is ext4 at /var/lib/paio, created on first boot", async () => {
    const out = await sh(guest, `awk '$2 == "/var/lib/paio" {print $3, $4}' /proc/mounts; cat /run/paio/data-status; echo x > /var/lib/paio/w && echo writable`);
    expect(out).toMatch(/^ext4 rw/);
    expect(out).toContain("state=formatted");
    expect(out).toContain("writable");
  });

  test("orphaned children are reaped by PID 1 (no zombies)", async () => {
    const out = await sh(guest, `
      # The subshell exits at once, so the sleeps are orphaned and re-parented to PID 1.
      ( sleep 0.3 & echo $! > /tmp/orphan1; sleep 0.4 & echo $! > /tmp/orphan2 )
      sleep 2
      for p in $(cat /tmp/orphan1 /tmp/orphan2); do [ -e /proc/$p ] && echo "left: $p $(awk '/^State/{print $2}' /proc/$p/status)"; done
      # A process that just exited is a zombie until its parent reaps it: count
      # only zombies that are still there in three looks a second apart.
      zl() { for f in /proc/[0-9]*/status; do grep -q '^State:.*Z' "$f" 2>/dev/null && { p=\${f#/proc/}; echo "\${p%/status}"; }; done; }
      a=$(zl); sleep 1; b=$(zl); sleep 1; c=$(zl)
      stuck=$(printf '%s\n%s\n%s\n' "$a" "$b" "$c" | grep . | sort | uniq -c | awk '$1 == 3 {print $2}')
      for p in $stuck; do echo "zombie: $p $(cat /proc/$p/comm) parent $(awk '/^PPid:/{print $2}' /proc/$p/status)"; done
      echo "zombies=$(echo $stuck | wc -w)"`);
    expect(out).not.toContain("left:");
    expect(out).toContain("zombies=0");
  });

  test("kill -9 of the supervisor: PID 1 respawns it and the units are kept", async () => {
    const out = await sh(guest, `
      old=$(pgrep /usr/lib/paio/supervisor.js)
      demo_before=$(pgrep demo.heartbeat)
      kill -9 $old
      for i in $(seq 1 100); do
        new=$(pgrep /usr/lib/paio/supervisor.js)
        [ -n "$new" ] && [ "$new" != "$old" ] && break
        sleep 0.2
      done
      echo "old=$old new=$new"
      sleep 2
      demo_after=$(pgrep demo.heartbeat)
      echo "demo $demo_before -> $demo_after, $(pcount demo.heartbeat) running"
      [ -n "$demo_before" ] && [ "$demo_before" = "$demo_after" ] && echo demo-kept`);
    const m = out.match(/old=(\d+) new=(\d+)/);
    expect(m, out).not.toBeNull();
    expect(m![1]).not.toBe(m![2]);
    expect(out).toContain("demo-kept");
    expect(out).toContain(", 1 running"); // adopted, not started a second time
    await consoleLine(guest, /paio-init: supervisor \(pid \d+\) .*(killed|signal)/);
  });
});

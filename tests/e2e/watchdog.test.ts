// The hardware watchdog: the supervisor feeds it while its loop is healthy,
// and a stopped supervisor leads to a reset. Debian's cloud kernel has no
// driver for QEMU's i6300esb, so this test assembles a second image with
// Debian's generic kernel (the kernel is an input of the image) and boots it
// with the emulated watchdog. The same stock-kernel image shows the agent's
// fallback when the kernel lacks PAIO's scheduling hooks.
import { afterAll, beforeAll, expect, test } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Guest } from "../../qemu/guest.ts";
import { BOOT_TIMEOUT_MS, consoleLine, REPO, requireBuiltImage, sh } from "../helpers/guest.ts";

let out: string;

beforeAll(() => {
  requireBuiltImage();
  out = mkdtempSync(join(tmpdir(), "paio-watchdog-"));
  const r = Bun.spawnSync([join(REPO, "node_modules/.bin/bun"), join(REPO, "image/build.ts")], {
    env: { ...process.env, PAIO_OUT: out, PAIO_DEBIAN_KERNEL: "linux-image-amd64" },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`image with the generic kernel failed:\n${r.stdout}${r.stderr}`);
}, 600_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

test("the supervisor feeds /dev/watchdog; when it stops, the machine is reset", async () => {
  // PID 1 replaces a silent supervisor after 20 s, before the hardware watchdog (30 s) would fire; here
  // it waits far longer, so that the watchdog is what acts, as it would if PID 1 itself could not.
  const guest = await Guest.start({ outDir: out, disk: join(out, "paio-x86_64.img"), arch: "x86_64", boot: "direct", snapshot: true, watchdog: true, append: ["paio.supervisor_stall_timeout=600"] });
  try {
    await guest.waitReady(BOOT_TIMEOUT_MS);
    await consoleLine(guest, /watchdog: feeding \/dev\/watchdog/);
    // Longer than the driver's 30 s heartbeat: the machine stays up while the supervisor feeds it.
    const out1 = await sh(guest, "cat /sys/class/watchdog/watchdog0/identity /sys/class/watchdog/watchdog0/timeout; sleep 40; echo still-up");
    expect(out1).toContain("i6300ESB");
    expect(out1).toContain("still-up");
    // Freeze the supervisor: nothing feeds the watchdog, and it resets the machine (QEMU exits: -no-reboot).
    await sh(guest, "kill -STOP $(cat /run/paio/supervisor.pid)");
    const code = await guest.exitWithin(150_000);
    expect(code).not.toBeNull();
    expect(guest.console.lines().some((l) => l.includes("paio-init: shutting down"))).toBe(false);
  } finally {
    guest.kill();
  }
}, 400_000);

test("on a stock kernel the agent falls back to cpu.weight for latency-sensitive units, and says so", async () => {
  const guest = await Guest.start({ outDir: out, disk: join(out, "paio-x86_64.img"), arch: "x86_64", boot: "direct", snapshot: true });
  try {
    await guest.waitReady(BOOT_TIMEOUT_MS);
    const out1 = await sh(guest, `printf 'exec = ["/bin/sleep", "100000"]\\nrestart = "always"\\nlatency_sensitive = true\\n' > /var/lib/paio/units/quick.toml
paio reload >/dev/null
for i in $(seq 1 90); do [ "$(cat /sys/fs/cgroup/paio/quick/cpu.weight 2>/dev/null)" = 400 ] && break; sleep 1; done
cat /sys/fs/cgroup/paio/quick/cpu.weight
ls /sys/fs/cgroup/paio/quick/ | grep -c latency || true
paio logs agent -n 50 | grep scheduling
paio agent | grep scheduling
paio why quick`);
    expect(out1).toMatch(/^400\n0\n/);
    expect(out1).toMatch(/scheduling through cpu\.weight, nice and PSI \(stock kernel: no latency hint\)/);
    expect(out1).toMatch(/high priority[^\n]*cpu\.weight[^\n]*this kernel has no latency hint/);
  } finally {
    guest.kill();
  }
}, 400_000);

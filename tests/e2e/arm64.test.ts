// The arm64 images, in make test's short form (`make test-arm64` runs the
// whole end-to-end suite on QEMU virt):
//  - paio-arm64.img on QEMU virt with a Cortex-A72 (an ARMv8.0 core, like the
//    Pi 4's: Bun must not need newer instructions): our PID 1, the supervisor
//    and its units, a read-only squashfs root, the kernel's PAIO hooks, data
//    kept across a reboot;
//  - paio-rpi.img on QEMU raspi3b with a Cortex-A53 (the Pi 3's core), booted
//    the way the Pi's firmware would from the image's own boot partition: the
//    supervisor ready and the SoC's watchdog present (QEMU 7.2 cannot run it:
//    armed, its model resets the machine at once).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Guest } from "../../qemu/guest.ts";
import { PRELUDE, REPO } from "../helpers/guest.ts";

const OUT = join(REPO, "out", "arm64");
const VIRT_IMAGE = join(OUT, "paio-arm64.img");
const RPI_IMAGE = join(OUT, "paio-rpi.img");
const BOOT_TIMEOUT_MS = Number(process.env.PAIO_BOOT_TIMEOUT ?? 600) * 1000;

function requireImage(path: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: run 'make image ARCH=arm64' (make test does it)`);
}

async function boot(opts: { disk: string; board: "virt" | "rpi3"; snapshot: boolean; cpu?: string }): Promise<Guest> {
  const guest = await Guest.start({
    outDir: OUT,
    disk: opts.disk,
    arch: "arm64",
    board: opts.board,
    boot: "direct",
    snapshot: opts.snapshot,
    memoryMb: 1024,
    echo: process.env.PAIO_TEST_CONSOLE ? (l) => process.stderr.write(`console| ${l}\n`) : undefined,
  });
  try {
    await guest.waitReady(BOOT_TIMEOUT_MS);
  } catch (e) {
    guest.kill();
    throw e;
  }
  return guest;
}

async function run(guest: Guest, script: string): Promise<string> {
  const { code, output } = await guest.sh(PRELUDE + script);
  if (code !== 0) throw new Error(`guest script failed with ${code}:\n${script}\n--- output ---\n${output}`);
  return output;
}

describe("arm64 UEFI image on QEMU virt (cortex-a72)", () => {
  let dir = "";
  let disk = "";
  let guest: Guest | undefined;
  beforeAll(async () => {
    requireImage(VIRT_IMAGE);
    dir = mkdtempSync(join(tmpdir(), "paio-arm64-"));
    disk = join(dir, "disk.img");
    Bun.spawnSync(["cp", "--sparse=always", VIRT_IMAGE, disk]);
    guest = await boot({ disk, board: "virt", snapshot: false });
  }, BOOT_TIMEOUT_MS + 60_000);
  afterAll(() => {
    guest?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the machine is aarch64 on a Cortex-A72, running our PID 1 and supervisor", async () => {
    const out = await run(guest!, `
      uname -m
      grep -m1 'CPU part' /proc/cpuinfo
      readlink /proc/1/exe; grep -q 'paio-init: must run as PID 1' /proc/1/exe && echo pid1-ours
      sup=$(pgrep /usr/lib/paio/supervisor.js); echo "supervisor parent=$(awk '/^PPid:/{print $2}' /proc/$sup/status)"`);
    expect(out).toMatch(/^aarch64$/m);
    expect(out).toMatch(/CPU part\s*:\s*0xd08/); // Cortex-A72
    expect(out).toContain("/usr/sbin/init");
    expect(out).toContain("pid1-ours");
    expect(out).toContain("supervisor parent=1");
  });

  test("the agent and the console units run (Bun and onnxruntime work on this core)", async () => {
    const out = await run(guest!, `
      for i in $(seq 1 120); do paio status --json > /tmp/st.json 2>/dev/null && grep -q '"agent"' /tmp/st.json && break; sleep 1; done
      paio status
      echo "agent=$(pcount /usr/lib/paio/agent.js) console=$(pcount /usr/lib/paio/console.js)"`);
    expect(out).toMatch(/agent=[1-9]/);
    expect(out).toMatch(/console=[1-9]/);
    expect(out).toMatch(/\bagent\b.*\brunning\b/);
  });

  test("the root is a read-only squashfs; the data partition is ext4", async () => {
    const out = await run(guest!, `awk '$2 == "/" || $2 == "/var/lib/paio" {print $2, $3, $4}' /proc/mounts; touch /probe 2>&1 || echo refused`);
    expect(out).toMatch(/^\/ squashfs ro/m);
    expect(out).toMatch(/^\/var\/lib\/paio ext4 rw/m);
    expect(out).toContain("refused");
  });

  test("A/B updates: booted from slot A, committed; RAUC's service answers on the system bus", async () => {
    const out = await run(guest!, `
      for i in $(seq 1 120); do rauc status --output-format=json > /tmp/rauc.json 2>/dev/null && break; sleep 1; done
      cat /tmp/rauc.json; echo; paio update status`);
    expect(out).toContain('"compatible":"paio-arm64"');
    expect(out).toContain('"booted":"A"');
    expect(out).toMatch(/slot A \(\/dev\/vda2\): version \S+, good, running, boots next/);
    expect(out).toMatch(/slot B \(\/dev\/vda3\): no version, empty/);
  });

  test("the patched kernel's hooks exist: cpu.latency.nice and cpu.wait.stat in a unit's cgroup", async () => {
    const out = await run(guest!, `
      cg=/sys/fs/cgroup/paio/units/demo
      [ -d $cg ] || cg=$(dirname $(grep -l . /sys/fs/cgroup/*/*/cpu.latency.nice 2>/dev/null | head -n 1))
      ls $cg | grep -E '^cpu\\.(latency\\.nice|wait\\.stat)$'
      cat $cg/cpu.latency.nice`);
    expect(out).toContain("cpu.latency.nice");
    expect(out).toContain("cpu.wait.stat");
    expect(out).toMatch(/^-?\d+$/m);
  });

  test("data written before a reboot is there after it", async () => {
    await run(guest!, "echo kept-on-arm64 > /var/lib/paio/arm64-marker; sync");
    expect(await guest!.shutdown("REBOOT")).toBe(0);
    guest = await boot({ disk, board: "virt", snapshot: false });
    const out = await run(guest, "cat /var/lib/paio/arm64-marker; cat /run/paio/data-status");
    expect(out).toContain("kept-on-arm64");
    expect(out).toMatch(/state=mounted/);
    expect(await guest.shutdown()).toBe(0);
  }, BOOT_TIMEOUT_MS + 120_000);
});

describe("Raspberry Pi image on QEMU raspi3b (cortex-a53)", () => {
  let guest: Guest | undefined;
  beforeAll(async () => {
    requireImage(RPI_IMAGE);
    guest = await boot({ disk: RPI_IMAGE, board: "rpi3", snapshot: true });
  }, BOOT_TIMEOUT_MS + 60_000);
  afterAll(() => guest?.kill());

  test("the supervisor is ready on a Cortex-A53, root and data found by the MBR's PARTUUIDs", async () => {
    const out = await run(guest!, `
      grep -m1 'CPU part' /proc/cpuinfo
      cat /proc/cmdline
      awk '$2 == "/" || $2 == "/var/lib/paio" {print $1, $2, $3}' /proc/mounts`);
    expect(out).toMatch(/CPU part\s*:\s*0xd03/); // Cortex-A53
    expect(out).toContain("root=PARTUUID=50a10001-02");
    // The card is found by PARTUUID, whatever number the kernel gives the controller.
    expect(out).toMatch(/^\/dev\/mmcblk\d+p2 \/ squashfs/m);
    expect(out).toMatch(/^\/dev\/mmcblk\d+p3 \/var\/lib\/paio ext4/m);
  });

  test("one system slot: paio update says updates come by flashing, and the rauc unit stands down", async () => {
    const out = await run(guest!, `
      paio update status; echo "rc=$?"
      for i in $(seq 1 60); do paio logs rauc 2>/dev/null | grep -q 'one system slot' && break; sleep 1; done
      paio logs rauc`);
    expect(out).toMatch(/updates are not available here: this device has one system slot/);
    expect(out).toContain("rc=1");
    expect(out).toContain("rauc: this device has one system slot");
  });

  // QEMU 7.2's model of this watchdog resets the machine the moment it is armed (it has no
  // countdown), so the runner passes paio.watchdog=off; feeding it is tested on x86 (i6300esb).
  test("the SoC's watchdog (bcm2835-wdt) is there; under QEMU the supervisor is told to leave it alone", async () => {
    const out = await run(guest!, `
      ls /dev/watchdog*
      basename "$(readlink -f /sys/class/watchdog/watchdog0/device/driver)"`);
    expect(out).toContain("/dev/watchdog0");
    expect(out).toMatch(/^bcm2835-wdt$/m);
    expect(guest!.console.lines().some((l) => /watchdog: not used \(paio\.watchdog=off/.test(l))).toBe(true);
  });
});

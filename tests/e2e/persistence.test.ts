// The data partition keeps what is written to it across a poweroff and a
// reboot, and PID 1 leaves it clean: checked from the host with e2fsck.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootGuest, IMAGE, partition, requireBuiltImage, sh } from "../helpers/guest.ts";

/** e2fsck -fn on the data partition of a disk image; returns its exit code and output. */
function hostFsck(image: string): { code: number; output: string } {
  const { offset, size } = partition(image, "paio-data");
  const part = `${image}.data`;
  Bun.spawnSync(["dd", `if=${image}`, `of=${part}`, "bs=1M", `skip=${offset}`, `count=${size}`, "iflag=skip_bytes,count_bytes", "conv=sparse", "status=none"]);
  const r = Bun.spawnSync(["e2fsck", "-fn", part], { stdout: "pipe", stderr: "pipe" });
  const features = Bun.spawnSync(["dumpe2fs", "-h", part], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  rmSync(part, { force: true });
  return { code: r.exitCode ?? -1, output: r.stdout.toString() + r.stderr.toString() + features };
}

describe("persistent data partition", () => {
  let dir: string;
  let disk: string;
  beforeAll(() => {
    requireBuiltImage();
    dir = mkdtempSync(join(tmpdir(), "paio-persist-"));
    disk = join(dir, "disk.img");
    Bun.spawnSync(["cp", "--sparse=always", IMAGE, disk]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a file survives poweroff; poweroff is clean (QEMU exit 0, no panic, file system clean)", async () => {
    const g1 = await bootGuest({ disk, snapshot: false });
    await sh(g1, "echo kept-across-boots > /var/lib/paio/marker; sync");
    expect(await g1.shutdown("POWEROFF")).toBe(0);
    const lines = g1.console.lines();
    expect(lines.some((l) => l.includes("paio-init: shutting down (poweroff)"))).toBe(true);
    expect(lines.some((l) => l.includes("data file system unmounted cleanly"))).toBe(true);
    expect(lines.some((l) => /Kernel panic/.test(l))).toBe(false);
    const fsck = hostFsck(disk);
    expect(fsck.code, fsck.output).toBe(0);
    expect(fsck.output).toMatch(/Filesystem state:\s+clean/);
    expect(fsck.output).not.toMatch(/needs_recovery/);

    const g2 = await bootGuest({ disk, snapshot: false });
    const out = await sh(g2, "cat /var/lib/paio/marker; cat /run/paio/data-status");
    expect(out).toContain("kept-across-boots");
    expect(out).toMatch(/state=mounted/);
    expect(out).toMatch(/fsck=0/);
    // Reboot (SIGTERM to PID 1); QEMU runs with -no-reboot, so it exits when the guest resets.
    await sh(g2, "echo second-boot >> /var/lib/paio/marker");
    expect(await g2.shutdown("REBOOT")).toBe(0);
    expect(g2.console.lines().some((l) => l.includes("paio-init: shutting down (reboot)"))).toBe(true);
    const fsck2 = hostFsck(disk);
    expect(fsck2.code, fsck2.output).toBe(0);

    const g3 = await bootGuest({ disk, snapshot: false });
    expect(await sh(g3, "cat /var/lib/paio/marker")).toBe("kept-across-boots\nsecond-boot\n");
    expect(await g3.shutdown()).toBe(0);
  }, 900_000);
});

// `bin/paio qemu exec --put` and `--keep-disk` as a user runs them: a large
// file copied into the guest before the script, and a disk that keeps what
// one run wrote for the next.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO, requireBuiltImage } from "../helpers/guest.ts";

/** The data partition: the root file system is read-only. */
const DATA = "/var/lib/paio";

async function paio(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([join(REPO, "bin/paio"), "qemu", ...args], { stdout: "pipe", stderr: "pipe" });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, stdout, stderr };
}

describe("paio qemu exec --put and --keep-disk", () => {
  let dir = "";
  const file = (name: string) => join(dir, name);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "paio-qemu-put-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("--put copies a 50 MB random file in before the script runs: same SHA-256, same mode", async () => {
    requireBuiltImage();
    // Written piece by piece, as the runner reads it.
    const big = file("big.bin");
    const hash = createHash("sha256");
    const fd = openSync(big, "w");
    for (let i = 0; i < 50; i++) {
      const piece = randomBytes(1024 * 1024);
      hash.update(piece);
      writeSync(fd, piece);
    }
    closeSync(fd);
    chmodSync(big, 0o640);
    const sum = hash.digest("hex");
    const tool = file("tool.sh");
    await Bun.write(tool, "#!/bin/sh\necho tool ran\n");
    chmodSync(tool, 0o755);
    const script = file("check.sh");
    await Bun.write(
      script,
      [
        `sha256sum ${DATA}/put-test/in/big.bin`,
        `stat -c '%a %s' ${DATA}/put-test/in/big.bin /tmp/tools/tool.sh`,
        "/tmp/tools/tool.sh",
        // No temporary file is left beside it.
        `ls -a ${DATA}/put-test/in`,
      ].join("\n") + "\n",
    );
    const r = await paio(["exec", "--snapshot", "--put", `${big}:${DATA}/put-test/in/`, "--put", `${tool}:/tmp/tools/tool.sh`, script]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${sum}  ${DATA}/put-test/in/big.bin`);
    expect(r.stdout).toContain("640 52428800\n755 24\n");
    expect(r.stdout).toContain("tool ran");
    expect(r.stdout).not.toContain(".paio-put.");
    // A big file shows its progress, then the check.
    expect(r.stderr).toMatch(/--put .*big\.bin -> .*: \d+\.\d of 50\.0 MiB \(\d+%\)/);
    expect(r.stderr).toMatch(/--put .*big\.bin -> .*: 50\.0 MiB in [\d.]+ s, SHA-256 checked in the guest/);
  }, 900_000);

  test("--put is checked before a guest boots: relative guest path, missing host file", async () => {
    const script = file("noop.sh");
    await Bun.write(script, "true\n");
    const relative = await paio(["exec", "--snapshot", "--put", `${script}:tmp/noop.sh`, script]);
    expect(relative.code).toBe(2);
    expect(relative.stderr).toContain("the guest path must be absolute");
    const missing = await paio(["exec", "--snapshot", "--put", `${file("nope.bin")}:/tmp/nope.bin`, script]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`${file("nope.bin")}: no such file`);
  });

  test("--put into the read-only root fails the run (125), naming the file and the reason", async () => {
    requireBuiltImage();
    const script = file("never.sh");
    await Bun.write(script, "echo should-not-run\n");
    const r = await paio(["exec", "--snapshot", "--put", `${script}:/etc/paio-never/never.sh`, script]);
    expect(r.code).toBe(125);
    expect(r.stdout).not.toContain("should-not-run");
    expect(r.stderr).toContain(`--put ${script}:/etc/paio-never/never.sh: cannot create the directory /etc/paio-never: Read-only file system`);
  }, 900_000);

  test("--keep-disk: a marker written in one run is read in the next; a disk for another board is refused", async () => {
    requireBuiltImage();
    const disk = file("kept/disk.img");
    const marker = `marker-${Date.now()}`;
    const write = file("write.sh");
    await Bun.write(write, `echo ${marker} > ${DATA}/keep-disk-marker\n`);
    const first = await paio(["exec", "--keep-disk", disk, write]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`--keep-disk ${disk}: a new disk, a sparse copy of`);
    // Sparse: far less on disk than its size.
    const st = statSync(disk);
    expect(st.blocks * 512).toBeLessThan(st.size / 2);

    const read = file("read.sh");
    await Bun.write(read, `cat ${DATA}/keep-disk-marker\n`);
    const second = await paio(["exec", "--keep-disk", disk, read]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout.trim()).toBe(marker);
    expect(second.stderr).not.toContain("a new disk");

    const other = await paio(["exec", "--keep-disk", disk, "--board", "rpi3", read]);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain(`--keep-disk ${disk} is an x86_64 UEFI image; boot it with --arch x86_64`);
    expect(existsSync(`${disk}.part-${process.pid}`)).toBe(false);
  }, 900_000);
});

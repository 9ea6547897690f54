// The offline image assembler: clear errors for missing inputs, a manifest
// that names every file's origin, byte-identical rootfs from identical inputs,
// and no work when nothing changed.
import { describe, expect, test } from "vitest";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IMAGE, OUT, REPO, requireBuiltImage } from "../helpers/guest.ts";

const BUN = join(REPO, "node_modules/.bin/bun");

/**
 * The kernel `make image` used for out/ (the patched one, unless it was built
 * with PAIO_STOCK_KERNEL=1), so that a second build here has the same inputs.
 */
function madeWith(): Record<string, string> {
  const patched = join(REPO, "out", "kernel", "vmlinuz");
  const used = join(REPO, "out", "vmlinuz");
  if (existsSync(patched) && existsSync(used) && readFileSync(patched).equals(readFileSync(used))) return { PAIO_KERNEL: join(REPO, "out", "kernel") };
  return {};
}

function assemble(env: Record<string, string>): { code: number; out: string } {
  const r = Bun.spawnSync([BUN, join(REPO, "image/build.ts")], { env: { ...process.env, ...madeWith(), ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("image assembler", () => {
  test("a missing kernel directory is a clear error", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-out-"));
    const r = assemble({ PAIO_OUT: dir, PAIO_KERNEL: "/nonexistent/kernel" });
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).toBe(1);
    expect(r.out).toContain("image: error: PAIO_KERNEL=/nonexistent/kernel: no such directory");
    expect(r.out).toContain("make kernel");
  });

  test("a kernel directory without vmlinuz is a clear error", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-out-"));
    const r = assemble({ PAIO_OUT: dir, PAIO_KERNEL: dir });
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/PAIO_KERNEL=.* has no vmlinuz/);
  });

  test("a missing Bun binary is a clear error", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-out-"));
    const r = assemble({ PAIO_OUT: dir, PAIO_BUN: "/nonexistent/bun" });
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).toBe(1);
    expect(r.out).toContain("image: error: PAIO_BUN=/nonexistent/bun: no such file");
  });

  test("the manifest lists every file with its origin and checksum", () => {
    requireBuiltImage();
    const rows = readFileSync(join(OUT, "manifest.tsv"), "utf8").trim().split("\n").slice(1).map((l) => l.split("\t"));
    const byPath = new Map(rows.map((r) => [r[0], r]));
    expect(rows.every((r) => r.length === 7 && r[6]!.length > 0)).toBe(true);
    expect(byPath.get("/usr/sbin/init")?.[6]).toBe("paio:init/pid1.c");
    expect(byPath.get("/usr/bin/bun")?.[6]).toMatch(/^npm:@oven\/bun-linux-x64-baseline@\d/);
    expect(byPath.get("/usr/bin/bun")?.[4]).toBe(sha256(join(REPO, "node_modules/@oven/bun-linux-x64-baseline/bin/bun")));
    expect(byPath.get("/usr/lib/x86_64-linux-gnu/libc.so.6")?.[6]).toMatch(/^debian:libc6=/);
    expect(byPath.get("/usr/lib/x86_64-linux-gnu/libonnxruntime.so.1")?.[6]).toMatch(/^npm:onnxruntime-node@/);
    expect(byPath.get("/usr/bin/busybox")?.[6]).toMatch(/^debian:busybox-static=/);
    expect(byPath.get("/etc/paio/units/demo.toml")?.[6]).toBe("paio:image/overlay/etc/paio/units/demo.toml");
  });

  test("a second clean build gives a byte-identical rootfs.squashfs; a rebuild with unchanged inputs does nothing", () => {
    requireBuiltImage();
    const dir = mkdtempSync(join(tmpdir(), "paio-out-"));
    try {
      const first = assemble({ PAIO_OUT: dir });
      expect(first.code, first.out).toBe(0);
      expect(sha256(join(dir, "rootfs.squashfs"))).toBe(sha256(join(OUT, "rootfs.squashfs")));
      const mtime = statSync(join(dir, "paio-x86_64.img")).mtimeMs;
      const again = assemble({ PAIO_OUT: dir });
      expect(again.code, again.out).toBe(0);
      expect(again.out).toContain("up to date");
      expect(statSync(join(dir, "paio-x86_64.img")).mtimeMs).toBe(mtime);
      expect(existsSync(IMAGE)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

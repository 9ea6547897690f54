// The offline image assembler: clear errors for missing inputs, a manifest
// that names every file's origin, byte-identical rootfs from identical inputs,
// and no work when nothing changed; no private key in the image, and the
// model key trusted from the read-only root.
import { describe, expect, test } from "vitest";
import { createHash, generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IMAGE, OUT, REPO, requireBuiltImage } from "../helpers/guest.ts";
import { privateKeysIn } from "../../image/stage.ts";
import { CACHE } from "../../image/config.ts";
import { KEY_DIR } from "../../image/keys.ts";

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

  test("the scan for private keys finds a PEM private key in a tree, and not a public key, a certificate or a binary's strings", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-keys-"));
    try {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
      mkdirSync(join(dir, "usr/share/paio"), { recursive: true });
      writeFileSync(join(dir, "usr/share/paio/signing.pub"), publicKey.export({ type: "spki", format: "pem" }));
      writeFileSync(join(dir, "usr/share/paio/strings.bin"), "\x7fELF...-----BEGIN PRIVATE KEY-----\0-----END PRIVATE KEY-----\0");
      expect(privateKeysIn(dir)).toEqual([]);
      mkdirSync(join(dir, "etc/paio"), { recursive: true });
      writeFileSync(join(dir, "etc/paio/leaked.pem"), privateKey.export({ type: "pkcs8", format: "pem" }));
      writeFileSync(join(dir, "etc/paio/old.pem"), privateKey.export({ type: "sec1", format: "pem" }));
      expect(privateKeysIn(dir)).toEqual(["/etc/paio/leaked.pem (PRIVATE KEY)", "/etc/paio/old.pem (EC PRIVATE KEY)"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the image holds no private key: not the build's model and update signing keys, not any other; the model key is trusted from the read-only root", () => {
    requireBuiltImage();
    const dir = mkdtempSync(join(tmpdir(), "paio-rootfs-"));
    try {
      const r = Bun.spawnSync(["unsquashfs", "-no-progress", "-d", join(dir, "root"), join(OUT, "rootfs.squashfs")], { stdout: "pipe", stderr: "pipe" });
      expect(r.exitCode, r.stderr.toString()).toBe(0);
      const root = join(dir, "root");
      expect(privateKeysIn(root)).toEqual([]);
      // The build's own keys, byte for byte (a body line of each), in no file at all, binaries included.
      const keyFiles = [process.env.PAIO_MODEL_KEY ?? join(CACHE, "keys", "model-signing.pem"), ...readdirSync(KEY_DIR).map((f) => join(KEY_DIR, f))]
        .filter((f) => existsSync(f) && readFileSync(f, "utf8").includes("PRIVATE KEY"));
      expect(keyFiles.length).toBeGreaterThanOrEqual(2); // the model key and the update signing key at least
      const bodies = keyFiles.map((f) => Buffer.from(readFileSync(f, "utf8").split("\n")[1]!));
      const walk = (rel: string): string[] => readdirSync(join(root, rel), { withFileTypes: true }).flatMap((e) => {
        const p = `${rel}/${e.name}`;
        if (e.isDirectory()) return walk(p);
        if (!e.isFile()) return [];
        const bytes = readFileSync(join(root, p));
        return bodies.some((b) => bytes.includes(b)) ? [p] : [];
      });
      expect(walk("")).toEqual([]);
      // The public key that verifies the image's models is on the read-only root, under /usr.
      expect(readFileSync(join(root, "usr/share/paio/model-keys/paio.pub"), "utf8")).toBe(readFileSync(join(REPO, "out/models/model-signing.pub"), "utf8"));
      expect(existsSync(join(root, "etc/paio/model-keys"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

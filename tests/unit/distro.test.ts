// The Buildroot external tree (distro/): its files hang together, its kernel
// fragment check catches a dropped option, its disk layout is the
// assembler's, and, with a Buildroot tree at BUILDROOT_DIR, the defconfig
// loads and every package it would download has an offline source.

import { describe, expect, test } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compareManifests, rootManifest } from "../../distro/offline/manifest.ts";
import { BR_SOURCES, overrideFile } from "../../distro/offline/sources.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const DISTRO = join(REPO, "distro");
const DEFCONFIG = join(DISTRO, "configs/paio_qemu_x86_64_defconfig");

function sh(cmd: string[], cwd?: string): { code: number; out: string } {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
}

describe("the external tree's files", () => {
  test("external.desc names the tree PAIO and every Config.in it sources exists", () => {
    expect(readFileSync(join(DISTRO, "external.desc"), "utf8")).toMatch(/^name: PAIO$/m);
    const sourced = [...readFileSync(join(DISTRO, "Config.in"), "utf8").matchAll(/source "\$BR2_EXTERNAL_PAIO_PATH\/(.+)"/g)].map((m) => m[1]!);
    expect(sourced.length).toBeGreaterThanOrEqual(2);
    for (const f of sourced) expect(existsSync(join(DISTRO, f)), f).toBe(true);
  });

  test("every path the defconfig names exists, and it reuses the assembler's overlay, the kernel patches and fragment", () => {
    const text = readFileSync(DEFCONFIG, "utf8");
    const paths = [...text.matchAll(/\$\(BR2_EXTERNAL_PAIO_PATH\)([^"\s]+)/g)].map((m) => join(DISTRO, m[1]!));
    expect(paths.length).toBeGreaterThan(5);
    for (const p of paths) expect(existsSync(p), p).toBe(true);
    expect(text).toContain('BR2_ROOTFS_OVERLAY="$(BR2_EXTERNAL_PAIO_PATH)/../image/overlay"');
    expect(text).toContain("$(BR2_EXTERNAL_PAIO_PATH)/../kernel-patches/paio.config");
    expect(text).toMatch(/^BR2_INIT_NONE=y$/m);
    // The patch directory for linux is kernel-patches/ itself (one copy).
    expect(readFileSync(join(DISTRO, "board/paio/patches/linux/paio.config"), "utf8")).toBe(readFileSync(join(REPO, "kernel-patches/paio.config"), "utf8"));
  });

  test("the built-in command line of the EFI-stub kernel matches the assembler's", async () => {
    const { KERNEL_CMDLINE } = await import("../../image/config.ts");
    const cmdline = /^CONFIG_CMDLINE="(.*)"$/m.exec(readFileSync(join(DISTRO, "board/paio/qemu-x86_64/linux-efistub.config"), "utf8"))![1]!.split(" ");
    for (const arg of KERNEL_CMDLINE) expect(cmdline).toContain(arg);
  });
});

describe("check-kernel-config.sh", () => {
  const script = join(DISTRO, "board/paio/check-kernel-config.sh");

  test("passes when every option landed and names each one that did not", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-kcheck-"));
    try {
      writeFileSync(join(dir, "frag"), 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n');
      writeFileSync(join(dir, "good"), 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\nCONFIG_D=y\n');
      writeFileSync(join(dir, "bad"), 'CONFIG_B=y\nCONFIG_C="x"\n');
      const ok = sh([script, join(dir, "good"), join(dir, "frag")]);
      expect(ok.code, ok.out).toBe(0);
      const bad = sh([script, join(dir, "bad"), join(dir, "frag")]);
      expect(bad.code).toBe(1);
      expect(bad.out).toContain("CONFIG_A=y did not land (final: not set)");
      expect(bad.out).toContain("# CONFIG_B is not set did not land");
      expect(bad.out).toContain('CONFIG_C="x y" did not land (final: "x")');
      expect(bad.out).toContain("3 kernel option(s) missing");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the disk layout", () => {
  // Both genimage configurations include image/genimage-disk.cfg; built from
  // dummy inputs, their partition tables must be identical.
  test("the Buildroot image and the assembler's image get the same GPT", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-layout-"));
    try {
      const dump = (name: string, config: string, includes: string, files: string[]) => {
        const input = join(dir, name, "in");
        for (const f of files) {
          mkdirSync(join(input, f), { recursive: true });
          writeFileSync(join(input, f, "x"), "x");
        }
        writeFileSync(join(input, "rootfs.squashfs"), new Uint8Array(1 << 20));
        mkdirSync(join(dir, name, "root"), { recursive: true });
        const g = sh(["genimage", "--config", config, "--includepath", includes, "--inputpath", input, "--outputpath", join(dir, name, "out"), "--tmppath", join(dir, name, "tmp"), "--rootpath", join(dir, name, "root")], dir);
        expect(g.code, g.out).toBe(0);
        const d = sh(["sfdisk", "--dump", join(dir, name, "out/paio-x86_64.img")]);
        expect(d.code, d.out).toBe(0);
        // The device name differs; the table must not.
        return d.out.split("\n").filter((l) => /^(label|label-id|first-lba|last-lba|sector-size)|: start=/.test(l)).map((l) => l.replace(/^\S+paio-x86_64\.img(\d)/, "part$1"));
      };
      const assembler = dump("a", "genimage-x86_64.cfg", join(REPO, "image"), ["EFI", "loader", "paio"]);
      const buildroot = dump("b", "genimage.cfg", `${join(DISTRO, "board/paio/qemu-x86_64")}:${join(REPO, "image")}`, ["esp/EFI"]);
      expect(assembler.filter((l) => l.includes("start=")).length).toBe(3);
      expect(buildroot).toEqual(assembler);
      expect(buildroot.join("\n")).toContain('name="paio-data"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("manifests", () => {
  test("a Buildroot root is compared with the assembler's manifest: PAIO's files must match", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-manifest-"));
    try {
      mkdirSync(join(dir, "usr/lib/paio"), { recursive: true });
      mkdirSync(join(dir, "usr/sbin"), { recursive: true });
      writeFileSync(join(dir, "usr/lib/paio/agent.js"), "agent");
      writeFileSync(join(dir, "usr/lib/paio/paio.js"), "changed");
      writeFileSync(join(dir, "usr/lib/libonnxruntime.so.1"), "ort");
      writeFileSync(join(dir, "usr/sbin/init"), "other compiler");
      writeFileSync(join(dir, "usr/lib/libc.so.6"), "libc");
      const b = rootManifest(dir);
      const sha = (s: string) => new Bun.CryptoHasher("sha256").update(s).digest("hex");
      const row = (p: string, content: string, origin: string) => [p, "file", "0644", String(content.length), sha(content), "-", origin].join("\t");
      const a = [
        "# path\ttype\tmode\tsize\tsha256\tlink\torigin",
        row("/usr/lib/paio/agent.js", "agent", "paio:agents/agent"),
        row("/usr/lib/paio/paio.js", "paio", "paio:init/cli"),
        row("/usr/lib/paio/console.js", "console", "paio:agents/console"),
        row("/usr/lib/x86_64-linux-gnu/libonnxruntime.so.1", "ort", "npm:onnxruntime-node@1"),
        row("/usr/sbin/init", "gcc", "paio:init/pid1.c"),
        row("/usr/bin/busybox", "bb", "debian:busybox-static"),
      ].join("\n");
      const c = compareManifests(a, b);
      expect(c.paioSame).toBe(2); // agent.js, and the library in its other directory
      expect(c.paioDiffer.sort()).toEqual(["/usr/lib/paio/console.js: missing", "/usr/lib/paio/paio.js: differs"]);
      expect(c.report).toContain("/usr/lib/x86_64-linux-gnu/libonnxruntime.so.1 -> /usr/lib/libonnxruntime.so.1");
      expect(c.report).toContain("/usr/bin/busybox  (debian:busybox-static)");
      expect(c.report).toContain("/usr/lib/libc.so.6");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// With a Buildroot tree: the defconfig loads, show-info resolves, and the
// offline build has a source for every package Buildroot would download.
const BR = process.env.BUILDROOT_DIR;
if (!BR) console.log("distro: BUILDROOT_DIR is not set: skipping the defconfig and show-info checks (they need a Buildroot 2025.02.x tree)");
describe.skipIf(!BR)("with BUILDROOT_DIR", () => {
  test("paio_qemu_x86_64_defconfig loads, show-info resolves, and every download has an offline source", () => {
    const out = mkdtempSync(join(tmpdir(), "paio-br-"));
    try {
      const cfg = sh(["make", "-s", "-C", BR!, `O=${out}`, `BR2_EXTERNAL=${DISTRO}`, "paio_qemu_x86_64_defconfig"]);
      expect(cfg.code, cfg.out).toBe(0);
      const dot = readFileSync(join(out, ".config"), "utf8");
      for (const line of readFileSync(DEFCONFIG, "utf8").split("\n").filter((l) => /^BR2_\w+=/.test(l))) {
        // Every setting of the defconfig survives kconfig (none dropped for a missing dependency).
        expect(dot.split("\n"), line).toContain(line);
      }
      const info = sh(["make", "-s", "-C", BR!, `O=${out}`, "show-info"]);
      expect(info.code, info.out).toBe(0);
      const pkgs = JSON.parse(info.out.slice(info.out.indexOf("{"))) as Record<string, { type: string; downloads?: { source: string }[] }>;
      expect(Object.keys(pkgs)).toEqual(expect.arrayContaining(["paio-pid1", "paio-app", "linux", "busybox", "e2fsprogs"]));
      // Offline: everything that downloads is a Debian source, the toolchain, the kernel, or ours.
      const handled = new Set([...Object.keys(BR_SOURCES), "linux", "paio-pid1", "paio-app", "genimage", "dosfstools", "mtools", "libconfuse", "lzip"]);
      const uncovered = Object.entries(pkgs)
        .filter(([name, p]) => (p.downloads ?? []).length > 0 && !name.startsWith("toolchain-external"))
        .map(([name]) => name.replace(/^host-/, ""))
        .filter((name) => !handled.has(name));
      expect(uncovered).toEqual([]);
      expect(overrideFile(new Map([["util-linux", "/src/util-linux"]]))).toContain("UTIL_LINUX_OVERRIDE_SRCDIR = /src/util-linux");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});

// The Buildroot external tree (distro/): its files hang together for each
// of the three defconfigs (x86_64 PCs, QEMU's arm64 virt machine, the
// Raspberry Pi 4), its kernel fragment check catches a dropped option, its
// disk layouts are the assembler's, the offline build picks the newest
// Debian source it can really fetch, and, with a Buildroot tree at
// BUILDROOT_DIR, every defconfig loads and every package it would download
// has an offline source.

import { describe, expect, test } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseDeb822, parseOneLine, systemSources } from "../../image/apt.ts";
import { ARM64_CMDLINE, KERNEL_CMDLINE, RPI_CMDLINE, RPI_DISK_SIGNATURE } from "../../image/config.ts";
import { detectImage } from "../../qemu/image-info.ts";
import { aptList, archiveCandidates, chooseSource, compareVersions, describeChoice, dscTarball, fetchFailure, releaseCodename, sourceCandidates } from "../../distro/offline/apt.ts";
import { BOARDS, mergeDefconfig, pickBoard, TOOLCHAINS, toolchainSettings } from "../../distro/offline/boards.ts";
import { compareManifests, rootManifest } from "../../distro/offline/manifest.ts";
import { BR_BINARY_DEBS, BR_SOURCES, OFFLINE_MAKE_VARS, overrideFile } from "../../distro/offline/sources.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const DISTRO = join(REPO, "distro");
const DEFCONFIGS = {
  x86_64: join(DISTRO, "configs/paio_qemu_x86_64_defconfig"),
  virt: join(DISTRO, "configs/paio_aarch64_virt_defconfig"),
  rpi4: join(DISTRO, "configs/paio_raspberrypi4_64_defconfig"),
};
const DEFCONFIG = DEFCONFIGS.x86_64;
const RPI4 = join(DISTRO, "board/paio/raspberrypi4-64");

/** The value of a defconfig setting, without its quotes. */
function setting(file: string, name: string): string | undefined {
  return new RegExp(`^${name}="?(.*?)"?$`, "m").exec(readFileSync(file, "utf8"))?.[1];
}
/** A defconfig path setting with $(BR2_EXTERNAL_PAIO_PATH) made a path in this tree. */
function paths(value: string | undefined): string[] {
  return (value ?? "").split(/\s+/).filter(Boolean).map((p) => p.replace("$(BR2_EXTERNAL_PAIO_PATH)", DISTRO));
}

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

  for (const [board, file] of Object.entries(DEFCONFIGS)) {
    test(`every path ${board}'s defconfig names exists, and it reuses the assembler's overlay and the kernel patches`, () => {
      const text = readFileSync(file, "utf8");
      const named = [...text.matchAll(/\$\(BR2_EXTERNAL_PAIO_PATH\)([^"\s]+)/g)].map((m) => join(DISTRO, m[1]!));
      expect(named.length).toBeGreaterThan(6);
      for (const p of named) expect(existsSync(p), p).toBe(true);
      expect(text).toContain('BR2_ROOTFS_OVERLAY="$(BR2_EXTERNAL_PAIO_PATH)/../image/overlay"');
      expect(text).toContain('BR2_GLOBAL_PATCH_DIR="$(BR2_EXTERNAL_PAIO_PATH)/board/paio/patches"');
      expect(text).toMatch(/^BR2_INIT_NONE=y$/m);
      for (const pkg of ["PAIO_PID1", "PAIO_APP", "E2FSPROGS"]) expect(text).toMatch(new RegExp(`^BR2_PACKAGE_${pkg}=y$`, "m"));
      expect(text).toMatch(/^BR2_TARGET_ROOTFS_SQUASHFS=y$/m);
      // One kernel for every board: the same Linux 6.1 release (the offline build takes Debian's linux-source-6.1).
      expect(setting(file, "BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE")).toBe(setting(DEFCONFIG, "BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE"));
      expect(setting(file, "BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE")).toMatch(/^6\.1\.\d+$/);
    });
  }

  test("the kernel fragments: paio.config, then the architecture's own, then the board's", () => {
    const frag = (f: string) => paths(setting(f, "BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES")).map((p) => p.slice(DISTRO.length + 1));
    expect(frag(DEFCONFIGS.x86_64)).toEqual(["../kernel-patches/paio.config", "../kernel-patches/x86_64.config", "board/paio/qemu-x86_64/linux-efistub.config"]);
    expect(frag(DEFCONFIGS.virt)).toEqual(["../kernel-patches/paio.config", "../kernel-patches/arm64.config", "board/paio/aarch64-virt/linux-efistub.config"]);
    expect(frag(DEFCONFIGS.rpi4)).toEqual(["../kernel-patches/paio.config", "../kernel-patches/arm64.config"]);
    // Both arm64 boards start from the arm64 tinyconfig, the PC from x86's.
    expect(setting(DEFCONFIGS.virt, "BR2_LINUX_KERNEL_CUSTOM_CONFIG_FILE")).toBe("$(BR2_EXTERNAL_PAIO_PATH)/board/paio/arm64/linux.config");
    expect(setting(DEFCONFIGS.rpi4, "BR2_LINUX_KERNEL_CUSTOM_CONFIG_FILE")).toBe("$(BR2_EXTERNAL_PAIO_PATH)/board/paio/arm64/linux.config");
    expect(readFileSync(join(DISTRO, "board/paio/arm64/linux.config"), "utf8")).toContain("CONFIG_ARM64_");
    expect(readFileSync(join(DISTRO, "board/paio/qemu-x86_64/linux.config"), "utf8")).toContain("CONFIG_X86_");
    // The patch directory for linux is kernel-patches/ itself (one copy).
    for (const f of ["paio.config", "x86_64.config", "arm64.config"]) {
      expect(readFileSync(join(DISTRO, "board/paio/patches/linux", f), "utf8")).toBe(readFileSync(join(REPO, "kernel-patches", f), "utf8"));
    }
  });

  test("the arm64 defconfigs are for aarch64 with the Image, the x86_64 one for x86_64", () => {
    for (const f of [DEFCONFIGS.virt, DEFCONFIGS.rpi4]) {
      const text = readFileSync(f, "utf8");
      expect(text).toMatch(/^BR2_aarch64=y$/m);
      expect(text).toMatch(/^BR2_cortex_a72=y$/m);
      expect(text).toMatch(/^BR2_LINUX_KERNEL_IMAGE=y$/m);
      expect(text).toMatch(/^BR2_TOOLCHAIN_EXTERNAL_BOOTLIN_AARCH64_GLIBC_STABLE=y$/m);
    }
    expect(readFileSync(DEFCONFIGS.x86_64, "utf8")).toMatch(/^BR2_x86_64=y$/m);
    expect(setting(DEFCONFIGS.rpi4, "BR2_LINUX_KERNEL_INTREE_DTS_NAME")).toBe("broadcom/bcm2711-rpi-4-b");
    expect(setting(DEFCONFIGS.virt, "BR2_LINUX_KERNEL_INTREE_DTS_NAME")).toBeUndefined();
  });

  test("the Raspberry Pi 4's config.txt starts it in 64-bit mode with the kernel and device tree the defconfig builds", () => {
    expect(setting(DEFCONFIGS.rpi4, "BR2_PACKAGE_RPI_FIRMWARE_CONFIG_FILE")).toBe("$(BR2_EXTERNAL_PAIO_PATH)/board/paio/raspberrypi4-64/config.txt");
    expect(setting(DEFCONFIGS.rpi4, "BR2_PACKAGE_RPI_FIRMWARE_CMDLINE_FILE")).toBe("$(BR2_EXTERNAL_PAIO_PATH)/board/paio/raspberrypi4-64/cmdline.txt");
    expect(readFileSync(DEFCONFIGS.rpi4, "utf8")).toMatch(/^BR2_PACKAGE_RPI_FIRMWARE_VARIANT_PI4=y$/m);
    const config = new Map(readFileSync(join(RPI4, "config.txt"), "utf8").split("\n").filter((l) => /^\w+=/.test(l)).map((l) => l.split("=") as [string, string]));
    expect(config.get("arm_64bit")).toBe("1");
    expect(config.get("enable_uart")).toBe("1");
    expect(config.get("kernel")).toBe("Image");
    expect(config.get("device_tree")).toBe(`${setting(DEFCONFIGS.rpi4, "BR2_LINUX_KERNEL_INTREE_DTS_NAME")!.split("/").pop()}.dtb`);
    // The boot partition holds what config.txt names.
    const genimage = readFileSync(join(RPI4, "genimage.cfg"), "utf8");
    for (const f of ["rpi-firmware/start4.elf", "rpi-firmware/fixup4.dat", "rpi-firmware/config.txt", "rpi-firmware/cmdline.txt", config.get("device_tree")!, config.get("kernel")!]) {
      expect(genimage).toContain(`"${f}"`);
    }
  });

  test("the kernel command lines match the assembler's for the same board", () => {
    const builtIn = (f: string) => /^CONFIG_CMDLINE="(.*)"$/m.exec(readFileSync(join(DISTRO, f), "utf8"))![1]!.split(" ");
    const pc = builtIn("board/paio/qemu-x86_64/linux-efistub.config");
    for (const arg of KERNEL_CMDLINE) expect(pc).toContain(arg);
    const virt = builtIn("board/paio/aarch64-virt/linux-efistub.config");
    for (const arg of ARM64_CMDLINE) expect(virt).toContain(arg);
    // No initramfs: the kernel mounts the root itself.
    for (const args of [pc, virt]) expect(args).toEqual(expect.arrayContaining(["rootfstype=squashfs", "rootwait"]));
    // The Pi's command line is cmdline.txt, one line; the root and the data
    // partition by the MBR disk signature genimage writes.
    const text = readFileSync(join(RPI4, "cmdline.txt"), "utf8");
    expect(text.trim().split("\n")).toHaveLength(1);
    const pi = text.trim().split(" ");
    for (const arg of RPI_CMDLINE) expect(pi).toContain(arg);
    expect(pi).toEqual(expect.arrayContaining(["rootfstype=squashfs", "rootwait"]));
    expect(readFileSync(join(RPI4, "genimage.cfg"), "utf8")).toMatch(new RegExp(`^\\s*disk-signature = 0x${RPI_DISK_SIGNATURE}$`, "m"));
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

  test("checks every fragment it is given (common, architecture, board) and names the one an option came from", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-kcheck-"));
    try {
      writeFileSync(join(dir, "paio.config"), "CONFIG_A=y\n");
      writeFileSync(join(dir, "arm64.config"), "CONFIG_B=y\n");
      writeFileSync(join(dir, "board.config"), 'CONFIG_CMDLINE="x"\n');
      writeFileSync(join(dir, "final"), 'CONFIG_A=y\nCONFIG_CMDLINE="x"\n');
      const r = sh([script, join(dir, "final"), join(dir, "paio.config"), join(dir, "arm64.config"), join(dir, "board.config")]);
      expect(r.code).toBe(1);
      expect(r.out).toContain(`kernel fragment ${join(dir, "arm64.config")}: CONFIG_B=y did not land`);
      expect(r.out).toContain("1 kernel option(s) missing");
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
      expect(assembler.filter((l) => l.includes("start=")).length).toBe(4);
      expect(buildroot).toEqual(assembler);
      for (const name of ["paio-root-a", "paio-root-b", "paio-data"]) expect(buildroot.join("\n")).toContain(`name="${name}"`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the arm64 disk layouts", () => {
  /** genimage with a board's configuration on dummy inputs; returns the image and the work directory. */
  function build(dir: string, board: string, image: string, files: string[], includes = ""): string {
    const input = join(dir, "in");
    for (const f of files) {
      mkdirSync(join(input, f, ".."), { recursive: true });
      writeFileSync(join(input, f), f);
    }
    writeFileSync(join(input, "rootfs.squashfs"), new Uint8Array(1 << 20));
    mkdirSync(join(dir, "root"), { recursive: true });
    // With an include path genimage looks the configuration up in it too (as the post-image scripts run it).
    const config = includes ? ["--config", "genimage.cfg", "--includepath", `${join(DISTRO, "board/paio", board)}:${includes}`] : ["--config", join(DISTRO, "board/paio", board, "genimage.cfg")];
    const g = sh(["genimage", ...config, "--inputpath", input, "--outputpath", join(dir, "out"), "--tmppath", join(dir, "tmp"), "--rootpath", join(dir, "root")], dir);
    expect(g.code, g.out).toBe(0);
    return join(dir, "out", image);
  }
  const table = (img: string) => JSON.parse(sh(["sfdisk", "--json", img]).out).partitiontable as { label: string; id: string; partitions: { start: number; size: number; type: string; name?: string; bootable?: boolean }[] };

  test("QEMU virt: the assembler's GPT (partition names, places and sizes), the arm64 root type, the kernel as BOOTAA64.EFI", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-virt-"));
    try {
      const img = build(dir, "aarch64-virt", "paio-arm64.img", ["esp/EFI/BOOT/BOOTAA64.EFI"]);
      const virt = table(img);
      expect(virt.label).toBe("gpt");
      expect(virt.partitions.map((p) => p.name)).toEqual(["paio-esp", "paio-root-a", "paio-root-b", "paio-data"]);
      expect(virt.partitions[2]!.type).toBe("B921B045-1DF0-41C3-AF44-4C6F280D3FAE");
      expect(virt.partitions[1]!.type).toBe("B921B045-1DF0-41C3-AF44-4C6F280D3FAE");
      // The same places and sizes as the x86_64 disk (image/genimage-disk.cfg).
      const pc = build(join(dir, "pc"), "qemu-x86_64", "paio-x86_64.img", ["esp/EFI/BOOT/BOOTX64.EFI"], join(REPO, "image"));
      expect(virt.partitions.map((p) => [p.start, p.size])).toEqual(table(pc).partitions.map((p) => [p.start, p.size]));
      // `paio qemu` recognises it as an arm64 UEFI disk.
      expect(detectImage(img).kinds).toEqual(["arm64-uefi"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("Raspberry Pi 4: an MBR with the fixed disk signature, a bootable FAT partition with the firmware, then root and data", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-rpi4-"));
    try {
      const files = ["rpi-firmware/start4.elf", "rpi-firmware/fixup4.dat", "rpi-firmware/cmdline.txt", "bcm2711-rpi-4-b.dtb", "Image"];
      mkdirSync(join(dir, "in/rpi-firmware"), { recursive: true });
      writeFileSync(join(dir, "in/rpi-firmware/config.txt"), readFileSync(join(RPI4, "config.txt")));
      const img = build(dir, "raspberrypi4-64", "paio-rpi4.img", files);
      const pi = table(img);
      expect(pi.label).toBe("dos");
      expect(pi.id).toBe(`0x${RPI_DISK_SIGNATURE}`);
      expect(pi.partitions.map((p) => p.type)).toEqual(["c", "83", "83"]);
      expect(pi.partitions[0]!.bootable).toBe(true);
      const info = detectImage(img);
      expect(info.kinds).toEqual(["rpi"]);
      for (const f of ["start4.elf", "fixup4.dat", "config.txt", "cmdline.txt", "bcm2711-rpi-4-b.dtb", "Image"]) expect(info.files.map((x) => x.toLowerCase())).toContain(f.toLowerCase());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("post-build.sh", () => {
  const script = join(DISTRO, "board/paio/post-build.sh");
  /** The first 20 bytes of an ELF file for `machine` (62 x86_64, 183 aarch64): all the check reads. */
  const elf = (machine: number) => {
    const b = Buffer.alloc(64);
    b.write("\x7fELF", 0, "latin1");
    b.writeUInt16LE(machine, 18);
    return b;
  };
  function target(dir: string, machine: number, npmArch: string): string {
    const t = join(dir, "target");
    const put = (p: string, data: Buffer | string) => {
      mkdirSync(join(t, p, ".."), { recursive: true });
      writeFileSync(join(t, p), data);
    };
    put("sbin/init", elf(machine));
    put("sbin/mke2fs", "");
    put("sbin/e2fsck", "");
    put("usr/lib/paio/supervisor.js", "");
    put("usr/bin/bun", elf(machine));
    put("usr/lib/libonnxruntime.so.1", elf(machine));
    put(`usr/lib/paio/node_modules/onnxruntime-node/bin/napi-v6/linux/${npmArch}/onnxruntime_binding.node`, elf(machine));
    return t;
  }
  const post = (dir: string, t: string, arch: string) => {
    writeFileSync(join(dir, ".config"), `BR2_${arch}=y\n`);
    const r = Bun.spawnSync([script, t], { env: { ...process.env, BR2_CONFIG: join(dir, ".config"), BUILD_DIR: join(dir, "build") }, stdout: "pipe", stderr: "pipe" });
    return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
  };

  test("passes an aarch64 root with arm64 Bun and onnxruntime, and an x86_64 root with x64 ones", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-post-"));
    try {
      const arm = post(dir, target(join(dir, "a"), 183, "arm64"), "aarch64");
      expect(arm.code, arm.out).toBe(0);
      expect(readFileSync(join(dir, "a/target/etc/paio/release"), "utf8")).toMatch(/^PAIO_VERSION=\S+$/m);
      const pc = post(dir, target(join(dir, "b"), 62, "x64"), "x86_64");
      expect(pc.code, pc.out).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("refuses a root whose prebuilt binaries are for the other architecture, naming the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-post-"));
    try {
      const r = post(dir, target(dir, 62, "arm64"), "aarch64");
      expect(r.code).toBe(1);
      expect(r.out).toContain("/usr/bin/bun is built for ELF machine 62, the target needs 183 (arm64)");
      const missing = post(dir, target(join(dir, "x"), 183, "arm64"), "x86_64");
      expect(missing.code).toBe(1);
      expect(missing.out).toMatch(/\/usr\/bin\/bun is built for ELF machine 183, the target needs 62/);
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

// Real apt output, as `apt-cache madison` and `apt-get source` printed it on
// a Debian 12 machine whose security archive listed a libzstd update whose
// files were not (or no longer) there.
const MADISON_LIBZSTD = `   libzstd | 1.5.4+dfsg2-5 | http://deb.debian.org/debian bookworm/main Sources
   libzstd | 1.5.4+dfsg2-5+deb12u1 | http://deb.debian.org/debian-security bookworm-security/main Sources
`;
const MADISON_LINUX = `     linux |    6.1.4-1 | http://deb.debian.org/debian bookworm/main Sources
     linux |    6.1.8-1 | http://deb.debian.org/debian bookworm/main Sources
     linux |  6.1.170-3 | http://deb.debian.org/debian bookworm/main Sources
     linux |  6.1.176-1 | http://deb.debian.org/debian bookworm/main Sources
     linux |  6.1.164-1 | http://deb.debian.org/debian-security bookworm-security/main Sources
     linux |  6.1.170-1 | http://deb.debian.org/debian-security bookworm-security/main Sources
     linux |  6.1.170-2 | http://deb.debian.org/debian-security bookworm-security/main Sources
     linux |  6.1.170-3 | http://deb.debian.org/debian-security bookworm-security/main Sources
     linux |  6.1.192-1 | http://deb.debian.org/debian-security bookworm-security/main Sources
     linux |  6.1.192-3 | http://deb.debian.org/debian-security bookworm-security/main Sources
`;
const MADISON_OTHERS = `   busybox | 1:1.35.0-4+deb12u1 | http://deb.debian.org/debian bookworm/main Sources
util-linux | 2.38.1-5+deb12u3 | http://deb.debian.org/debian bookworm/main Sources
util-linux | 2.38.1-5+deb12u1 | http://deb.debian.org/debian-security bookworm-security/main Sources
  xz-utils | 5.4.1-1+deb12u1 | http://deb.debian.org/debian bookworm/main Sources
  xz-utils | 5.4.1-1+deb12u2 | http://deb.debian.org/debian-security bookworm-security/main Sources
raspi-firmware | 1.20220830+ds-1 | http://deb.debian.org/debian bookworm/non-free-firmware amd64 Packages
raspi-firmware | 1.20220830+ds-1 | http://deb.debian.org/debian bookworm/non-free-firmware Sources
`;
const SOURCE_404 = `Reading package lists...
NOTICE: 'libzstd' packaging is maintained in the 'Git' version control system at:
https://salsa.debian.org/pkg-rpm-team/libzstd.git
Need to get 1810 kB of source archives.
Err:1 http://deb.debian.org/debian-security bookworm-security/main libzstd 1.5.4+dfsg2-5+deb12u1 (dsc)
  404  Not Found [IP: 151.101.130.132 80]
Err:2 http://deb.debian.org/debian-security bookworm-security/main libzstd 1.5.4+dfsg2-5+deb12u1 (tar)
  404  Not Found [IP: 151.101.130.132 80]
E: Failed to fetch http://deb.debian.org/debian-security/pool/updates/main/libz/libzstd/libzstd_1.5.4%2bdfsg2-5%2bdeb12u1.dsc  404  Not Found [IP: 151.101.130.132 80]
E: Failed to fetch http://deb.debian.org/debian-security/pool/updates/main/libz/libzstd/libzstd_1.5.4%2bdfsg2.orig.tar.xz  404  Not Found [IP: 151.101.130.132 80]
E: Failed to fetch some archives.
`;
const SOURCE_OK = `Get:1 http://deb.debian.org/debian bookworm/main libzstd 1.5.4+dfsg2-5 (dsc) [2589 B]
Get:2 http://deb.debian.org/debian bookworm/main libzstd 1.5.4+dfsg2-5 (tar) [1583 kB]
Fetched 1802 kB in 1s (3364 kB/s)
Download complete and in download only mode
`;
const DSC_LIBZSTD = `-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Format: 3.0 (quilt)
Source: libzstd
Version: 1.5.4+dfsg2-5
Checksums-Sha256:
 8cf4bbb65e77ec348d052c8d6230eba66d435bddf64c8b5be2fcb16880c19953 1582660 libzstd_1.5.4+dfsg2.orig.tar.xz
 be007507630aabfc7d88d5d3c467115935ca22025253491d525e0119bbb23d40 833 libzstd_1.5.4+dfsg2.orig.tar.xz.asc
 82ce911445772861d0838bd4545f93bc50658bc7f3cefdb17a307dfb8ffca5d8 216092 libzstd_1.5.4+dfsg2-5.debian.tar.xz
Files:
 b5e7f16f8d622f7ab651884cc163e0a9 1582660 libzstd_1.5.4+dfsg2.orig.tar.xz
 e93ceefe3683c60224b3b8aaba4eeb5a 833 libzstd_1.5.4+dfsg2.orig.tar.xz.asc
 84bcab8a1770a36ed8882b6fd7d4f573 216092 libzstd_1.5.4+dfsg2-5.debian.tar.xz

-----BEGIN PGP SIGNATURE-----
`;

describe("the offline build's choice of Debian source versions", () => {
  test("the newest version comes first, in Debian's order, with the suites that list it", () => {
    expect(sourceCandidates(MADISON_LIBZSTD, "libzstd")).toEqual([
      { version: "1.5.4+dfsg2-5+deb12u1", suites: ["bookworm-security"] },
      { version: "1.5.4+dfsg2-5", suites: ["bookworm"] },
    ]);
    const linux = sourceCandidates(MADISON_LINUX, "linux");
    expect(linux.map((c) => c.version)).toEqual(["6.1.192-3", "6.1.192-1", "6.1.176-1", "6.1.170-3", "6.1.170-2", "6.1.170-1", "6.1.164-1", "6.1.8-1", "6.1.4-1"]);
    expect(linux.find((c) => c.version === "6.1.170-3")!.suites).toEqual(["bookworm", "bookworm-security"]);
    expect(sourceCandidates(MADISON_OTHERS, "busybox")).toEqual([{ version: "1:1.35.0-4+deb12u1", suites: ["bookworm"] }]);
    expect(sourceCandidates(MADISON_OTHERS, "util-linux")[0]!.version).toBe("2.38.1-5+deb12u3");
    // Source and binary lines are told apart.
    expect(sourceCandidates(MADISON_OTHERS, "raspi-firmware")).toEqual([{ version: "1.20220830+ds-1", suites: ["bookworm"] }]);
    expect(archiveCandidates(MADISON_OTHERS, "raspi-firmware", "Packages")).toEqual([{ version: "1.20220830+ds-1", suites: ["bookworm"] }]);
    expect(sourceCandidates(MADISON_OTHERS, "linux")).toEqual([]);
  });

  test("Debian's version order is dpkg's", () => {
    const versions = [...new Set([MADISON_LIBZSTD, MADISON_LINUX, MADISON_OTHERS].flatMap((m) => m.split("\n").map((l) => l.split("|")[1]?.trim()).filter((v): v is string => !!v)))];
    versions.push("1.0~rc1-1", "1.0-1", "1.0", "1.0+b1", "1:0.9-1", "2.38.1-5", "2.38.1-5+deb12u1~bpo", "6.1.192");
    // Sorted by ours, each version must be below the next as dpkg sees it:
    // then dpkg would sort them the same.
    const sorted = [...versions].sort(compareVersions);
    expect(sorted.slice(0, 4)).toEqual(["1.0~rc1-1", "1.0", "1.0-1", "1.0+b1"]);
    expect(sorted.slice(-2)).toEqual(["1:0.9-1", "1:1.35.0-4+deb12u1"]);
    if (Bun.spawnSync(["dpkg", "--version"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0) {
      for (let i = 0; i + 1 < sorted.length; i++) {
        const r = Bun.spawnSync(["dpkg", "--compare-versions", sorted[i]!, "lt", sorted[i + 1]!]);
        expect(r.exitCode, `${sorted[i]} < ${sorted[i + 1]}`).toBe(0);
      }
    }
    expect(compareVersions("1:1.35.0-4", "1.36.0-1")).toBeGreaterThan(0);
    expect(compareVersions("1.0~rc1-1", "1.0-1")).toBeLessThan(0);
    expect(compareVersions("6.1.8-1", "6.1.164-1")).toBeLessThan(0);
  });

  test("a newer version whose files answer 404 is passed over for the newest one that can be fetched, saying why", () => {
    const tried: string[] = [];
    const choice = chooseSource("libzstd", sourceCandidates(MADISON_LIBZSTD, "libzstd"), (v) => {
      tried.push(v);
      return v === "1.5.4+dfsg2-5+deb12u1" ? { ok: false, output: SOURCE_404 } : { ok: true, output: SOURCE_OK };
    });
    expect(tried).toEqual(["1.5.4+dfsg2-5+deb12u1", "1.5.4+dfsg2-5"]);
    expect(choice.version).toBe("1.5.4+dfsg2-5");
    expect(choice.suites).toEqual(["bookworm"]);
    expect(choice.skipped).toEqual([{ version: "1.5.4+dfsg2-5+deb12u1", suites: ["bookworm-security"], reason: "404 Not Found (libzstd_1.5.4+dfsg2-5+deb12u1.dsc)" }]);
    expect(describeChoice("libzstd", choice)).toBe(
      "libzstd: using 1.5.4+dfsg2-5 (bookworm): the newer 1.5.4+dfsg2-5+deb12u1 (bookworm-security) could not be fetched: 404 Not Found (libzstd_1.5.4+dfsg2-5+deb12u1.dsc)",
    );
    // The newest is taken when it can be fetched, and only it is tried.
    const first = chooseSource("libzstd", sourceCandidates(MADISON_LIBZSTD, "libzstd"), () => ({ ok: true, output: SOURCE_OK }));
    expect(first).toEqual({ version: "1.5.4+dfsg2-5+deb12u1", suites: ["bookworm-security"], skipped: [] });
    expect(describeChoice("libzstd", first)).toBe("libzstd: using 1.5.4+dfsg2-5+deb12u1 (bookworm-security)");
    // None can be fetched: every version and its reason, in one error.
    expect(() => chooseSource("libzstd", sourceCandidates(MADISON_LIBZSTD, "libzstd"), () => ({ ok: false, output: SOURCE_404 }))).toThrow(
      /libzstd: no version's source could be fetched:\n  1\.5\.4\+dfsg2-5\+deb12u1 \(bookworm-security\): 404 Not Found .*\n  1\.5\.4\+dfsg2-5 \(bookworm\): 404 Not Found/,
    );
    expect(() => chooseSource("nosuch", sourceCandidates(MADISON_LIBZSTD, "nosuch"), () => ({ ok: true, output: "" }))).toThrow(/lists no source package/);
    expect(fetchFailure("E: Unable to find a source package for nosuch\n")).toBe("Unable to find a source package for nosuch");
  });

  test("the tarball is the one the chosen version's .dsc names", () => {
    expect(dscTarball(DSC_LIBZSTD)).toBe("libzstd_1.5.4+dfsg2.orig.tar.xz");
    expect(dscTarball("Format: 3.0 (native)\nFiles:\n 0123 100 pkg_1.0.tar.xz\n")).toBe("pkg_1.0.tar.xz");
    expect(dscTarball("Format: 1.0\n")).toBeUndefined();
  });
});

describe("the offline build's apt sources", () => {
  // Debian 12's installer writes this one-line file when it does not write debian.sources.
  const ONE_LINE = `# deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 NETINST]/ bookworm main non-free-firmware

deb http://deb.debian.org/debian/ bookworm main non-free-firmware
deb-src http://deb.debian.org/debian/ bookworm main non-free-firmware

deb http://security.debian.org/debian-security bookworm-security main non-free-firmware
deb-src http://security.debian.org/debian-security bookworm-security main non-free-firmware

# bookworm-updates, to get updates before a point release is made;
deb http://deb.debian.org/debian/ bookworm-updates main non-free-firmware
deb [arch=amd64 signed-by=/usr/share/keyrings/nodesource.gpg] https://deb.nodesource.com/node_20.x nodistro main
`;
  const DEB822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;
  const KEY = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]";

  test("a one-line /etc/apt/sources.list without a deb822 file gives deb-src entries for the release's suites only", () => {
    const etc = mkdtempSync(join(tmpdir(), "paio-apt-"));
    try {
      writeFileSync(join(etc, "sources.list"), ONE_LINE);
      const list = aptList(systemSources(etc), "bookworm");
      expect(list.trim().split("\n")).toEqual([
        `deb-src ${KEY} http://deb.debian.org/debian/ bookworm main non-free-firmware`,
        `deb-src ${KEY} http://security.debian.org/debian-security bookworm-security main non-free-firmware`,
        `deb-src ${KEY} http://deb.debian.org/debian/ bookworm-updates main non-free-firmware`,
      ]);
    } finally {
      rmSync(etc, { recursive: true, force: true });
    }
    expect(aptList(parseOneLine(ONE_LINE), "trixie").trim()).toBe("");
  });

  test("debian.sources (deb822) gives the same kind of list, with deb lines for an extra component when asked", () => {
    expect(aptList(parseDeb822(DEB822), "bookworm").trim().split("\n")).toEqual([
      `deb-src ${KEY} http://deb.debian.org/debian bookworm main`,
      `deb-src ${KEY} http://deb.debian.org/debian bookworm-updates main`,
      `deb-src ${KEY} http://deb.debian.org/debian-security bookworm-security main`,
    ]);
    const withFirmware = aptList(parseDeb822(DEB822), "bookworm", ["non-free-firmware"]).trim().split("\n");
    expect(withFirmware).toContain(`deb ${KEY} http://deb.debian.org/debian bookworm non-free-firmware`);
    expect(withFirmware.filter((l) => l.startsWith("deb "))).toHaveLength(3);
    expect(releaseCodename('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n')).toBe("bookworm");
    expect(releaseCodename('VERSION="12 (bookworm)"\n')).toBe("bookworm");
  });
});

describe("the offline build's boards and toolchains", () => {
  test("ARCH and BOARD pick a defconfig; a board of another architecture is refused, naming the way to ask for it", () => {
    expect(pickBoard({}).defconfig).toBe("paio_qemu_x86_64_defconfig");
    expect(pickBoard({ PAIO_ARCH: "x86_64" }).name).toBe("pc");
    expect(pickBoard({ PAIO_ARCH: "arm64" }).defconfig).toBe("paio_aarch64_virt_defconfig");
    expect(pickBoard({ PAIO_ARCH: "arm64", BOARD: "rpi4" }).defconfig).toBe("paio_raspberrypi4_64_defconfig");
    expect(() => pickBoard({ PAIO_ARCH: "x86_64", BOARD: "rpi4" })).toThrow("BOARD=rpi4 is an arm64 board: make buildroot ARCH=arm64 PAIO_BOARD=rpi4");
    expect(() => pickBoard({ PAIO_ARCH: "arm64", BOARD: "rpi3" })).toThrow(/unknown BOARD=rpi3.*rpi4 \(arm64\)/);
    expect(() => pickBoard({ PAIO_ARCH: "riscv64" })).toThrow(/unknown architecture 'riscv64'/);
    for (const b of Object.values(BOARDS)) {
      expect(existsSync(join(DISTRO, "configs", b.defconfig)), b.defconfig).toBe(true);
      for (const n of b.binaryDebs) expect(BR_BINARY_DEBS[n], n).toBeDefined();
      // The image the board's post-image script writes is the one the offline build copies out.
      const post = paths(setting(join(DISTRO, "configs", b.defconfig), "BR2_ROOTFS_POST_IMAGE_SCRIPT"))[0]!;
      expect(readFileSync(join(post, "../genimage.cfg"), "utf8").includes(`image ${b.image} {`) || readFileSync(join(REPO, "image/genimage-disk.cfg"), "utf8").includes(`image ${b.image} {`), b.image).toBe(true);
    }
  });

  test("the offline defconfig replaces the Bootlin toolchain with Debian's for the defconfig's architecture", () => {
    for (const [name, arch, prefix] of [["virt", "arm64", "aarch64-linux-gnu"], ["pc", "x86_64", "x86_64-linux-gnu"]] as const) {
      const board = BOARDS[name]!;
      const merged = mergeDefconfig(readFileSync(join(DISTRO, "configs", board.defconfig), "utf8"), toolchainSettings(arch, "/cache/tc"));
      expect(merged).not.toMatch(/^BR2_TOOLCHAIN_EXTERNAL_BOOTLIN\w*=y$/m);
      expect(merged).toMatch(/^# BR2_TOOLCHAIN_EXTERNAL_BOOTLIN is not set$/m);
      expect(merged).toContain(`BR2_TOOLCHAIN_EXTERNAL_CUSTOM_PREFIX="${prefix}"`);
      expect(merged).toContain('BR2_TOOLCHAIN_EXTERNAL_PATH="/cache/tc/usr"');
      expect(merged).toMatch(/^BR2_TOOLCHAIN_EXTERNAL_GCC_12=y$/m);
      expect(merged).toMatch(/^BR2_TOOLCHAIN_EXTERNAL_HEADERS_6_1=y$/m);
      // Everything else of the committed defconfig stays.
      expect(merged).toContain(readFileSync(join(DISTRO, "configs", board.defconfig), "utf8").split("\n").find((l) => l.startsWith("BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES="))!);
      expect(TOOLCHAINS[arch].prefix).toBe(prefix);
    }
    // Debian's cross compiler and its arm64 C library, the host's cross binutils.
    expect(TOOLCHAINS.arm64.debs).toEqual(expect.arrayContaining(["gcc-12-aarch64-linux-gnu", "g++-12-aarch64-linux-gnu", "libc6-dev-arm64-cross", "linux-libc-dev-arm64-cross"]));
    expect(TOOLCHAINS.arm64.hostPackages).toEqual(["binutils-aarch64-linux-gnu"]);
    expect(TOOLCHAINS.arm64.makeVars).toEqual(["check_unusable_toolchain=true"]);
    expect(TOOLCHAINS.x86_64.makeVars).toEqual([]);
  });

  test("the override file names every package's Debian source tree; the host's bison and flex stand in for Buildroot's", () => {
    expect(overrideFile(new Map([["util-linux", "/src/util-linux"]]))).toContain("UTIL_LINUX_OVERRIDE_SRCDIR = /src/util-linux");
    expect(overrideFile(new Map([["rpi-firmware", "/src/deb-raspi-firmware"]]))).toContain("RPI_FIRMWARE_OVERRIDE_SRCDIR = /src/deb-raspi-firmware");
    const o = overrideFile(new Map());
    expect(o).toContain("ln -sf /usr/bin/bison $(HOST_DIR)/bin/bison");
    expect(o).toContain("ln -sf /usr/bin/flex $(HOST_DIR)/bin/flex");
    expect(OFFLINE_MAKE_VARS).toContain("HOST_FLEX_AUTORECONF=NO");
  });
});

// With a Buildroot tree: the defconfig loads, show-info resolves, and the
// offline build has a source for every package Buildroot would download.
const BR = process.env.BUILDROOT_DIR;
if (!BR) console.log("distro: BUILDROOT_DIR is not set: skipping the defconfig and show-info checks (they need a Buildroot 2025.02.x tree)");
describe.skipIf(!BR)("with BUILDROOT_DIR", () => {
  for (const [board, file] of Object.entries(DEFCONFIGS)) {
    const name = file.split("/").pop()!;
    test(`${name} loads, show-info resolves, and every download has an offline source`, () => {
      const out = mkdtempSync(join(tmpdir(), "paio-br-"));
      try {
        const cfg = sh(["make", "-s", "-C", BR!, `O=${out}`, `BR2_EXTERNAL=${DISTRO}`, name]);
        expect(cfg.code, cfg.out).toBe(0);
        const dot = readFileSync(join(out, ".config"), "utf8").split("\n");
        for (const line of readFileSync(file, "utf8").split("\n")) {
          // Every setting of the defconfig survives kconfig (none dropped for a missing dependency).
          if (/^BR2_\w+=/.test(line)) expect(dot, line).toContain(line);
          const unset = /^# (BR2_\w+) is not set$/.exec(line)?.[1];
          if (unset) expect(dot.some((l) => l.startsWith(`${unset}=`)), line).toBe(false);
        }
        // With the offline build's make variables (host flex without autoreconf, ...).
        const info = sh(["make", "-s", "-C", BR!, `O=${out}`, ...OFFLINE_MAKE_VARS, "show-info"]);
        expect(info.code, info.out).toBe(0);
        const pkgs = JSON.parse(info.out.slice(info.out.indexOf("{"))) as Record<string, { type: string; downloads?: { source: string }[] }>;
        expect(Object.keys(pkgs)).toEqual(expect.arrayContaining(["paio-pid1", "paio-app", "linux", "busybox", "e2fsprogs"]));
        if (board === "rpi4") expect(Object.keys(pkgs)).toContain("rpi-firmware");
        // Offline: everything that downloads is a Debian source or binary package, the toolchain, the kernel, or ours.
        const handled = new Set([...Object.keys(BR_SOURCES), ...Object.keys(BR_BINARY_DEBS), "linux", "paio-pid1", "paio-app", "genimage", "dosfstools", "mtools", "libconfuse", "lzip"]);
        const uncovered = Object.entries(pkgs)
          .filter(([n, p]) => (p.downloads ?? []).length > 0 && !n.startsWith("toolchain-external"))
          .map(([n]) => n.replace(/^host-/, ""))
          .filter((n) => !handled.has(n));
        expect(uncovered).toEqual([]);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    }, 120_000);
  }
});

// Image detection for `paio qemu` (qemu/image-info.ts): small real disk
// images built here with sfdisk, mkdosfs and mtools (a GPT disk with an ESP,
// an MBR SD card with config.txt, qcow2 overlays), the Pi firmware's reading
// of config.txt, and the refusals that name the option to use.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkImageFor, checkSdSize, describeKinds, detectImage, parseConfigTxt, readPartitions, rpiBootFiles, targetOf,
} from "../../qemu/image-info.ts";
import { defaultBootTimeoutS, imagePath, parseArch, parseBoard, resolveTarget, targetFromEnv } from "../../qemu/target.ts";
import { Guest } from "../../qemu/guest.ts";

const REPO = join(import.meta.dirname, "../..");
const MiB = 1024 * 1024;

function sh(argv: string[], input?: string): string {
  const r = Bun.spawnSync(argv, { stdin: input === undefined ? "ignore" : Buffer.from(input), stdout: "pipe", stderr: "pipe", env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** A FAT file system of sizeMiB holding files (path -> content), written into disk at offset. */
function fatInto(disk: string, offset: number, sizeMiB: number, files: Record<string, string>): void {
  const fat = `${disk}.fat`;
  sh(["mkdosfs", "-C", fat, String(sizeMiB * 1024)]);
  for (const [path, content] of Object.entries(files)) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      Bun.spawnSync(["mmd", "-i", fat, `::${dir}`], { stderr: "ignore", env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } });
    }
    const src = `${disk}.file`;
    writeFileSync(src, content);
    sh(["mcopy", "-o", "-i", fat, src, `::${path}`]);
  }
  sh(["dd", `if=${fat}`, `of=${disk}`, "bs=512", `seek=${offset / 512}`, "conv=notrunc", "status=none"]);
  rmSync(fat);
  rmSync(`${disk}.file`, { force: true });
}

/** A GPT disk like paio-*.img: paio-esp (FAT), paio-root, paio-data. */
function gptDisk(path: string, esp: Record<string, string>): void {
  sh(["truncate", "-s", "48M", path]);
  sh(["sfdisk", "-q", path], "label: gpt\nsize=20M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=paio-esp\nsize=8M, name=paio-root\nsize=8M, name=paio-data\n");
  fatInto(path, MiB, 20, esp);
}

/** An MBR SD card like paio-rpi.img, at a power-of-two size: FAT boot, root, data. */
function mbrDisk(path: string, boot: Record<string, string>, size = "64M"): void {
  sh(["truncate", "-s", size, path]);
  sh(["sfdisk", "-q", path], "label: dos\nstart=4M, size=24M, type=c, bootable\nsize=16M, type=83\ntype=83\n");
  fatInto(path, 4 * MiB, 24, boot);
}

const CONFIG = `# PAIO on the Raspberry Pi
[all]
arm_64bit=1
enable_uart=1
upstream_kernel=1
kernel=vmlinuz
initramfs initrd.img followkernel
cmdline=cmdline.txt
`;

describe("disk images", () => {
  let dir = "";
  const f = (name: string) => join(dir, name);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "paio-image-info-"));
    gptDisk(f("arm64.img"), { "EFI/BOOT/BOOTAA64.EFI": "aa64", "loader/loader.conf": "default paio\n", "paio/vmlinuz": "k" });
    gptDisk(f("x86.img"), { "EFI/BOOT/BOOTX64.EFI": "x64", "paio/vmlinuz": "k" });
    gptDisk(f("both.img"), { "EFI/BOOT/BOOTX64.EFI": "x64", "efi/boot/bootaa64.efi": "aa64" });
    mbrDisk(f("rpi.img"), {
      "config.txt": CONFIG,
      "cmdline.txt": "console=ttyS1,115200 root=PARTUUID=50a10001-02 ro\nsecond line ignored\n",
      vmlinuz: "KERNEL",
      "initrd.img": "INITRD",
      "bcm2837-rpi-3-b.dtb": "DTB3",
      "bcm2711-rpi-4-b.dtb": "DTB4",
    });
    mbrDisk(f("rpi-odd.img"), { "config.txt": CONFIG }, "96M");
    mbrDisk(f("fat-only.img"), { "hello.txt": "hi" });
    sh(["truncate", "-s", "8M", f("blank.img")]);
    sh(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", f("arm64.img"), f("overlay.qcow2")]);
    sh(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", f("rpi.img"), f("rpi-overlay.qcow2")]);
    // Backing files that are gone: only their names are left to go by.
    sh(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-u", "-b", f("gone/paio-rpi.img"), "-o", "size=64M", f("gone-rpi.qcow2")]);
    sh(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-u", "-b", f("gone/disk.img"), "-o", "size=64M", f("gone-other.qcow2")]);
    sh(["qemu-img", "create", "-q", "-f", "qcow2", f("plain.qcow2"), "64M"]);
  }, 60_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("the partition tables are read as sfdisk reads them", () => {
    for (const name of ["arm64.img", "rpi.img"]) {
      const ours = readPartitions(f(name));
      const theirs = JSON.parse(sh(["sfdisk", "--json", f(name)])).partitiontable;
      expect(ours.table).toBe(theirs.label === "dos" ? "mbr" : "gpt");
      expect(ours.partitions.map((p) => [p.offset, p.size])).toEqual(theirs.partitions.map((p: { start: number; size: number }) => [p.start * 512, p.size * 512]));
    }
    expect(readPartitions(f("arm64.img")).partitions.map((p) => p.name)).toEqual(["paio-esp", "paio-root", "paio-data"]);
    expect(readPartitions(f("arm64.img")).partitions[0]!.type).toBe("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    expect(readPartitions(f("rpi.img")).partitions.map((p) => p.type)).toEqual(["0c", "83", "83"]);
    expect(readPartitions(f("blank.img"))).toEqual({ table: "none", partitions: [] });
  });

  test("each kind is told from the files of its first FAT partition", () => {
    const arm = detectImage(f("arm64.img"));
    expect(arm.kinds).toEqual(["arm64-uefi"]);
    expect(arm.fat?.name).toBe("paio-esp");
    expect(arm.files).toContain("EFI/BOOT/BOOTAA64.EFI");
    expect(arm.files).toContain("loader/loader.conf");
    expect(detectImage(f("x86.img")).kinds).toEqual(["x86_64-uefi"]);
    expect(detectImage(f("both.img")).kinds).toEqual(["x86_64-uefi", "arm64-uefi"]);
    const rpi = detectImage(f("rpi.img"));
    expect(rpi.kinds).toEqual(["rpi"]);
    expect(rpi.table).toBe("mbr");
    expect(rpi.fat?.offset).toBe(4 * MiB);
    expect(detectImage(f("fat-only.img")).kinds).toEqual([]);
    expect(detectImage(f("blank.img")).kinds).toEqual([]);
    expect(targetOf(arm)).toEqual({ arch: "arm64", board: "virt" });
    expect(targetOf(rpi)).toEqual({ arch: "arm64", board: "rpi3" });
    expect(targetOf(detectImage(f("x86.img")))).toEqual({ arch: "x86_64", board: "pc" });
    expect(targetOf(detectImage(f("both.img")))).toBeUndefined();
  });

  test("a qcow2 overlay is what its backing file is, or what that file's name says, or unchecked", () => {
    const o = detectImage(f("overlay.qcow2"));
    expect(o.format).toBe("qcow2");
    expect(o.kinds).toEqual(["arm64-uefi"]);
    expect(o.backing).toBe(f("arm64.img"));
    expect(detectImage(f("rpi-overlay.qcow2")).kinds).toEqual(["rpi"]);
    expect(detectImage(f("gone-rpi.qcow2")).kinds).toEqual(["rpi"]);
    expect(detectImage(f("gone-rpi.qcow2")).note).toMatch(/name of its backing file/);
    expect(detectImage(f("gone-other.qcow2")).kinds).toEqual([]);
    expect(detectImage(f("plain.qcow2")).kinds).toEqual([]);
  });

  test("an image for another architecture or board is refused, naming the file, what it is and the option", () => {
    const x86 = { arch: "x86_64", board: "pc" } as const;
    const virt = { arch: "arm64", board: "virt" } as const;
    const rpi3 = { arch: "arm64", board: "rpi3" } as const;
    expect(() => checkImageFor(detectImage(f("arm64.img")), x86, "out/arm64/paio-arm64.img")).toThrow(
      "out/arm64/paio-arm64.img is an arm64 UEFI image; boot it with --arch arm64",
    );
    expect(() => checkImageFor(detectImage(f("x86.img")), virt, "out/paio-x86_64.img")).toThrow("out/paio-x86_64.img is an x86_64 UEFI image; boot it with --arch x86_64");
    expect(() => checkImageFor(detectImage(f("rpi.img")), virt, "sd.img")).toThrow("sd.img is a Raspberry Pi image; boot it with --board rpi3");
    expect(() => checkImageFor(detectImage(f("arm64.img")), rpi3, "a.img")).toThrow("a.img is an arm64 UEFI image; boot it with --arch arm64");
    expect(() => checkImageFor(detectImage(f("overlay.qcow2")), x86, "disk.qcow2")).toThrow("disk.qcow2 is an arm64 UEFI image; boot it with --arch arm64");
    expect(() => checkImageFor(detectImage(f("blank.img")), rpi3, "blank.img")).toThrow(/blank.img is not a Raspberry Pi image/);
    // What matches passes; so does what is not known (a blank disk under direct boot).
    checkImageFor(detectImage(f("arm64.img")), virt);
    checkImageFor(detectImage(f("both.img")), virt);
    checkImageFor(detectImage(f("both.img")), x86);
    checkImageFor(detectImage(f("rpi-overlay.qcow2")), rpi3);
    checkImageFor(detectImage(f("blank.img")), x86);
    checkImageFor(detectImage(f("plain.qcow2")), virt);
    expect(describeKinds(["x86_64-uefi", "arm64-uefi"])).toBe("an x86_64 and arm64 UEFI image");
  });

  test("the Pi's boot files come out of the FAT partition as config.txt names them", () => {
    const dest = mkdtempSync(join(dir, "boot-"));
    const boot = rpiBootFiles(detectImage(f("rpi.img")), dest);
    expect(readFileSync(boot.kernel, "utf8")).toBe("KERNEL");
    expect(readFileSync(boot.initrd!, "utf8")).toBe("INITRD");
    expect(readFileSync(boot.dtb, "utf8")).toBe("DTB3");
    expect(boot.dtb.endsWith("bcm2837-rpi-3-b.dtb")).toBe(true);
    expect(boot.cmdline).toBe("console=ttyS1,115200 root=PARTUUID=50a10001-02 ro");
    expect(boot.config.warnings).toEqual([]);
    // Through a persistent overlay, from its backing file.
    const viaOverlay = rpiBootFiles(detectImage(f("rpi-overlay.qcow2")), mkdtempSync(join(dir, "boot-")));
    expect(readFileSync(viaOverlay.kernel, "utf8")).toBe("KERNEL");
    // A card whose config.txt names files it lacks.
    expect(() => rpiBootFiles(detectImage(f("rpi-odd.img")), mkdtempSync(join(dir, "boot-")))).toThrow(/has no vmlinuz \(the kernel in config.txt\)/);
    expect(() => rpiBootFiles(detectImage(f("arm64.img")), dest)).toThrow(/is not a Raspberry Pi image/);
  });

  test("QEMU's SD card needs a power-of-two size", () => {
    checkSdSize(f("rpi.img"));
    checkSdSize(f("rpi-overlay.qcow2"));
    expect(() => checkSdSize(f("rpi-odd.img"), "odd.img")).toThrow("odd.img is 100663296 bytes; QEMU's SD card needs a power-of-two size");
  });

  test("Guest.start refuses before starting QEMU: the wrong image, the Pi's memory, CPUs and ports", async () => {
    const base = { outDir: dir, boot: "direct" as const, snapshot: true };
    await expect(Guest.start({ ...base, disk: f("arm64.img"), arch: "x86_64" })).rejects.toThrow(/is an arm64 UEFI image; boot it with --arch arm64/);
    await expect(Guest.start({ ...base, disk: f("rpi.img"), board: "rpi3", memoryMb: 2048 })).rejects.toThrow(/exactly 1024 MB/);
    await expect(Guest.start({ ...base, disk: f("rpi.img"), board: "rpi3", cpus: 2 })).rejects.toThrow(/exactly 4 CPUs/);
    await expect(Guest.start({ ...base, disk: f("rpi.img"), board: "rpi3", ports: [80] })).rejects.toThrow(/no network/);
    await expect(Guest.start({ ...base, disk: f("rpi-odd.img"), board: "rpi3" })).rejects.toThrow(/power-of-two/);
  });

  test("paio qemu exec --image uses what the image is, and refuses it for another board", () => {
    const paio = (...args: string[]) => {
      const r = Bun.spawnSync([join(REPO, "bin/paio"), "qemu", "exec", ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, PAIO_OUT: dir } });
      return { code: r.exitCode, err: r.stderr.toString() };
    };
    writeFileSync(f("script.sh"), "true\n");
    // Detected as the Pi: the Pi's limits apply, so nothing boots.
    expect(paio("--image", f("rpi.img"), "--memory", "2048", f("script.sh"))).toEqual({ code: 2, err: expect.stringContaining("--board rpi3 has exactly 1024 MB") });
    expect(paio("--image", f("rpi.img"), "--uefi", f("script.sh")).err).toContain("--uefi and --direct do not apply");
    expect(paio("--arch", "x86_64", "--image", f("arm64.img"), f("script.sh"))).toEqual({
      code: 2, err: expect.stringContaining(`${f("arm64.img")} is an arm64 UEFI image; boot it with --arch arm64`),
    });
    expect(paio("--board", "rpi3", "--image", f("x86.img"), f("script.sh")).err).toContain("is an x86_64 UEFI image; boot it with --arch x86_64");
    expect(paio("--board", "virt", "--snapshot", f("script.sh")).err).toContain("paio-arm64.img is missing; build the arm64 (virt) image first with 'make image ARCH=arm64'");
    expect(paio("--arch", "sparc", f("script.sh")).err).toContain("--arch sparc: unknown architecture; there are x86_64, arm64");
  });
});

describe("config.txt as the Pi firmware reads it", () => {
  test("PAIO's own config.txt: the files it names", () => {
    const c = parseConfigTxt(CONFIG);
    expect(c).toMatchObject({ kernel: "vmlinuz", initramfs: "initrd.img", cmdlineFile: "cmdline.txt", deviceTree: "bcm2837-rpi-3-b.dtb", arm64: true, upstreamKernel: true });
    expect(c.warnings).toEqual([]);
  });

  test("the firmware's defaults: kernel8.img, cmdline.txt, no initramfs, the downstream device tree without upstream_kernel", () => {
    expect(parseConfigTxt("arm_64bit=1\n")).toMatchObject({ kernel: "kernel8.img", cmdlineFile: "cmdline.txt", initramfs: undefined, deviceTree: "bcm2710-rpi-3-b.dtb" });
    expect(parseConfigTxt("arm_64bit=1\nupstream_kernel=1\n").deviceTree).toBe("bcm2837-rpi-3-b.dtb");
    expect(parseConfigTxt("arm_64bit=1\ndevice_tree=my.dtb\n").deviceTree).toBe("my.dtb");
    expect(parseConfigTxt("").warnings.join()).toMatch(/arm_64bit=1/);
  });

  test("[pi3] and [all] apply on a Pi 3 B; [pi4], [pi3+], [pi0], [none], [tryboot] do not; the last value wins", () => {
    const text = `
kernel=first
[pi4]
kernel=for-pi4
device_tree=bcm2711-rpi-4-b.dtb
[pi3+]
kernel=for-pi3-plus
[pi3]
arm_64bit=1
kernel=for-pi3
initramfs pi3.img followkernel
[pi0]
cmdline=pi0.txt
[none]
cmdline=never.txt
[all]
upstream_kernel=1
[tryboot]
kernel=tryboot
[all]
cmdline=cmd.txt # a comment
[board-type=0x8]
initramfs board-type.img
[board-type=0x11]
initramfs pi4-type.img
`;
    expect(parseConfigTxt(text)).toMatchObject({
      kernel: "for-pi3", deviceTree: "bcm2837-rpi-3-b.dtb", initramfs: "board-type.img", cmdlineFile: "cmd.txt", arm64: true,
    });
  });

  test("filters of different kinds combine; of the same kind they replace each other", () => {
    expect(parseConfigTxt("arm_64bit=1\n[pi3]\n[tryboot]\nkernel=a\n[pi3]\nkernel=b\n").kernel).toBe("kernel8.img");
    expect(parseConfigTxt("arm_64bit=1\n[pi4]\n[pi3]\nkernel=b\n").kernel).toBe("b");
    expect(parseConfigTxt("arm_64bit=1\n[HDMI:0]\nkernel=hdmi\n").kernel).toBe("hdmi");
  });

  test("followkernel, ramfsfile=, include, os_prefix; overlays and unknown sections are reported", () => {
    expect(parseConfigTxt("arm_64bit=1\ninitramfs initrd.img followkernel\n").initramfs).toBe("initrd.img");
    expect(parseConfigTxt("arm_64bit=1\ninitramfs initrd.img 0x01f00000\n").initramfs).toBe("initrd.img");
    expect(parseConfigTxt("arm_64bit=1\nramfsfile=old.img\n").initramfs).toBe("old.img");
    const files: Record<string, string> = { "extra.txt": "kernel=from-include\n[pi4]\nkernel=not-this\n" };
    expect(parseConfigTxt("arm_64bit=1\ninclude extra.txt\n", "pi3", (n) => files[n]).kernel).toBe("from-include");
    expect(parseConfigTxt("arm_64bit=1\ninclude missing.txt\n", "pi3", (n) => files[n]).warnings.join()).toMatch(/include missing.txt: no such file/);
    expect(parseConfigTxt("arm_64bit=1\nos_prefix=paio/\nkernel=vmlinuz\ninitramfs initrd.img followkernel\nupstream_kernel=1\n")).toMatchObject({
      kernel: "paio/vmlinuz", initramfs: "paio/initrd.img", deviceTree: "paio/bcm2837-rpi-3-b.dtb", cmdlineFile: "paio/cmdline.txt",
    });
    const w = parseConfigTxt("arm_64bit=1\ndtoverlay=disable-bt\n[gpio4=1]\nkernel=x\n").warnings.join("\n");
    expect(w).toMatch(/dtoverlay=disable-bt is not applied/);
    expect(w).toMatch(/\[gpio4=1\] is not understood/);
    expect(() => parseConfigTxt("arm_64bit=1\ndevice_tree=\n")).toThrow(/empty device_tree=/);
  });
});

describe("architectures and boards", () => {
  test("a board implies its architecture; unknown values name the ones that exist", () => {
    expect(resolveTarget({})).toEqual({ arch: "x86_64", board: "pc" });
    expect(resolveTarget({ arch: "arm64" })).toEqual({ arch: "arm64", board: "virt" });
    expect(resolveTarget({ board: "rpi3" })).toEqual({ arch: "arm64", board: "rpi3" });
    expect(() => resolveTarget({ arch: "x86_64", board: "virt" })).toThrow("board virt is arm64, not x86_64; x86_64 has pc");
    expect(() => parseArch("riscv64")).toThrow("--arch riscv64: unknown architecture; there are x86_64, arm64");
    expect(() => parseBoard("rpi5")).toThrow("--board rpi5: unknown board; there are pc (x86_64), virt (arm64), rpi3 (arm64)");
    expect(parseArch("aarch64")).toBe("arm64");
  });

  test("where each target's image is, and how long its boot may take", () => {
    expect(imagePath("/o", { arch: "x86_64", board: "pc" })).toBe("/o/paio-x86_64.img");
    expect(imagePath("/o", { arch: "arm64", board: "virt" })).toBe("/o/arm64/paio-arm64.img");
    expect(imagePath("/o", { arch: "arm64", board: "rpi3" })).toBe("/o/arm64/paio-rpi.img");
    expect(defaultBootTimeoutS({ arch: "x86_64", board: "pc" }, {})).toBe(300);
    expect(defaultBootTimeoutS({ arch: "arm64", board: "virt" }, {})).toBe(600);
    expect(defaultBootTimeoutS({ arch: "arm64", board: "virt" }, { PAIO_BOOT_TIMEOUT: "42" })).toBe(42);
  });

  test("PAIO_TEST_ARCH and PAIO_TEST_BOARD choose a guest's target when the caller does not", () => {
    const saved = { a: process.env.PAIO_TEST_ARCH, b: process.env.PAIO_TEST_BOARD };
    try {
      expect(targetFromEnv({ PAIO_TEST_ARCH: "arm64" })).toEqual({ arch: "arm64", board: undefined });
      expect(() => targetFromEnv({ PAIO_TEST_BOARD: "pi" })).toThrow(/PAIO_TEST_BOARD=pi: unknown board/);
      process.env.PAIO_TEST_ARCH = "arm64";
      delete process.env.PAIO_TEST_BOARD;
      expect(Guest.targetFor({})).toEqual({ arch: "arm64", board: "virt" });
      expect(Guest.targetFor({ arch: "x86_64" })).toEqual({ arch: "x86_64", board: "pc" });
      process.env.PAIO_TEST_BOARD = "rpi3";
      expect(Guest.targetFor({})).toEqual({ arch: "arm64", board: "rpi3" });
      expect(Guest.targetFor({ arch: "arm64" })).toEqual({ arch: "arm64", board: "rpi3" });
      expect(Guest.targetFor({ arch: "x86_64" })).toEqual({ arch: "x86_64", board: "pc" });
      expect(Guest.targetFor({ board: "virt" })).toEqual({ arch: "arm64", board: "virt" });
    } finally {
      for (const [k, v] of [["PAIO_TEST_ARCH", saved.a], ["PAIO_TEST_BOARD", saved.b]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(existsSync(REPO)).toBe(true);
  });
});

// The arm64 images (make image ARCH=arm64, which make test runs): what each
// boot path needs is where its firmware looks, every program is an aarch64
// one, both images carry the same root, a rebuild is byte-identical, and bad
// input (an unknown architecture, a package arm64 lacks) is named.
import { describe, expect, test } from "vitest";
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RPI_DTBS, RPI_FIRMWARE_FILES } from "../../image/config.ts";
import { REPO } from "../helpers/guest.ts";

const BUN = join(REPO, "node_modules/.bin/bun");
const OUT = join(REPO, "out", "arm64");
const VIRT = join(OUT, "paio-arm64.img");
const RPI = join(OUT, "paio-rpi.img");

function requireImages(): void {
  for (const f of [VIRT, RPI]) if (!existsSync(f)) throw new Error(`${f} is missing: run 'make image ARCH=arm64' (make test does it)`);
}

function assemble(env: Record<string, string>): { code: number; out: string } {
  const r = Bun.spawnSync([BUN, join(REPO, "image/build.ts")], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, "r");
  const buf = Buffer.alloc(length);
  readSync(fd, buf, 0, length, offset);
  closeSync(fd);
  return buf;
}

/** Partitions from sfdisk's JSON dump: start and size in bytes, type, and the GPT name if any. */
function partitions(image: string): { label: string; id: string; parts: { start: number; size: number; type: string; name?: string; bootable?: boolean }[] } {
  const r = Bun.spawnSync(["sfdisk", "--json", image], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`sfdisk --json ${image}: ${r.stderr}`);
  const t = JSON.parse(r.stdout.toString()).partitiontable;
  return { label: t.label, id: t.id, parts: t.partitions.map((p: any) => ({ start: p.start * 512, size: p.size * 512, type: p.type, name: p.name, bootable: p.bootable })) };
}

function fatFile(image: string, offset: number, path: string): string {
  const r = Bun.spawnSync(["mtype", "-i", `${image}@@${offset}`, `::${path}`], { stdout: "pipe", stderr: "pipe", env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } });
  if (r.exitCode !== 0) throw new Error(`${path} is not in the FAT partition of ${image}: ${r.stderr}`);
  return r.stdout.toString();
}

function fatList(image: string, offset: number): string[] {
  const r = Bun.spawnSync(["mdir", "-b", "-i", `${image}@@${offset}`, "::/"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } });
  return r.stdout.toString().split("\n").filter(Boolean).map((l) => l.replace(/^::\//, ""));
}

/** ELF e_machine of a file inside the squashfs root (183 = AArch64). */
function elfMachine(path: string): number {
  const r = Bun.spawnSync(["sh", "-c", `unsquashfs -cat "${join(OUT, "rootfs.squashfs")}" "${path}" | head -c 20`], { stdout: "pipe", stderr: "pipe" });
  const head = Buffer.from(r.stdout);
  if (head.subarray(0, 4).toString("latin1") !== "\x7fELF") throw new Error(`${path} in the root is not an ELF file: ${r.stderr}`);
  return head.readUInt16LE(18);
}

describe("arm64 images", () => {
  test("the UEFI image: GPT, systemd-boot for arm64 on the removable-media path, the PL011 console", () => {
    requireImages();
    const t = partitions(VIRT);
    expect(t.label).toBe("gpt");
    expect(t.parts.map((p) => p.name)).toEqual(["paio-esp", "paio-root-a", "paio-root-b", "paio-data"]);
    const esp = t.parts[0]!.start;
    const files = Bun.spawnSync(["mdir", "-b", "-i", `${VIRT}@@${esp}`, "::/EFI/BOOT"], { stdout: "pipe" }).stdout.toString();
    expect(files).toContain("BOOTAA64.EFI");
    expect(files).not.toContain("BOOTX64.EFI");
    // systemd-boot for arm64 is a PE image for machine 0xAA64.
    const pe = Buffer.from(Bun.spawnSync(["mtype", "-i", `${VIRT}@@${esp}`, "::/EFI/BOOT/BOOTAA64.EFI"], { stdout: "pipe" }).stdout);
    expect(pe.readUInt16LE(pe.readUInt32LE(0x3c) + 4)).toBe(0xaa64);
    const entry = fatFile(VIRT, esp, "/loader/entries/paio-a.conf");
    expect(entry).toMatch(/^options .*console=ttyAMA0,115200.*root=PARTLABEL=paio-root-a rauc\.slot=A/m);
  });

  test("the Raspberry Pi image: exactly 1 GiB, MBR, a bootable FAT partition with the firmware, config.txt and device trees", () => {
    requireImages();
    expect(statSync(RPI).size).toBe(1 << 30);
    const t = partitions(RPI);
    expect(t.label).toBe("dos");
    expect(t.id).toBe("0x50a10001");
    expect(t.parts.map((p) => p.type)).toEqual(["c", "83", "83"]);
    expect(t.parts[0]!.bootable).toBe(true);
    const last = t.parts[2]!;
    expect(last.start + last.size).toBe(1 << 30);
    const boot = t.parts[0]!.start;
    const names = fatList(RPI, boot);
    for (const f of [...RPI_FIRMWARE_FILES, ...RPI_DTBS, "config.txt", "cmdline.txt", "vmlinuz", "initrd.img"]) expect(names, f).toContain(f);
    const config = fatFile(RPI, boot, "/config.txt");
    for (const line of ["arm_64bit=1", "enable_uart=1", "upstream_kernel=1", "kernel=vmlinuz", "initramfs initrd.img followkernel", "cmdline=cmdline.txt"]) {
      expect(config.split(/\r?\n/)).toContain(line);
    }
    const cmdline = fatFile(RPI, boot, "/cmdline.txt");
    expect(cmdline).toMatch(/console=ttyS1,115200/);
    expect(cmdline).toContain("root=PARTUUID=50a10001-02");
    expect(cmdline).toContain("paio.data=PARTUUID=50a10001-03");
    // The device trees and kernel are the ones the kernel build made.
    expect(sha256(Buffer.from(Bun.spawnSync(["mtype", "-i", `${RPI}@@${boot}`, "::/vmlinuz"], { stdout: "pipe" }).stdout))).toBe(sha256(readFileSync(join(OUT, "vmlinuz"))));
  });

  test("both images carry the same squashfs root, byte for byte", () => {
    requireImages();
    const rootfs = readFileSync(join(OUT, "rootfs.squashfs"));
    for (const [image, index] of [[VIRT, 1], [RPI, 1]] as const) {
      const p = partitions(image).parts[index]!;
      expect(sha256(readAt(image, p.start, rootfs.length)), image).toBe(sha256(rootfs));
    }
  });

  test("every program in the root is an aarch64 one; Bun is npm's arm64 build", () => {
    requireImages();
    for (const f of ["usr/bin/bun", "usr/sbin/init", "usr/libexec/paio/qemu-exec", "usr/bin/busybox", "usr/lib/aarch64-linux-gnu/libonnxruntime.so.1", "usr/sbin/dropbear"]) {
      expect(elfMachine(f), f).toBe(183);
    }
    const rows = readFileSync(join(OUT, "manifest.tsv"), "utf8").trim().split("\n").map((l) => l.split("\t"));
    const byPath = new Map(rows.map((r) => [r[0], r]));
    expect(byPath.get("/usr/bin/bun")?.[6]).toMatch(/^npm:@oven\/bun-linux-aarch64@\d/);
    expect(byPath.get("/usr/lib/aarch64-linux-gnu/libc.so.6")?.[6]).toMatch(/^debian:libc6:arm64=/);
    // The bundles and models are the very files of the x86_64 image.
    const x86 = new Map(readFileSync(join(REPO, "out", "manifest.tsv"), "utf8").trim().split("\n").map((l) => l.split("\t")).map((r) => [r[0], r]));
    for (const f of ["/usr/lib/paio/agent.js", "/usr/lib/paio/supervisor.js", "/usr/lib/paio/models/manifest.json"]) expect(byPath.get(f)?.[4], f).toBe(x86.get(f)?.[4]);
  });

  test("a second clean build gives a byte-identical root; a rebuild with unchanged inputs does nothing", () => {
    requireImages();
    const dir = mkdtempSync(join(tmpdir(), "paio-arm64-out-"));
    try {
      const env = { PAIO_ARCH: "arm64", PAIO_OUT: dir, PAIO_KERNEL: join(OUT, "kernel") };
      const first = assemble(env);
      expect(first.code, first.out).toBe(0);
      expect(sha256(readFileSync(join(dir, "arm64", "rootfs.squashfs")))).toBe(sha256(readFileSync(join(OUT, "rootfs.squashfs"))));
      const mtime = statSync(join(dir, "arm64", "paio-rpi.img")).mtimeMs;
      const again = assemble(env);
      expect(again.code, again.out).toBe(0);
      expect(again.out).toContain("up to date");
      expect(statSync(join(dir, "arm64", "paio-rpi.img")).mtimeMs).toBe(mtime);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 400_000);

  test("an unknown architecture names the ones that exist", () => {
    const r = assemble({ PAIO_ARCH: "riscv64" });
    expect(r.code).toBe(2);
    expect(r.out).toContain("unknown architecture 'riscv64'");
    expect(r.out).toContain("x86_64, arm64");
    const m = Bun.spawnSync(["make", "-s", "image", "ARCH=riscv64"], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
    expect(m.exitCode).not.toBe(0);
    expect(m.stderr.toString()).toContain("unknown ARCH 'riscv64'; the architectures PAIO builds: x86_64, arm64");
    const b = Bun.spawnSync(["make", "-s", "run", "ARCH=arm64", "BOARD=pi5"], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
    expect(b.stderr.toString()).toContain("unknown BOARD 'pi5' for ARCH=arm64; the boards: virt rpi3");
  });

  test("a package arm64 does not have is named", () => {
    const script = `const { resolveVersions } = await import(${JSON.stringify(join(REPO, "image/debs.ts"))});
      try { resolveVersions(["busybox-static", "paio-no-such-package"], "arm64"); console.log("no error"); } catch (e) { console.log(e.message); }`;
    const r = Bun.spawnSync([BUN, "-e", script], { env: { ...process.env, PAIO_ARCH: "arm64" }, stdout: "pipe", stderr: "pipe" });
    expect(r.stdout.toString()).toMatch(/Debian package 'paio-no-such-package' \(arm64\) is unknown to apt for arm64/);
  }, 120_000);
});

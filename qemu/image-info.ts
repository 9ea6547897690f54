// What a disk image is, from its partition table (GPT or MBR, read here) and
// the files of its first FAT partition (listed with mtools):
//   EFI/BOOT/BOOTX64.EFI                 an x86_64 UEFI image   (board pc)
//   EFI/BOOT/BOOTAA64.EFI                an arm64 UEFI image    (board virt)
//   config.txt in an MBR FAT partition   a Raspberry Pi image   (board rpi3)
// A qcow2 disk (a persistent overlay) is what its backing file is.
// For a Pi image it also plays the Pi firmware's part: config.txt is read
// (its [pi3]/[all] sections, include, os_prefix, the default file names) and
// the kernel, device tree, initramfs and command line are copied out for
// QEMU's -kernel, -dtb, -initrd and -append.

import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { describeTarget, targetFlags, TargetError, type Target } from "./target.ts";

export type ImageKind = "x86_64-uefi" | "arm64-uefi" | "rpi";

export interface Partition {
  /** 1-based, as in the partition table. */
  index: number;
  offset: number;
  size: number;
  /** GPT type GUID (upper case) or the MBR type byte as two hex digits. */
  type: string;
  /** GPT partition name; "" for MBR. */
  name: string;
}

export interface ImageInfo {
  file: string;
  format: "raw" | "qcow2";
  table: "gpt" | "mbr" | "none";
  partitions: Partition[];
  /** The first FAT partition, if any. */
  fat?: Partition;
  /** Its files, "/"-separated, from the root, as stored (FAT ignores case). */
  files: string[];
  /** What it boots as; empty when unknown; more than one for a multi-architecture ESP. */
  kinds: ImageKind[];
  /** For qcow2: the backing file, resolved, if any. */
  backing?: string;
  /** How the kinds were found when not from the image's own files. */
  note?: string;
}

const SECTOR = 512;
const ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: "1", MTOOLS_NO_VFAT: "" };

export const KIND_TARGET: Record<ImageKind, Target> = {
  "x86_64-uefi": { arch: "x86_64", board: "pc" },
  "arm64-uefi": { arch: "arm64", board: "virt" },
  rpi: { arch: "arm64", board: "rpi3" },
};

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, offset);
  return buf.subarray(0, n);
}

function guid(b: Buffer): string {
  const h = (x: Buffer) => x.toString("hex");
  const le = (x: Buffer) => h(Buffer.from(x).reverse());
  return `${le(b.subarray(0, 4))}-${le(b.subarray(4, 6))}-${le(b.subarray(6, 8))}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`.toUpperCase();
}

/** The partitions of a raw disk image: GPT (behind its protective MBR) or MBR primaries. */
export function readPartitions(file: string): { table: "gpt" | "mbr" | "none"; partitions: Partition[] } {
  const fd = openSync(file, "r");
  try {
    const mbr = readAt(fd, 0, SECTOR);
    if (mbr.length < SECTOR || mbr[510] !== 0x55 || mbr[511] !== 0xaa) return { table: "none", partitions: [] };
    const entries = [0, 1, 2, 3].map((i) => mbr.subarray(446 + 16 * i, 446 + 16 * (i + 1)));
    if (entries.some((e) => e[4] === 0xee)) {
      const hdr = readAt(fd, SECTOR, SECTOR);
      if (hdr.subarray(0, 8).toString("latin1") !== "EFI PART") return { table: "none", partitions: [] };
      const entryLba = Number(hdr.readBigUInt64LE(72));
      const count = hdr.readUInt32LE(80);
      const size = hdr.readUInt32LE(84);
      if (size < 128 || count > 1024) return { table: "gpt", partitions: [] };
      const table = readAt(fd, entryLba * SECTOR, count * size);
      const partitions: Partition[] = [];
      for (let i = 0; i < count && (i + 1) * size <= table.length; i++) {
        const e = table.subarray(i * size, (i + 1) * size);
        if (e.subarray(0, 16).every((x) => x === 0)) continue;
        const first = Number(e.readBigUInt64LE(32));
        const last = Number(e.readBigUInt64LE(40));
        const name = e.subarray(56, 128).toString("utf16le").replace(/\0.*$/s, "");
        partitions.push({ index: i + 1, offset: first * SECTOR, size: (last - first + 1) * SECTOR, type: guid(e.subarray(0, 16)), name });
      }
      return { table: "gpt", partitions };
    }
    const partitions: Partition[] = [];
    entries.forEach((e, i) => {
      const type = e[4]!;
      const start = e.readUInt32LE(8);
      const count = e.readUInt32LE(12);
      if (type !== 0 && count > 0) {
        partitions.push({ index: i + 1, offset: start * SECTOR, size: count * SECTOR, type: type.toString(16).padStart(2, "0"), name: "" });
      }
    });
    return { table: "mbr", partitions };
  } finally {
    closeSync(fd);
  }
}

/** Whether a partition starts with a FAT boot sector (what mkdosfs writes). */
function isFat(file: string, p: Partition): boolean {
  const fd = openSync(file, "r");
  try {
    const bs = readAt(fd, p.offset, SECTOR);
    if (bs.length < SECTOR || bs[510] !== 0x55 || bs[511] !== 0xaa) return false;
    return /^FAT(12|16)? {0,5}$/.test(bs.subarray(54, 62).toString("latin1")) || bs.subarray(82, 90).toString("latin1") === "FAT32   ";
  } finally {
    closeSync(fd);
  }
}

/** Every file of a FAT partition, recursively ("EFI/BOOT/BOOTX64.EFI"). */
export function listFat(file: string, offset: number): string[] {
  const r = Bun.spawnSync(["mdir", "-i", `${file}@@${offset}`, "-b", "-/", "::"], { stdout: "pipe", stderr: "pipe", env: MTOOLS_ENV });
  if (r.exitCode !== 0) throw new Error(`mdir cannot read the FAT partition of ${file}: ${r.stderr.toString().trim()} (mtools is needed: 'make deps')`);
  return r.stdout
    .toString()
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("::/") && !l.endsWith("/"))
    .map((l) => l.slice(3));
}

/** One file of a FAT partition; undefined when it is not there. */
export function readFatFile(file: string, offset: number, path: string): Buffer | undefined {
  const r = Bun.spawnSync(["mcopy", "-i", `${file}@@${offset}`, `::${path}`, "-"], { stdout: "pipe", stderr: "pipe", env: MTOOLS_ENV });
  if (r.exitCode !== 0) return undefined;
  return Buffer.from(r.stdout);
}

/** Copies one file out of a FAT partition; false when it is not there. */
export function copyFatFile(file: string, offset: number, path: string, dest: string): boolean {
  const r = Bun.spawnSync(["mcopy", "-o", "-i", `${file}@@${offset}`, `::${path}`, dest], { stdout: "pipe", stderr: "pipe", env: MTOOLS_ENV });
  return r.exitCode === 0 && existsSync(dest);
}

function qcow2Backing(file: string): { isQcow2: boolean; backing?: string } {
  const fd = openSync(file, "r");
  try {
    const hdr = readAt(fd, 0, 20);
    if (hdr.length < 20 || hdr.subarray(0, 4).toString("latin1") !== "QFI\xfb") return { isQcow2: false };
    const offset = Number(hdr.readBigUInt64BE(8));
    const size = hdr.readUInt32BE(16);
    if (offset === 0 || size === 0 || size > 4096) return { isQcow2: true };
    const name = readAt(fd, offset, size).toString("utf8");
    return { isQcow2: true, backing: isAbsolute(name) ? name : resolve(dirname(file), name) };
  } finally {
    closeSync(fd);
  }
}

function kindsFromFiles(table: ImageInfo["table"], files: string[]): ImageKind[] {
  const has = (p: string) => files.some((f) => f.toLowerCase() === p.toLowerCase());
  const kinds: ImageKind[] = [];
  if (has("EFI/BOOT/BOOTX64.EFI")) kinds.push("x86_64-uefi");
  if (has("EFI/BOOT/BOOTAA64.EFI")) kinds.push("arm64-uefi");
  if (table === "mbr" && has("config.txt")) kinds.push("rpi");
  return kinds;
}

/** What a backing file's name says, when its contents cannot be read. */
function kindsFromName(name: string): ImageKind[] {
  const n = basename(name);
  if (/rpi|raspi/i.test(n)) return ["rpi"];
  if (/arm64|aarch64/i.test(n)) return ["arm64-uefi"];
  if (/x86_64|amd64/i.test(n)) return ["x86_64-uefi"];
  return [];
}

/** Reads a disk image's partition table and its first FAT partition; for qcow2, its backing file. */
export function detectImage(file: string, depth = 0): ImageInfo {
  const q = qcow2Backing(file);
  if (q.isQcow2) {
    const base: ImageInfo = { file, format: "qcow2", table: "none", partitions: [], files: [], kinds: [], backing: q.backing };
    if (!q.backing) return { ...base, note: "a qcow2 disk without a backing file: not checked" };
    if (depth < 8 && existsSync(q.backing)) {
      const inner = detectImage(q.backing, depth + 1);
      return { ...inner, file, format: "qcow2", backing: q.backing, note: `from its backing file ${q.backing}` };
    }
    const kinds = kindsFromName(q.backing);
    return { ...base, kinds, note: kinds.length ? `from the name of its backing file ${q.backing} (not readable)` : `its backing file ${q.backing} is not readable: not checked` };
  }
  const { table, partitions } = readPartitions(file);
  // The ESP first (it holds the boot loader), else the first FAT partition.
  const fat = partitions.find((p) => p.type === ESP_GUID && isFat(file, p)) ?? partitions.find((p) => isFat(file, p));
  let files: string[] = [];
  let note: string | undefined;
  try {
    files = fat ? listFat(file, fat.offset) : [];
  } catch (e) {
    // A damaged boot partition (some tests make one) is not this check's business: the boot will tell.
    note = (e as Error).message;
  }
  return { file, format: "raw", table, partitions, fat, files, kinds: kindsFromFiles(table, files), note };
}

export function describeKinds(kinds: ImageKind[]): string {
  if (kinds.length === 0) return "not an image this runner knows";
  const uefi = kinds.filter((k) => k !== "rpi").map((k) => k.replace("-uefi", ""));
  const parts: string[] = [];
  if (uefi.length) parts.push(`an ${uefi.join(" and ")} UEFI image`);
  if (kinds.includes("rpi")) parts.push("a Raspberry Pi image");
  return parts.join(" and ");
}

/** A path as the person typed it, or relative to here when it lies below. */
export function displayPath(file: string): string {
  if (!isAbsolute(file)) return file;
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : file;
}

/** The target an image boots as, when it names exactly one. */
export function targetOf(info: ImageInfo): Target | undefined {
  return info.kinds.length === 1 ? KIND_TARGET[info.kinds[0]!] : undefined;
}

/**
 * Refuses an image built for another architecture or board, naming the file,
 * what it is and the option to boot it with. Unknown images pass (a blank
 * disk under direct boot is fine), except on the Pi, which needs config.txt.
 */
export function checkImageFor(info: ImageInfo, target: Target, shown = displayPath(info.file)): void {
  const matches = info.kinds.some((k) => {
    const t = KIND_TARGET[k];
    return t.arch === target.arch && t.board === target.board;
  });
  if (matches) return;
  if (info.kinds.length === 0) {
    if (target.board === "rpi3") {
      throw new TargetError(`${shown} is not a Raspberry Pi image (no MBR FAT partition with config.txt)${info.note ? `, ${info.note}` : ""}; --board rpi3 boots what the SD card's config.txt names`);
    }
    return;
  }
  const other = KIND_TARGET[info.kinds[0]!];
  throw new TargetError(`${shown} is ${describeKinds(info.kinds)}; boot it with ${targetFlags(other)} (not as ${describeTarget(target)})`);
}

// ---- the Raspberry Pi firmware's part ------------------------------------------

export interface RpiConfig {
  /** File names on the FAT partition, os_prefix applied. */
  kernel: string;
  deviceTree: string;
  initramfs?: string;
  cmdlineFile: string;
  arm64: boolean;
  upstreamKernel: boolean;
  /** What was ignored or looks wrong, for the person running it. */
  warnings: string[];
}

/** The models the runner emulates, with the names their filters and default device trees use. */
const MODELS = {
  pi3: { filters: ["pi3"], boardType: 0x08, upstreamDtb: "bcm2837-rpi-3-b.dtb", downstreamDtb: "bcm2710-rpi-3-b.dtb" },
} as const;
export type RpiModel = keyof typeof MODELS;

/**
 * Reads config.txt as the Pi firmware does for the given model: conditional
 * sections ([pi3], [pi4], [all], [none], [board-type=0x8]; filters of one
 * kind replace each other, of different kinds combine), `include`, the last
 * value of a setting wins, and the firmware's default file names.
 */
export function parseConfigTxt(text: string, model: RpiModel = "pi3", readInclude?: (name: string) => string | undefined): RpiConfig {
  const m = MODELS[model];
  const warnings: string[] = [];
  const settings = new Map<string, string>();
  let initramfs: string | undefined;
  const filters = new Map<string, boolean>();
  const active = () => [...filters.values()].every(Boolean);

  const walk = (body: string, name: string, depth: number) => {
    for (const raw of body.split(/\r?\n/)) {
      const line = raw.replace(/#.*$/, "").trim();
      if (!line) continue;
      const section = /^\[(.*)\]$/.exec(line);
      if (section) {
        const f = section[1]!.trim().toLowerCase();
        if (f === "all") filters.clear();
        else if (f === "none") filters.set("model", false);
        else if (/^(pi\d.*|cm\d.*|pi400|pi500)$/.test(f)) filters.set("model", (m.filters as readonly string[]).includes(f));
        else if (f.startsWith("board-type=")) filters.set("model", Number(f.slice(11)) === m.boardType);
        else if (f === "tryboot") filters.set("tryboot", false);
        else if (f.startsWith("hdmi:")) filters.set("hdmi", true);
        else if (f.startsWith("edid=")) filters.set("edid", false);
        else if (/^0x[0-9a-f]+$/.test(f)) filters.set("serial", false);
        else {
          warnings.push(`${name}: section [${section[1]}] is not understood here; its settings are skipped`);
          filters.set(`other:${f}`, false);
        }
        continue;
      }
      if (!active()) continue;
      const inc = /^include\s+(\S+)$/.exec(line);
      if (inc) {
        const body2 = depth < 4 ? readInclude?.(inc[1]!) : undefined;
        if (body2 === undefined) warnings.push(`${name}: include ${inc[1]}: no such file`);
        else walk(body2, inc[1]!, depth + 1);
        continue;
      }
      const ramfs = /^initramfs\s+(\S+)(?:\s+(\S+))?$/.exec(line);
      if (ramfs) {
        initramfs = ramfs[1]!;
        continue;
      }
      const kv = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
      if (!kv) {
        warnings.push(`${name}: cannot read '${line}'`);
        continue;
      }
      const key = kv[1]!.toLowerCase();
      const value = kv[2]!.trim();
      if (key === "dtoverlay" && value) warnings.push(`${name}: dtoverlay=${value} is not applied under QEMU`);
      if (key === "ramfsfile") initramfs = value;
      settings.set(key, value);
    }
  };
  walk(text, "config.txt", 0);

  const prefix = settings.get("os_prefix") ?? "";
  const arm64 = settings.get("arm_64bit") === "1";
  if (!arm64) warnings.push("config.txt does not set arm_64bit=1: a Pi 3 would start its kernel in 32-bit mode; QEMU starts it as a 64-bit one");
  const upstreamKernel = settings.get("upstream_kernel") === "1";
  const dt = settings.get("device_tree");
  if (dt === "") throw new TargetError("config.txt sets an empty device_tree= (no device tree): QEMU's raspi3b needs one");
  return {
    kernel: prefix + (settings.get("kernel") || (arm64 ? "kernel8.img" : "kernel7.img")),
    deviceTree: prefix + (dt ?? (upstreamKernel ? m.upstreamDtb : m.downstreamDtb)),
    initramfs: initramfs ? prefix + initramfs : undefined,
    cmdlineFile: prefix + (settings.get("cmdline") || "cmdline.txt"),
    arm64,
    upstreamKernel,
    warnings,
  };
}

export interface RpiBoot {
  kernel: string;
  dtb: string;
  initrd?: string;
  /** cmdline.txt's first line. */
  cmdline: string;
  config: RpiConfig;
}

/**
 * Does what the Pi firmware does before starting the kernel: reads
 * config.txt from the SD card image's FAT partition and copies the kernel,
 * device tree and initramfs it names into destDir. A qcow2 overlay is read
 * through its backing file (the guest does not write the boot partition).
 */
export function rpiBootFiles(info: ImageInfo, destDir: string, model: RpiModel = "pi3"): RpiBoot {
  const shown = displayPath(info.file);
  const raw = info.format === "qcow2" ? info.backing : info.file;
  if (!raw || !existsSync(raw) || !info.fat || !info.kinds.includes("rpi")) {
    throw new TargetError(`${shown} is not a Raspberry Pi image whose boot partition can be read (an MBR FAT partition with config.txt${info.note ? `; ${info.note}` : ""})`);
  }
  const off = info.fat.offset;
  const read = (name: string) => readFatFile(raw, off, name)?.toString("utf8");
  const config = parseConfigTxt(read("config.txt") ?? "", model, read);
  const need = (name: string, what: string, dest: string): string => {
    if (!copyFatFile(raw, off, name, dest)) throw new TargetError(`${shown}: its FAT partition has no ${name} (${what} in config.txt)`);
    return dest;
  };
  const kernel = need(config.kernel, "the kernel", join(destDir, "kernel"));
  const dtb = need(config.deviceTree, "the device tree", join(destDir, basename(config.deviceTree)));
  const initrd = config.initramfs ? need(config.initramfs, "the initramfs", join(destDir, "initrd")) : undefined;
  const cmdText = read(config.cmdlineFile);
  if (cmdText === undefined) throw new TargetError(`${shown}: its FAT partition has no ${config.cmdlineFile} (the kernel command line)`);
  const cmdline = (cmdText.split(/\r?\n/)[0] ?? "").trim();
  return { kernel, dtb, initrd, cmdline, config };
}

/** The size the guest sees: a raw file's length, or a qcow2 disk's virtual size. */
export function diskSize(file: string): number {
  const fd = openSync(file, "r");
  try {
    const hdr = readAt(fd, 0, 32);
    if (hdr.length >= 32 && hdr.subarray(0, 4).toString("latin1") === "QFI\xfb") return Number(hdr.readBigUInt64BE(24));
  } finally {
    closeSync(fd);
  }
  return statSync(file).size;
}

/** QEMU's SD card takes only power-of-two sizes: says so before QEMU does, less clearly. */
export function checkSdSize(file: string, shown = displayPath(file)): void {
  const size = diskSize(file);
  if (size <= 0 || !Number.isInteger(Math.log2(size))) {
    throw new TargetError(`${shown} is ${size} bytes; QEMU's SD card needs a power-of-two size (the Pi image is exactly 1 GiB)`);
  }
}

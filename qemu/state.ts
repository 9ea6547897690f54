// The persistent disk that `make run` and `paio qemu exec` (without
// --snapshot) boot: a qcow2 overlay on top of the built image, one per
// architecture and board, kept apart:
//   out/state/              x86_64 (q35): disk.qcow2, OVMF_VARS.fd
//   out/arm64/state/        arm64 (virt): disk.qcow2, AAVMF_VARS.fd
//   out/arm64/state-rpi3/   the Raspberry Pi image: disk.qcow2 (no UEFI variables)
// The guest only ever writes its data partition (the root is read-only), so
// the overlay holds the device's data and survives image rebuilds, as long as
// the partition layout stays the same; if it changes, the old overlay is kept
// aside and a fresh one is made.
//
// `paio qemu exec --keep-disk FILE` boots a disk of the caller's own instead:
// made on first use as a sparse copy of the built image (or of --image), and
// booted as it is by every later run with the same FILE. A copy rather than
// an overlay, because such a disk is a whole device: an update test writes
// its boot partition and root slots, which an overlay would mix with
// whatever a later `make image` puts in the base file. The copy is also raw,
// so a guest killed on purpose (a power cut) loses nothing QEMU held. Sparse
// (and shared blocks where the file system can), it costs about what the
// image holds (some 80 MB), not its size. A FILE that is a qcow2 disk (made
// with qemu-img) is booted too, through its backing file.

import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import { checkImageFor, checkSdSize, detectImage, displayPath } from "./image-info.ts";
import { FIRMWARE } from "./machine.ts";
import { artifactDir, imagePath, TargetError, type Target } from "./target.ts";

export interface PersistentDisk {
  disk: string;
  /** The UEFI variable store; undefined for the Pi, which has no UEFI. */
  varsFile?: string;
  note?: string;
}

const X86: Target = { arch: "x86_64", board: "pc" };

function layoutOf(image: string): string {
  const out = Bun.spawnSync(["sfdisk", "--dump", image], { stdout: "pipe", stderr: "pipe" });
  const text = out.stdout.toString().split("\n").filter((l) => !l.startsWith("device:")).join("\n");
  return createHash("sha256").update(text).digest("hex");
}

/** Where a target's persistent disk lives (outDir is the top of out/). */
export function stateDir(outDir: string, t: Target): string {
  const dir = artifactDir(outDir, t.arch);
  return join(dir, t.board === "rpi3" ? "state-rpi3" : "state");
}

/** The persistent overlay for a target (x86_64 when not given), made on first use. */
export function persistentDisk(outDir: string, t: Target = X86): PersistentDisk {
  const image = imagePath(outDir, t);
  const dir = stateDir(outDir, t);
  mkdirSync(dir, { recursive: true });
  const disk = join(dir, "disk.qcow2");
  const layoutFile = join(dir, "layout.sha256");
  const layout = layoutOf(image);
  let note: string | undefined;
  if (existsSync(disk) && readFileSync(layoutFile, "utf8").trim() !== layout) {
    const aside = `${disk}.old-${Date.now()}`;
    renameSync(disk, aside);
    note = `the image's partition layout changed: previous data kept in ${aside}; starting with a blank data partition`;
  }
  if (!existsSync(disk)) {
    const r = Bun.spawnSync(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", image, disk], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`qemu-img create failed: ${r.stderr.toString().trim()}`);
    writeFileSync(layoutFile, layout + "\n");
  }
  const varsFile = t.board === "rpi3" ? undefined : join(dir, t.arch === "x86_64" ? "OVMF_VARS.fd" : "AAVMF_VARS.fd");
  return { disk, varsFile, note };
}

export interface KeptDisk {
  disk: string;
  /** The UEFI variable store kept beside it (FILE.OVMF_VARS.fd, FILE.AAVMF_VARS.fd); none for the Pi. */
  varsFile?: string;
  /** It was made by this call. */
  created: boolean;
  note?: string;
}

/**
 * --keep-disk FILE: the disk that FILE is, checked against the target
 * (a disk of another architecture or board is refused, naming the option
 * that boots it), or, when FILE does not exist yet, a sparse copy of base.
 */
export function keptDisk(file: string, base: string, t: Target): KeptDisk {
  const shown = `--keep-disk ${file}`;
  const varsFile = t.board === "rpi3" ? undefined : `${resolve(file)}.${FIRMWARE[t.arch].varsName}`;
  if (existsSync(file)) {
    if (!statSync(file).isFile()) throw new TargetError(`${shown} is not a disk image file`);
    const info = detectImage(file);
    checkImageFor(info, t, shown);
    if (t.board === "rpi3") checkSdSize(file, shown);
    const note = info.kinds.length === 0 ? `${shown}: cannot tell what this disk is${info.note ? ` (${info.note})` : ""}; booting it anyway` : undefined;
    return { disk: file, varsFile, created: false, note };
  }
  if (!existsSync(base)) throw new TargetError(`${displayPath(base)}: no such file to make ${shown} from`);
  checkImageFor(detectImage(base), t);
  mkdirSync(dirname(resolve(file)), { recursive: true });
  // Copied under another name and renamed: an interrupted copy never looks like a kept disk.
  const part = `${file}.part-${process.pid}`;
  const cp = Bun.spawnSync(["cp", "--sparse=always", "--reflink=auto", base, part], { stderr: "pipe" });
  if (cp.exitCode !== 0) {
    rmSync(part, { force: true });
    throw new TargetError(`cannot make ${shown} from ${displayPath(base)}: ${cp.stderr.toString().trim()}`);
  }
  renameSync(part, file);
  // A UEFI variable store left from an earlier disk of that name belongs to that disk.
  if (varsFile) rmSync(varsFile, { force: true });
  return { disk: file, varsFile, created: true, note: `${shown}: a new disk, a sparse copy of ${displayPath(base)}; later runs with it boot what this one leaves` };
}

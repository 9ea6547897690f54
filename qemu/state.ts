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

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { artifactDir, imagePath, type Target } from "./target.ts";

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

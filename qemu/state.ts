// The persistent disk that `make run` and `paio qemu exec` (without
// --snapshot) boot: a qcow2 overlay in out/state/ on top of the built image.
// The guest only ever writes its data partition (the root is read-only), so
// the overlay holds the device's data and survives image rebuilds, as long as
// the partition layout stays the same; if it changes, the old overlay is kept
// aside and a fresh one is made.

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";

export interface PersistentDisk {
  disk: string;
  varsFile: string;
  note?: string;
}

function layoutOf(image: string): string {
  const out = Bun.spawnSync(["sfdisk", "--dump", image], { stdout: "pipe", stderr: "pipe" });
  const text = out.stdout.toString().split("\n").filter((l) => !l.startsWith("device:")).join("\n");
  return createHash("sha256").update(text).digest("hex");
}

export function persistentDisk(outDir: string): PersistentDisk {
  const image = join(outDir, "paio-x86_64.img");
  const dir = join(outDir, "state");
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
  return { disk, varsFile: join(dir, "OVMF_VARS.fd"), note };
}

// A small disk image shaped like PAIO's, for the flashing tests: a sparse
// 48 MiB GPT disk with a FAT EFI partition (paio-esp), 2 MiB of random
// bytes in the root partition and a blank data partition, and its bmap made
// with `bmaptool create`. Built in a few hundred milliseconds.

import { closeSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { parseBmap, rangeExtent, type Bmap } from "../../flash/bmap.ts";

export const MiB = 1024 * 1024;
const ENV = { ...process.env, MTOOLS_SKIP_CHECK: "1" };

export function sh(argv: string[], input?: string): string {
  const r = Bun.spawnSync(argv, { stdin: input === undefined ? "ignore" : Buffer.from(input), stdout: "pipe", stderr: "pipe", env: ENV });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

export interface Synthetic {
  image: string;
  bmap: string;
  size: number;
  /** Offset of the random bytes (inside a mapped range). */
  dataOffset: number;
}

/** Makes dir/name (and dir/name.bmap). */
export function syntheticImage(dir: string, name = "paio-test.img"): Synthetic {
  const image = join(dir, name);
  const size = 48 * MiB;
  sh(["truncate", "-s", String(size), image]);
  sh(["sfdisk", "-q", image], "label: gpt\nsize=16M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=paio-esp\nsize=16M, name=paio-root\nname=paio-data\n");
  const fat = join(dir, `${name}.fat`);
  sh(["mkdosfs", "-C", "-n", "PAIO-ESP", fat, String(16 * 1024)]);
  const file = join(dir, `${name}.file`);
  writeFileSync(file, "console=ttyS0 root=PARTLABEL=paio-root\n");
  sh(["mmd", "-i", fat, "::paio"]);
  sh(["mcopy", "-i", fat, file, "::paio/cmdline.txt"]);
  sh(["dd", `if=${fat}`, `of=${image}`, "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]);
  rmSync(fat);
  rmSync(file);
  const dataOffset = 17 * MiB + 64 * 1024;
  const fd = openSync(image, "r+");
  try {
    writeSync(fd, randomBytes(2 * MiB), 0, 2 * MiB, dataOffset);
  } finally {
    closeSync(fd);
  }
  const bmap = `${image}.bmap`;
  sh(["bmaptool", "create", "-o", bmap, image]);
  return { image, bmap, size, dataOffset };
}

export function readBmap(path: string): Bmap {
  return parseBmap(readFileSync(path, "utf8"), path);
}

/** sha256 of each mapped range of a file or device, in bmap order. */
export function rangeDigests(path: string, bmap: Bmap): string[] {
  const fd = openSync(path, "r");
  try {
    return bmap.ranges.map((r) => {
      const { offset, length } = rangeExtent(bmap, r);
      const buf = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, buf, got, length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return createHash("sha256").update(buf.subarray(0, got)).digest("hex");
    });
  } finally {
    closeSync(fd);
  }
}

/** Flips one byte of a file at an offset. */
export function flipByte(path: string, offset: number): void {
  const fd = openSync(path, "r+");
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

/** Runs bin/paio flash with arguments; stdin optional. */
export function paioFlash(repo: string, args: string[], stdin?: string): { code: number; out: string; err: string } {
  const r = Bun.spawnSync([join(repo, "bin/paio"), "flash", ...args], {
    stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), stdout: "pipe", stderr: "pipe", cwd: repo,
  });
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
}

#!/usr/bin/env bun
// `make bench`, flashing part: `paio flash` of the x86_64 image to a file
// target (bmaptool through the bmap, then the read-back of every mapped
// range) against a plain full-image `dd bs=4M conv=fsync` to a file on the
// same file system, in the same run, alternating, median of 3 rounds
// (PAIO_BENCH_ROUNDS). The image's cached pages are dropped before each run,
// so both read it from disk. The figure is the ratio; beside it, the bytes
// each way puts on the target.

import { fileURLToPath } from "node:url";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flash, type FlashRequest } from "../../flash/flash.ts";
import { human } from "../../flash/format.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const IMAGE = join(REPO, "out", "paio-x86_64.img");
const ROUNDS = Number(process.env.PAIO_BENCH_ROUNDS ?? 3);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function run(argv: string[]): void {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString().trim()}`);
}

/** Drops a file's clean cached pages (POSIX_FADV_DONTNEED), so the next read comes from the disk. */
function dropCache(file: string): void {
  run(["dd", `if=${file}`, "iflag=nocache", "count=0", "status=none"]);
}

if (!existsSync(IMAGE)) {
  console.error(`flash bench: ${IMAGE} is missing: run 'make image' first`);
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), "paio-flash-bench-"));
try {
  let bmap = `${IMAGE}.bmap`;
  let bmapNote = "the image's own bmap";
  if (!existsSync(bmap)) {
    bmap = join(dir, "paio-x86_64.img.bmap");
    run(["bmaptool", "create", "-o", bmap, IMAGE]);
    bmapNote = "a bmap made here with bmaptool create (the image has none beside it)";
  }
  const target = join(dir, "flashed.img");
  const ddTarget = join(dir, "dd.img");
  const quiet = { say: () => {}, progress: () => {}, confirm: async () => true };
  const req: FlashRequest = {
    image: IMAGE, target, bmap, noBmap: false, yes: true, dryRun: false, unmount: false, allowFixed: false, settings: {},
  };
  const writes: number[] = [];
  const reads: number[] = [];
  const dds: number[] = [];
  let allocated = 0;
  let mapped = 0;
  let size = 0;
  let ddAllocated = 0;

  const doFlash = async () => {
    rmSync(target, { force: true });
    dropCache(IMAGE);
    const r = await flash(req, quiet);
    writes.push(r.writeSeconds);
    reads.push(r.verify!.seconds);
    allocated = r.allocated ?? 0;
    mapped = r.image.written;
    size = r.image.size;
  };
  const doDd = () => {
    rmSync(ddTarget, { force: true });
    dropCache(IMAGE);
    const t0 = performance.now();
    run(["dd", `if=${IMAGE}`, `of=${ddTarget}`, "bs=4M", "conv=fsync", "status=none"]);
    dds.push((performance.now() - t0) / 1000);
    ddAllocated = statSync(ddTarget).blocks * 512;
  };
  for (let i = 0; i < ROUNDS; i++) {
    if (i % 2 === 0) {
      await doFlash();
      doDd();
    } else {
      doDd();
      await doFlash();
    }
  }
  const w = median(writes);
  const v = median(reads);
  const d = median(dds);
  const s = (x: number) => `${x.toFixed(2)} s`;
  console.log(`flash: out/paio-x86_64.img (${human(size)}, ${human(mapped)} mapped; ${bmapNote}) to a file on the same file system, median of ${ROUNDS}:`);
  console.log(`  paio flash, write (bmaptool copy, sync)      ${s(w)}   (runs: ${writes.map((x) => x.toFixed(2)).join(", ")})`);
  console.log(`  paio flash, read-back of every mapped range  ${s(v)}   (runs: ${reads.map((x) => x.toFixed(2)).join(", ")})`);
  console.log(`  dd bs=4M conv=fsync, whole image             ${s(d)}   (runs: ${dds.map((x) => x.toFixed(2)).join(", ")})`);
  console.log(`  ratio: dd takes ${(d / w).toFixed(1)}x the time of the bmap write, ${(d / (w + v)).toFixed(1)}x that of write + read-back`);
  console.log(`  bytes written: paio flash ${human(mapped)} (${mapped} B, the bmap's mapped ranges bmaptool writes), ${human(allocated)} allocated on the target; dd ${human(size)} (${size} B), ${human(ddAllocated)} allocated`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// Writing and proving: `bmaptool copy` writes the mapped ranges (checking
// each against the bmap's checksum as it reads the image, and opening a
// block device with O_EXCL), this module watches how far it is from the
// kernel's I/O counters, then drops the target's cached pages and reads
// every range back from the target to compare checksums.

import { closeSync, constants, fsyncSync, openSync, readFileSync, readSync } from "node:fs";
import { createHash } from "node:crypto";
import { describeRange, rangeExtent, type Bmap } from "./bmap.ts";
import { imageStream, type ImageInfo } from "./image.ts";

export class WriteError extends Error {
  constructor(message: string, readonly remedy: string) {
    super(message);
  }
}

/** Read-back found something other than what was written: names the first bad range. */
export class VerifyError extends Error {
  constructor(message: string, readonly remedy: string) {
    super(message);
  }
}

export type Progress = (done: number, total: number) => void;

const ANSI = /\x1b\[[0-9;]*m/g;

/** bmaptool's own error, without its traceback and colours. */
export function bmaptoolError(stderr: string): string | undefined {
  const lines = stderr.replace(ANSI, "").split("\n").map((l) => l.trim());
  const errors = lines.filter((l) => /^bmaptool: ERROR: /.test(l) && !/here is the traceback/.test(l));
  const last = errors.pop()?.replace(/^bmaptool: ERROR: /, "");
  if (last) return last;
  return lines.filter((l) => l && !l.startsWith("bmaptool: info:")).pop();
}

/** Bytes a process has passed to write() so far (its threads included), from /proc/PID/io. */
export function writtenBy(pid: number): number | undefined {
  try {
    const m = /^wchar:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export interface CopyResult {
  seconds: number;
  /** bmaptool's warnings, to pass on. */
  warnings: string[];
}

/**
 * `bmaptool copy` IMAGE TARGET with the image's bmap (or --nobmap). Progress
 * is what the process has written, polled every 200 ms from /proc/PID/io:
 * bmaptool draws its own percentage only on a terminal, and only in whole
 * percents without a rate.
 */
export async function bmapCopy(info: ImageInfo, target: string, progress?: Progress): Promise<CopyResult> {
  // --quiet: warnings and errors only (its other lines would count as written bytes below).
  const argv = ["bmaptool", "--quiet", "copy", ...(info.bmapPath ? ["--bmap", info.bmapPath] : ["--nobmap"]), info.path, target];
  const started = performance.now();
  let proc;
  try {
    proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  } catch (e) {
    throw new WriteError(`cannot run bmaptool: ${(e as Error).message}`, "install Debian's bmap-tools ('make deps')");
  }
  const total = info.written;
  progress?.(0, total);
  const timer = progress
    ? setInterval(() => {
        const w = writtenBy(proc.pid);
        if (w !== undefined) progress(Math.min(w, total), total);
      }, 200)
    : undefined;
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text(), new Response(proc.stdout).text()]);
  if (timer) clearInterval(timer);
  const seconds = (performance.now() - started) / 1000;
  const clean = stderr.replace(ANSI, "");
  if (code !== 0) {
    const err = bmaptoolError(clean) ?? `bmaptool exited with status ${code}`;
    if (/checksum mismatch/.test(err)) {
      throw new WriteError(`the image does not match its bmap: ${err}`,
        "the image file is damaged or the bmap belongs to another image: download or build the image again, and make its bmap from it");
    }
    if (/exclusive mode/.test(err)) {
      throw new WriteError(`${target} is in use: ${err}`, `something holds the drive (a mount, an open volume, a program): 'lsblk ${target}' and 'fuser -vm ${target}' show what`);
    }
    if (/does not belong to this image|Unexpected end of input|Compressed data is corrupt/i.test(clean)) {
      const why = clean.split("\n").find((l) => /^(xz|zstd):|Unexpected end|corrupt/i.test(l.trim()))?.trim();
      throw new WriteError(`the image ended early or is damaged${why ? ` (${why})` : ""}: ${err}`, "download or compress the image again");
    }
    throw new WriteError(`bmaptool failed: ${err}`, "see the message above; the target is not usable as it is");
  }
  progress?.(total, total);
  const warnings = clean.split("\n").map((l) => l.trim()).filter((l) => /^bmaptool: WARNING/.test(l)).map((l) => l.replace(/^bmaptool: WARNING: /, ""));
  return { seconds, warnings };
}

function runQuiet(argv: string[]): { code: number; err: string } {
  try {
    const r = Bun.spawnSync(argv, { stdout: "ignore", stderr: "pipe" });
    return { code: r.exitCode ?? 1, err: r.stderr.toString().trim() };
  } catch (e) {
    return { code: 127, err: (e as Error).message };
  }
}

/**
 * Pushes the target's data to the medium and drops its cached pages, so the
 * read-back comes from the drive (or the disk under a file), not from memory:
 * a block device's buffers with BLKFLSBUF (blockdev --flushbufs, which syncs
 * first), a file's pages with fsync and then POSIX_FADV_DONTNEED (dd's
 * iflag=nocache).
 */
export function syncAndDropCache(target: string, isBlock: boolean): void {
  if (isBlock) {
    const r = runQuiet(["blockdev", "--flushbufs", target]);
    if (r.code !== 0) throw new WriteError(`cannot flush ${target}: ${r.err}`, "the drive may have gone away: check it is still plugged in, then flash again");
    return;
  }
  const fd = openSync(target, "r+");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  runQuiet(["dd", `if=${target}`, "iflag=nocache", "count=0", "status=none"]);
}

/** Opens a block device exclusively (O_EXCL: no mount, no other exclusive user), or a file plainly. */
export function openTarget(target: string, isBlock: boolean): number {
  try {
    return openSync(target, isBlock ? constants.O_RDONLY | constants.O_EXCL : constants.O_RDONLY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EBUSY") {
      throw new WriteError(`${target} is in use (it cannot be opened exclusively)`,
        `something holds the drive (a mount, possibly by a desktop's automounter, an open volume, a program): 'lsblk ${target}' and 'fuser -vm ${target}' show what`);
    }
    if (code === "EACCES" || code === "EPERM") throw new WriteError(`${target}: permission denied`, "run as root (sudo bin/paio flash ...)");
    throw new WriteError(`cannot open ${target}: ${(e as Error).message}`, "check the drive is still there");
  }
}

/** Checks that nothing holds a block device now, by opening it exclusively and closing it. */
export function probeExclusive(target: string): void {
  closeSync(openTarget(target, true));
}

const CHUNK = 4 * 1024 * 1024;

export interface VerifyResult {
  seconds: number;
  bytes: number;
  ranges: number;
}

/** Reads every mapped range back from an open target and compares its checksum with the bmap's. */
export function verifyRanges(fd: number, target: string, bmap: Bmap, progress?: Progress): VerifyResult {
  const started = performance.now();
  const buf = Buffer.allocUnsafe(CHUNK);
  const total = bmap.ranges.reduce((n, r) => n + rangeExtent(bmap, r).length, 0);
  let done = 0;
  progress?.(0, total);
  for (const r of bmap.ranges) {
    const { offset, length } = rangeExtent(bmap, r);
    const h = createHash(bmap.checksumType ?? "sha256");
    let pos = 0;
    while (pos < length) {
      const want = Math.min(CHUNK, length - pos);
      let n: number;
      try {
        n = readSync(fd, buf, 0, want, offset + pos);
      } catch (e) {
        throw new VerifyError(`reading ${target} back failed at byte ${offset + pos} (in ${describeRange(bmap, r)}): ${(e as Error).message}`,
          "the drive may be failing or was unplugged: try another card or reader");
      }
      if (n === 0) {
        throw new VerifyError(`${target} ends at byte ${offset + pos}, inside ${describeRange(bmap, r)}`, "the target is smaller than the image: use a larger drive");
      }
      h.update(buf.subarray(0, n));
      pos += n;
      done += n;
      progress?.(done, total);
    }
    const got = h.digest("hex");
    if (got !== r.checksum) {
      throw new VerifyError(`read-back mismatch: ${target} differs from the image in ${describeRange(bmap, r)}: ${bmap.checksumType} ${got}, the bmap says ${r.checksum}`,
        "what is on the drive is not what was written: flash again; if it fails again the card or reader is faulty (fake-capacity cards fail this way): use another one");
    }
  }
  return { seconds: (performance.now() - started) / 1000, bytes: done, ranges: bmap.ranges.length };
}

/**
 * Without a bmap: reads the whole image again (decompressing it) and compares
 * it with the target, chunk by chunk, naming the first chunk that differs.
 * A damaged compressed image is caught here too (its decompressor fails).
 */
export async function verifyWhole(fd: number, target: string, info: ImageInfo, progress?: Progress): Promise<VerifyResult> {
  const started = performance.now();
  const { stream, done } = imageStream(info);
  progress?.(0, info.size);
  const mine = Buffer.allocUnsafe(CHUNK);
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let pos = 0;
  const compare = (img: Buffer) => {
    let off = 0;
    while (off < img.length) {
      const want = Math.min(CHUNK, img.length - off);
      const n = readSync(fd, mine, 0, want, pos + off);
      if (n < want) throw new VerifyError(`${target} ends at byte ${pos + off + n}; the image goes on`, "use a drive at least as large as the image");
      if (!mine.subarray(0, n).equals(img.subarray(off, off + n))) {
        let i = 0;
        while (i < n && mine[i] === img[off + i]) i++;
        throw new VerifyError(`read-back mismatch: ${target} differs from the image at byte ${pos + off + i} (in bytes ${pos + off}-${pos + off + n - 1})`,
          "flash again; if it fails again the card or reader is faulty: use another one");
      }
      off += n;
    }
    pos += img.length;
    progress?.(pos, info.size);
  };
  for await (const chunk of stream) {
    pending.push(Buffer.from(chunk));
    pendingBytes += chunk.length;
    if (pendingBytes >= CHUNK) {
      compare(Buffer.concat(pending));
      pending.length = 0;
      pendingBytes = 0;
    }
  }
  if (pendingBytes) compare(Buffer.concat(pending));
  const err = await done;
  if (err) throw new VerifyError(`the image is damaged: ${err}; what was written is not the whole image`, "download or compress the image again");
  if (pos !== info.size) {
    throw new VerifyError(`the image gave ${pos} bytes, ${info.size} were expected (from ${info.sizeFrom})`, "download or compress the image again");
  }
  return { seconds: (performance.now() - started) / 1000, bytes: pos, ranges: 1 };
}

/** Unmounts each mount point in turn (deepest first); the first failure stops it. */
export function unmountAll(mounts: { path: string; mountpoint: string }[]): string[] {
  const done: string[] = [];
  for (const m of mounts) {
    const r = runQuiet(["umount", m.mountpoint]);
    if (r.code !== 0) {
      throw new WriteError(`cannot unmount ${m.path} from ${m.mountpoint}: ${r.err || `umount exited with ${r.code}`}`,
        `close the programs using it ('fuser -vm ${m.mountpoint}' lists them), then run the command again`);
    }
    done.push(`unmounted ${m.path} from ${m.mountpoint}`);
  }
  return done;
}

/** Makes a file target sparse where it holds zeros (after a write without a bmap). */
export function digHoles(target: string): void {
  runQuiet(["fallocate", "--dig-holes", target]);
}

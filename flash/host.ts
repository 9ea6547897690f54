// The live machine's side of the safety rules: runs lsblk, reads
// /proc/self/mountinfo, /proc/swaps and sysfs, and looks at TARGET and the
// image, giving flash/safety.ts the facts it decides on.

import { accessSync, constants, existsSync, readFileSync, statfsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseLsblk, parseMountinfo, parseSwaps, type HostState, type LoopBacking } from "./lsblk.ts";
import type { TargetFacts } from "./safety.ts";

export class HostError extends Error {}

/** "major:minor" of a dev_t as glibc encodes it (gnu_dev_major/minor). */
export function devString(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

function readOr(path: string, fallback = ""): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
}

/** `lsblk --json -b -O`'s text. */
export function runLsblk(): string {
  const r = Bun.spawnSync(["lsblk", "--json", "-b", "-O"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) {
    const msg = r.stderr.toString().trim();
    throw new HostError(`lsblk failed${msg ? `: ${msg}` : ""} (it comes with util-linux)`);
  }
  return r.stdout.toString();
}

/** The whole picture of this machine's drives and what uses them. */
export function readHost(): HostState {
  const devices = parseLsblk(runLsblk());
  const loops: Record<string, LoopBacking> = {};
  const mmcTypes: Record<string, string> = {};
  for (const d of devices) {
    if (d.type === "loop") {
      const file = readOr(`/sys/block/${d.kname}/loop/backing_file`).trim();
      if (!file) continue;
      const b: LoopBacking = { file };
      try {
        const st = statSync(file.replace(/ \(deleted\)$/, ""), { bigint: true });
        if (st.isBlockDevice()) b.rdev = devString(st.rdev);
        else {
          b.dev = devString(st.dev);
          b.ino = Number(st.ino);
        }
      } catch {
        // Deleted or out of reach: the path alone is all there is.
      }
      loops[d.kname] = b;
    }
    if (/^mmcblk\d+$/.test(d.kname)) {
      const t = readOr(`/sys/block/${d.kname}/device/type`).trim();
      if (t) mmcTypes[d.kname] = t;
    }
  }
  return {
    devices,
    mounts: parseMountinfo(readOr("/proc/self/mountinfo")),
    swaps: parseSwaps(readOr("/proc/swaps")),
    loops,
    mmcTypes,
  };
}

function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

/** What TARGET is: a block device, a regular file, nothing yet, or something else. Symbolic links are followed. */
export function targetFacts(path: string): TargetFacts {
  let st;
  try {
    st = statSync(path, { bigint: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new HostError(`${path}: ${(e as Error).message}`);
    const parent = dirname(resolve(path));
    const parentExists = existsSync(parent);
    return { kind: "missing", path, parentExists, free: parentExists ? freeBytes(parent) : undefined };
  }
  let writable = true;
  try {
    accessSync(path, constants.W_OK);
  } catch {
    writable = false;
  }
  if (st.isBlockDevice()) return { kind: "block", path, rdev: devString(st.rdev), writable };
  if (st.isFile()) {
    const free = freeBytes(dirname(resolve(path)));
    // Writing replaces the file: the blocks it holds now come free.
    return {
      kind: "file", path, size: Number(st.size), dev: devString(st.dev), ino: Number(st.ino), writable,
      free: free === undefined ? undefined : free + Number(st.blocks) * 512,
    };
  }
  const what = st.isDirectory() ? "a folder" : st.isCharacterDevice() ? "a character device" : st.isFIFO() ? "a FIFO" : st.isSocket() ? "a socket" : "not a regular file";
  return { kind: "other", path, what };
}

/** A file's file system ("major:minor") and inode, following links. */
export function fileIdentity(path: string): { dev: string; ino: number } | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return { dev: devString(st.dev), ino: Number(st.ino) };
  } catch {
    return undefined;
  }
}

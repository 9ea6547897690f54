// A long-running PAIO program (the agent above all) keeps resident many
// pages it needed only to start: the parts of Bun's binary that parsed and
// compiled its bundle, and the parts of onnxruntime's library that ran its
// start-up (the registration of thousands of operator kernels, the loading of
// each model). They are clean pages of files, which the kernel could take
// back under memory pressure, but until then they are counted in the
// program's resident memory (RSS) and sit in the device's RAM.
//
// giveBackFilePages() does it in two steps, both with madvise(2):
//
// 1. MADV_PAGEOUT (Linux 5.4 and later) on every read-only mapping of a file:
//    the kernel reclaims the pages that only this process maps. They leave
//    RAM.
// 2. MADV_DONTNEED on the read-only file mappings that hold no page of this
//    process's own (smaps' "Anonymous: 0 kB": no page was ever copied on
//    write, as a library's relocated data is). These are the pages another
//    process maps too (Bun's code, shared with the supervisor and the
//    console), which step 1 leaves alone. This process stops mapping them;
//    they stay in the page cache for the others, so the device's RAM does not
//    change, but they are no longer resident in this process.
//
// A page the program still uses comes back at its next touch (a page fault
// maps it again from the page cache, or reads the file), so some time later
// the program holds its working set rather than its start. Writable mappings
// (the knowledge base's shared memory, a library's data) and mappings with a
// page of their own are never dropped: that would undo what was written.
//
// It goes through libc's madvise() with bun:ffi; where that cannot be loaded,
// or the kernel refuses, it says why and changes nothing.

import { readFileSync } from "node:fs";

/** MADV_PAGEOUT from <linux/mman.h>: reclaim the given pages now. */
const MADV_PAGEOUT = 21;
/** MADV_DONTNEED: unmap the given pages from this process (a file's clean pages come back from the page cache). */
const MADV_DONTNEED = 4;

/** A mapping of a file: [start, end) addresses and the file. */
export interface FileMapping {
  start: bigint;
  end: bigint;
  file: string;
}

/** The read-only, file-backed mappings of /proc/PID/maps. */
export function fileMappings(maps: string): FileMapping[] {
  const out: FileMapping[] = [];
  for (const line of maps.split("\n")) {
    // "7f1c2a000000-7f1c2a400000 r-xp 00000000 08:01 1234   /usr/lib/x86_64-linux-gnu/libonnxruntime.so.1"
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s+(\/.*)$/.exec(line);
    if (!m || m[4] === "0" || m[3]!.includes("w")) continue;
    out.push({ start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), file: m[5]! });
  }
  return out;
}

/**
 * The read-only file mappings of /proc/PID/smaps that hold resident pages, none
 * of them the process's own (Anonymous: 0 kB): the ones whose pages can be
 * dropped from the process and mapped again from the file unchanged.
 */
export function cleanFileMappings(smaps: string): FileMapping[] {
  const out: FileMapping[] = [];
  let cur: FileMapping | undefined;
  let rss = 0;
  let anon = -1;
  const flush = () => {
    if (cur && rss > 0 && anon === 0) out.push(cur);
    cur = undefined;
  };
  for (const line of smaps.split("\n")) {
    // A mapping's own line, as in /proc/PID/maps; its fields follow.
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      flush();
      cur = fileMappings(line)[0];
      rss = 0;
      anon = -1;
      continue;
    }
    const f = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    if (f?.[1] === "Rss") rss = Number(f[2]);
    else if (f?.[1] === "Anonymous") anon = Number(f[2]);
  }
  flush();
  return out;
}

/** This process's resident memory from /proc/self/status, KiB: all of it, and its file-backed part. */
export function residentKiB(): { rss: number; file: number } | undefined {
  try {
    const s = readFileSync("/proc/self/status", "utf8");
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(s);
    const file = /^RssFile:\s+(\d+) kB/m.exec(s);
    return rss && file ? { rss: Number(rss[1]), file: Number(file[1]) } : undefined;
  } catch {
    return undefined;
  }
}

export type GiveBack =
  | { ok: true; mappings: number; beforeKiB: number; afterKiB: number; text: string }
  | { ok: false; text: string };

/**
 * Collects the garbage of start-up, then gives back the read-only file pages
 * this process holds now (see above); the result says what it did, in a sentence.
 */
export function giveBackFilePages(): GiveBack {
  Bun.gc(true);
  let madvise: (addr: bigint, len: bigint, advice: number) => number;
  let errno: () => number;
  try {
    // A plain require, not an import: a module loader that does not know bun:ffi fails here, where it is caught.
    const ffi = require("bun:ffi") as typeof import("bun:ffi");
    const lib = ffi.dlopen("libc.so.6", {
      madvise: { args: [ffi.FFIType.u64, ffi.FFIType.u64, ffi.FFIType.i32], returns: ffi.FFIType.i32 },
      __errno_location: { args: [], returns: ffi.FFIType.ptr },
    });
    madvise = (a, l, adv) => lib.symbols.madvise(a, l, adv);
    errno = () => ffi.read.i32(lib.symbols.__errno_location()!, 0);
  } catch (e) {
    return { ok: false, text: `start-up pages kept: bun:ffi cannot reach libc's madvise here (${(e as Error).message.split("\n")[0]})` };
  }
  const before = residentKiB();
  let maps: string;
  try {
    maps = readFileSync("/proc/self/maps", "utf8");
  } catch (e) {
    return { ok: false, text: `start-up pages kept: /proc/self/maps cannot be read (${(e as Error).message})` };
  }
  let done = 0;
  let refused: number | undefined;
  for (const m of fileMappings(maps)) {
    if (madvise(m.start, m.end - m.start, MADV_PAGEOUT) === 0) done++;
    else refused ??= errno();
  }
  // Step 2: what step 1 left because others map it too, from the mappings with no page of this process's own.
  let dropped = 0;
  if (done > 0) {
    try {
      for (const m of cleanFileMappings(readFileSync("/proc/self/smaps", "utf8"))) if (madvise(m.start, m.end - m.start, MADV_DONTNEED) === 0) dropped++;
    } catch {
      // No smaps (a kernel without it): step 1 alone.
    }
  }
  const after = residentKiB();
  if (done === 0) {
    return { ok: false, text: `start-up pages kept: the kernel refused MADV_PAGEOUT${refused === 22 ? " (EINVAL: it needs Linux 5.4 or later)" : refused !== undefined ? ` (errno ${refused})` : " (no file mappings)"}` };
  }
  const mib = (k: number | undefined) => (k === undefined ? "?" : (k / 1024).toFixed(1));
  return {
    ok: true,
    mappings: done,
    beforeKiB: before?.rss ?? 0,
    afterKiB: after?.rss ?? 0,
    text: `gave back the file pages used only at start: resident ${mib(before?.rss)} MiB -> ${mib(after?.rss)} MiB (file pages ${mib(before?.file)} -> ${mib(after?.file)} MiB; ${done} mappings paged out, ${dropped} of them also unmapped where other processes keep their pages); what is still used comes back as it is touched`,
  };
}

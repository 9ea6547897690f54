// Reading a configuration file (unit, policy, agent, network, provisioning)
// without ever blocking: the file must be a regular file of bounded size.
// A FIFO, a socket, a device, or a symbolic link to one (a unit file that is
// a link to /dev/zero, say) is refused with a clear error before it is
// opened, so nothing can stall the reader or arm a device by opening it.

import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from "node:fs";
import { kindOf, plantedKind } from "../own-file.ts";

/** Configuration files are small; anything larger is a mistake, not a configuration. */
export const CONFIG_MAX_BYTES = 1024 * 1024;

export type ReadResult = { ok: true; text: string } | { ok: false; error: string };

/**
 * The file's text, or an error that starts with the path and says what to do.
 * Symbolic links are followed only to a regular file. The file is opened
 * non-blocking and checked again after opening, so a file swapped for a FIFO
 * between the two checks cannot stall the caller either.
 *
 * With `links: "refuse"` (files found by listing one of PAIO's folders, such
 * as the units folder) a symbolic or hard link is refused as well, so an
 * entry planted there cannot make a root process read another file
 * (lib/own-file.ts).
 */
export function readConfigFile(path: string, maxBytes = CONFIG_MAX_BYTES, opts: { links?: "follow" | "refuse" } = {}): ReadResult {
  const refuseLinks = opts.links === "refuse";
  if (refuseLinks) {
    const planted = plantedKind(path);
    // A FIFO or a device is named as such below; here only the links.
    if (planted && /^a (symbolic|hard) link/.test(planted)) return { ok: false, error: `${path}: ${planted}; PAIO reads only regular files with one name in this folder (a link could lead it to another file): replace it with a copy of the file` };
  }
  let before: Stats;
  try {
    before = statSync(path);
  } catch (e) {
    return { ok: false, error: `${path}: cannot read: ${errnoText(e)}` };
  }
  if (!before.isFile()) return { ok: false, error: `${path}: ${kindOf(before)}, not a regular file; remove it or replace it with a text file` };
  if (before.size > maxBytes) return { ok: false, error: tooLarge(path, before.size, maxBytes) };
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (refuseLinks ? constants.O_NOFOLLOW : 0));
  } catch (e) {
    return { ok: false, error: `${path}: cannot read: ${errnoText(e)}` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.ino !== before.ino || st.dev !== before.dev || (refuseLinks && st.nlink > 1)) {
      return { ok: false, error: `${path}: changed while being read (now ${kindOf(st)}); try again` };
    }
    // One byte more than allowed tells a file that grew past the limit after stat.
    const buf = Buffer.alloc(Math.min(maxBytes, Math.max(st.size, 4096)) + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n === buf.length) return { ok: false, error: tooLarge(path, n, maxBytes) };
    }
    try {
      return { ok: true, text: new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(0, n)) };
    } catch {
      return { ok: false, error: `${path}: not UTF-8 text; save it as UTF-8` };
    }
  } catch (e) {
    return { ok: false, error: `${path}: cannot read: ${errnoText(e)}` };
  } finally {
    closeSync(fd);
  }
}

function tooLarge(path: string, size: number, max: number): string {
  return `${path}: too large (${size} bytes, at most ${max} allowed for a configuration file); is this the right file?`;
}

export function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const text: Record<string, string> = {
    ENOSPC: "no space left on device",
    EROFS: "read-only file system",
    EACCES: "permission denied",
    ENOTDIR: "a path component is not a directory",
    ENOENT: "no such file or directory",
    ELOOP: "too many levels of symbolic links",
    EISDIR: "is a directory",
  };
  return err.code ? `${text[err.code] ?? err.message} (${err.code})` : String(e);
}

/** The text of a configuration file that may be absent: undefined when there is none; throws the error otherwise. */
export function readOptionalConfig(path: string, maxBytes = CONFIG_MAX_BYTES): string | undefined {
  const r = readConfigFile(path, maxBytes);
  if (r.ok) return r.text;
  if (r.error.endsWith("(ENOENT)")) return undefined;
  throw new Error(r.error);
}

// Opening a file in one of PAIO's own writable folders (/var/lib/paio: unit
// logs, units, models, the audit head) as root, without being led elsewhere.
//
// Whoever can plant an entry there (a unit's files on a shared partition, a
// card edited on another computer) must not make the supervisor or the agent
// read or write another file through it. So such a file is opened only when
// it is what it looks like:
//   - not a symbolic link (O_NOFOLLOW: the link itself is refused, not followed);
//   - a regular file (no FIFO, device or socket; opened non-blocking, so a
//     FIFO cannot stall the opener either);
//   - with one name (a hard link to another file, say the knowledge base, has two).
// Files are created only where no entry of that name exists (O_EXCL), so a
// link planted between a check and the creation is refused too.

import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync, renameSync, rmSync, type Stats } from "node:fs";

/** A planted entry: `why` says what it is, for a message that names the file. */
export class PlantedFileError extends Error {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super(`${path}: ${why}; PAIO opens only regular files with one name here, so a link cannot lead it to another file`);
  }
}

const { O_RDONLY, O_RDWR, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = constants;

const FLAGS = {
  read: O_RDONLY,
  update: O_RDWR,
  append: O_WRONLY | O_APPEND | O_CREAT,
  create: O_WRONLY | O_CREAT | O_EXCL,
} as const;

export type OwnFileMode = keyof typeof FLAGS;

/** What a non-regular entry is, in words (lstat or stat results). */
export function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  return "not a regular file";
}

/** What a planted entry at `path` is ("a symbolic link to /etc/shadow", "a hard link (2 names)"), or undefined when it is a plain file or absent. */
export function plantedKind(path: string): string | undefined {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return undefined;
  }
  if (st.isSymbolicLink()) {
    let to = "";
    try {
      to = ` to ${readlinkSync(path)}`;
    } catch {
      // gone meanwhile
    }
    return `a symbolic link${to}`;
  }
  if (!st.isFile()) return kindOf(st);
  if (st.nlink > 1) return `a hard link (${st.nlink} names for one file)`;
  return undefined;
}

/**
 * Opens `path` as described above; returns the file descriptor. Throws a
 * PlantedFileError for a link or a special file, and the system's error
 * otherwise (ENOENT when `read`/`update` finds nothing there).
 */
export function openOwnFile(path: string, mode: OwnFileMode, perm = 0o640): number {
  let fd: number;
  try {
    fd = openSync(path, FLAGS[mode] | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, perm);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // ELOOP: the last component is a symbolic link. ENXIO: a FIFO with no reader, opened for writing.
    if (code === "ELOOP" || code === "ENXIO") throw new PlantedFileError(path, plantedKind(path) ?? "a symbolic link");
    throw e;
  }
  const st = fstatSync(fd);
  if (!st.isFile() || st.nlink > 1) {
    closeSync(fd);
    throw new PlantedFileError(path, st.isFile() ? `a hard link (${st.nlink} names for one file)` : kindOf(st));
  }
  return fd;
}

/**
 * Moves a planted entry out of the way (the link itself is renamed, never
 * what it points to) to `<path>.refused`, so a new file can be made in its
 * place. Returns what it was, or undefined when nothing needed moving.
 */
export function moveAsidePlanted(path: string): string | undefined {
  const what = plantedKind(path);
  if (!what) return undefined;
  renameSync(path, `${path}.refused`);
  return what;
}

/** Reads a whole file opened as above; refuses one larger than `maxBytes` (a model, a manifest) before reading it. */
export function readOwnFile(path: string, maxBytes: number): Buffer {
  const fd = openOwnFile(path, "read");
  try {
    const size = fstatSync(fd).size;
    if (size > maxBytes) throw new Error(`${path}: ${size} bytes, more than the ${maxBytes} allowed here`);
    const buf = Buffer.alloc(size);
    let n = 0;
    while (n < size) {
      const got = readSync(fd, buf, n, size - n, n);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates `path` anew for writing (a temporary file before a rename, say):
 * whatever stands under its name, a planted link included, is removed first
 * and never written through. Returns the file descriptor.
 */
export function createOwnFile(path: string, perm = 0o640): number {
  rmSync(path, { force: true, recursive: true });
  return openOwnFile(path, "create", perm);
}

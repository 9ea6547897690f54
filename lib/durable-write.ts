// Writing a file so that a power cut leaves either the old file or the whole
// new one: a temporary name beside it, fsync, rename.

import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";

export function writeDurably(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

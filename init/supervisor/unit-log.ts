// Where a unit's stdout and stderr go: straight into <log dir>/<unit>.log
// (/var/lib/paio/logs), opened in append mode for the unit itself. No pipe
// runs through the supervisor, so a unit never blocks or gets SIGPIPE when
// the supervisor dies or restarts, and logging goes on meanwhile. The
// supervisor rotates the file (to <unit>.log.1) when it grows past a limit;
// writers in append mode continue at the new end.

import { appendFileSync, closeSync, copyFileSync, mkdirSync, openSync, readSync, statSync, truncateSync, fstatSync } from "node:fs";
import { join } from "node:path";

export const LOG_LIMIT_BYTES = 1 << 20;

export function logPath(logDir: string, unit: string): string {
  return join(logDir, `${unit}.log`);
}

/** Opens the unit's log for appending (its torn tail repaired first); returns a file descriptor, or "ignore" if that fails. */
export function openUnitLog(logDir: string, unit: string): number | "ignore" {
  try {
    mkdirSync(logDir, { recursive: true });
    repairTornTail(logPath(logDir, unit));
    return openSync(logPath(logDir, unit), "a", 0o640);
  } catch {
    return "ignore";
  }
}

const TAIL_SCAN_BYTES = 1 << 20;

/**
 * A power cut can leave a log that ends in zero bytes: ext4 recorded the
 * file's new length, but the appended data never reached the disk. Before a
 * unit writes again, such a run of zeros is cut off, and one line says so
 * (the lines before it are whole; the ones it stood for are lost with the
 * power). Returns the number of bytes removed.
 */
export function repairTornTail(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, "r+");
  } catch {
    return 0;
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return 0;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    if (last[0] !== 0) return 0;
    const span = Math.min(size, TAIL_SCAN_BYTES);
    const buf = Buffer.alloc(span);
    readSync(fd, buf, 0, span, size - span);
    let i = span;
    while (i > 0 && buf[i - 1] === 0) i--;
    const keep = size - span + i;
    truncateSync(path, keep);
    const note = `${keep > 0 && buf[i - 1] !== 0x0a ? "\n" : ""}paio: ${size - keep} zero bytes at the end of this log (writes a power cut interrupted) were removed\n`;
    appendFileSync(path, note);
    return size - keep;
  } finally {
    closeSync(fd);
  }
}

/** Appends the supervisor's own lines about a unit (each starts "paio: ") to its log; a log that cannot be written is skipped. */
export function appendUnitLog(logDir: string, unit: string, lines: readonly string[]): void {
  if (lines.length === 0) return;
  try {
    mkdirSync(logDir, { recursive: true });
    appendFileSync(logPath(logDir, unit), lines.map((l) => `${l}\n`).join(""), { mode: 0o640 });
  } catch {
    // the unit's own output goes there too: nothing better to do
  }
}

/** Copies an over-long log to .1 and empties it; returns true if it rotated. */
export function rotateIfLarge(logDir: string, unit: string, limit = LOG_LIMIT_BYTES): boolean {
  const path = logPath(logDir, unit);
  try {
    if (statSync(path).size <= limit) return false;
    copyFileSync(path, `${path}.1`);
    truncateSync(path, 0);
    return true;
  } catch {
    return false;
  }
}

/** The last `n` lines of the unit's log (reading at most the last 256 KiB). */
export function tailLines(logDir: string, unit: string, n: number): string[] {
  let fd: number | undefined;
  try {
    fd = openSync(logPath(logDir, unit), "r");
    const size = fstatSync(fd).size;
    const len = Math.min(size, 256 * 1024);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString("utf8").split("\n");
    if (lines.at(-1) === "") lines.pop();
    return lines.slice(-n);
  } catch {
    return [];
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Follows a log from its current end: calls onLines with new complete lines. Returns a stop function. */
export function followLog(logDir: string, unit: string, onLines: (lines: string[]) => void, pollMs = 250): () => void {
  const path = logPath(logDir, unit);
  let offset = 0;
  try {
    offset = statSync(path).size;
  } catch {
    // not written yet
  }
  let partial = "";
  const timer = setInterval(() => {
    let fd: number | undefined;
    try {
      const size = statSync(path).size;
      if (size < offset) offset = 0; // rotated
      if (size === offset) return;
      fd = openSync(path, "r");
      const buf = Buffer.alloc(Math.min(size - offset, 1 << 20));
      const got = readSync(fd, buf, 0, buf.length, offset);
      offset += got;
      const parts = (partial + buf.subarray(0, got).toString("utf8")).split("\n");
      partial = parts.pop() ?? "";
      if (parts.length) onLines(parts);
    } catch {
      // not there yet
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }, pollMs);
  return () => clearInterval(timer);
}

// Where a unit's stdout and stderr go: straight into <log dir>/<unit>.log
// (/var/lib/paio/logs), opened in append mode for the unit itself. No pipe
// runs through the supervisor, so a unit never blocks or gets SIGPIPE when
// the supervisor dies or restarts, and logging goes on meanwhile. The
// supervisor rotates the file (to <unit>.log.1) when it grows past a limit;
// writers in append mode continue at the new end.
//
// The supervisor runs as root, so every log is opened through
// lib/own-file.ts: a symbolic link, a hard link or a FIFO planted under a
// log's name is moved aside (to <unit>.log.refused) and never written to or
// read from, so it cannot lead the supervisor to another file (`paio logs`
// reading /etc/shadow for a member of group paio, a unit's output appended
// to the knowledge base).

import { closeSync, fstatSync, ftruncateSync, lstatSync, mkdirSync, readSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { moveAsidePlanted, openOwnFile } from "../../lib/own-file.ts";

export const LOG_LIMIT_BYTES = 1 << 20;

export function logPath(logDir: string, unit: string): string {
  return join(logDir, `${unit}.log`);
}

/**
 * Opens the unit's log for appending (its torn tail repaired first); returns
 * a file descriptor, or "ignore" if that fails. A planted entry under the
 * log's name is moved aside first, and `say` tells the console.
 */
export function openUnitLog(logDir: string, unit: string, say: (line: string) => void = () => {}): number | "ignore" {
  const path = logPath(logDir, unit);
  try {
    mkdirSync(logDir, { recursive: true });
    const planted = moveAsidePlanted(path);
    if (planted) say(`${unit}: its log ${path} was ${planted}; moved aside to ${path}.refused and a new log started (the supervisor never writes through a link)`);
    repairTornTail(path);
    return openOwnFile(path, "append");
  } catch {
    return "ignore";
  }
}

const TAIL_SCAN_BYTES = 1 << 20;

/** How the line that follows a torn last line begins (readers of a log recognise it by this). */
export const CUT_SHORT_MARK = "paio: the line above was cut short";
/** What ends a log's last line when its writer stopped in the middle of it. */
export const CUT_SHORT_NOTE = `${CUT_SHORT_MARK} (its writer stopped in the middle of it: a crash or a power cut)\n`;

/**
 * A power cut can leave a log that ends in zero bytes: ext4 recorded the
 * file's new length, but the appended data never reached the disk. Before a
 * unit writes again, such a run of zeros is cut off, and one line says so
 * (the lines before it are whole; the ones it stood for are lost with the
 * power). A log whose last line lacks its newline (a write the power cut or a
 * crash tore, "li" of "line 12") gets the newline and a line that says so, so
 * the unit's next line starts a line of its own instead of running on from
 * the torn one ("liline 12"). Returns the number of bytes removed.
 */
export function repairTornTail(path: string): number {
  let fd: number;
  try {
    fd = openOwnFile(path, "update");
  } catch {
    return 0;
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return 0;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    if (last[0] === 0x0a) return 0;
    if (last[0] !== 0) {
      writeSync(fd, `\n${CUT_SHORT_NOTE}`, size);
      return 0;
    }
    const span = Math.min(size, TAIL_SCAN_BYTES);
    const buf = Buffer.alloc(span);
    readSync(fd, buf, 0, span, size - span);
    let i = span;
    while (i > 0 && buf[i - 1] === 0) i--;
    const keep = size - span + i;
    ftruncateSync(fd, keep);
    const note = `${keep > 0 && buf[i - 1] !== 0x0a ? "\n" : ""}paio: ${size - keep} zero bytes at the end of this log (writes a power cut interrupted) were removed\n`;
    writeSync(fd, note, keep);
    return size - keep;
  } finally {
    closeSync(fd);
  }
}

/** Appends the supervisor's own lines about a unit (each starts "paio: ") to its log; a log that cannot be written is skipped. */
export function appendUnitLog(logDir: string, unit: string, lines: readonly string[]): void {
  if (lines.length === 0) return;
  let fd: number | undefined;
  try {
    mkdirSync(logDir, { recursive: true });
    fd = openOwnFile(logPath(logDir, unit), "append");
    writeSync(fd, lines.map((l) => `${l}\n`).join(""));
  } catch {
    // the unit's own output goes there too (and a planted entry is moved aside at its next start): nothing better to do
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Copies an over-long log to .1 and empties it; returns true if it rotated. */
export function rotateIfLarge(logDir: string, unit: string, limit = LOG_LIMIT_BYTES): boolean {
  const path = logPath(logDir, unit);
  let fd: number | undefined;
  let out: number | undefined;
  try {
    if (lstatSync(path).size <= limit) return false;
    fd = openOwnFile(path, "update");
    // .1 is made anew: whatever stands under its name (a link, say) is removed, not written through.
    rmSync(`${path}.1`, { force: true, recursive: true });
    out = openOwnFile(`${path}.1`, "create");
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(size, 1 << 20));
    for (let at = 0; at < size; ) {
      const got = readSync(fd, buf, 0, Math.min(buf.length, size - at), at);
      if (got === 0) break;
      writeSync(out, buf, 0, got);
      at += got;
    }
    ftruncateSync(fd, 0);
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
    if (out !== undefined) closeSync(out);
  }
}

/** The last `n` lines of the unit's log (reading at most the last 256 KiB). */
export function tailLines(logDir: string, unit: string, n: number): string[] {
  let fd: number | undefined;
  try {
    fd = openOwnFile(logPath(logDir, unit), "read");
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
    offset = lstatSync(path).size;
  } catch {
    // not written yet
  }
  let partial = "";
  const timer = setInterval(() => {
    let fd: number | undefined;
    try {
      const size = lstatSync(path).size;
      if (size < offset) offset = 0; // rotated
      if (size === offset) return;
      fd = openOwnFile(path, "read");
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

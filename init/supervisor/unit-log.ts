// Where a unit's stdout and stderr go: straight into <run dir>/log/<unit>.log,
// opened in append mode by the unit itself. No pipe runs through the
// supervisor, so a unit never blocks or gets SIGPIPE when the supervisor dies
// or restarts. The supervisor rotates the file (to <unit>.log.1) when it
// grows past a limit; writers in append mode continue at the new end.

import { copyFileSync, mkdirSync, openSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";

export const LOG_LIMIT_BYTES = 1 << 20;

export function logPath(runDir: string, unit: string): string {
  return join(runDir, "log", `${unit}.log`);
}

/** Opens the unit's log for appending; returns a file descriptor, or "ignore" if that fails. */
export function openUnitLog(runDir: string, unit: string): number | "ignore" {
  try {
    mkdirSync(join(runDir, "log"), { recursive: true });
    return openSync(logPath(runDir, unit), "a", 0o640);
  } catch {
    return "ignore";
  }
}

/** Copies an over-long log to .1 and empties it; returns true if it rotated. */
export function rotateIfLarge(runDir: string, unit: string, limit = LOG_LIMIT_BYTES): boolean {
  const path = logPath(runDir, unit);
  try {
    if (statSync(path).size <= limit) return false;
    copyFileSync(path, `${path}.1`);
    truncateSync(path, 0);
    return true;
  } catch {
    return false;
  }
}

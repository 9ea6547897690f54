// The supervisor's record of running units, in /run/paio/supervisor.json.
// A supervisor that PID 1 restarts reads it to take back the units that are
// still running instead of starting second copies.

import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface UnitRecord {
  pid: number;
  startTime: number;
  exec: string[];
}

export interface StateFile {
  supervisorPid: number;
  units: Record<string, UnitRecord>;
}

export function statePath(runDir: string): string {
  return join(runDir, "supervisor.json");
}

export function readState(runDir: string): StateFile | undefined {
  try {
    const data = JSON.parse(readFileSync(statePath(runDir), "utf8")) as StateFile;
    if (typeof data !== "object" || data === null || typeof data.units !== "object") return undefined;
    return data;
  } catch {
    return undefined;
  }
}

/** Written to a temporary file and renamed, so a reader never sees half a file. */
export function writeState(runDir: string, state: StateFile): void {
  const path = statePath(runDir);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 1) + "\n");
  renameSync(tmp, path);
}

// Facts about processes read from /proc.

import { readFileSync } from "node:fs";

/**
 * The process's start time (field 22 of /proc/PID/stat, in clock ticks since
 * boot), or undefined if it is gone. A PID plus its start time names one
 * process for good, even after the PID is reused.
 */
export function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const state = fields[0];
    if (state === "Z" || state === "X") return undefined; // exited, not yet reaped
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

export function uptimeSeconds(): number {
  try {
    return Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
  } catch {
    return process.uptime();
  }
}

// The update journal: one JSON object per line in /var/lib/paio/update/journal.jsonl
// (on the data partition, so both system slots read and append it). Every step of
// an update is written here by the program that saw it: `paio update` (install,
// rollback), the supervisor's health gate (trial, commit, trial failure) and
// PID 1 (a trial whose supervisor never ran). The agent turns these lines into
// incidents and audit records, and `paio why update` explains from them.
//
// Lines are appended with O_APPEND in one write, so a power cut loses at most
// the last line; a line that does not parse (a torn write) is skipped by readers.

import { appendFileSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync } from "node:fs";
import { dirname, join } from "node:path";

export const UPDATE_DIR = process.env.PAIO_UPDATE_DIR ?? "/var/lib/paio/update";
export const JOURNAL = join(UPDATE_DIR, "journal.jsonl");

/** A system slot by its RAUC boot name. */
export type SlotName = "A" | "B";

export type UpdateEvent =
  /** `paio update install` began; nothing is written to a slot yet. */
  | { kind: "install-started"; at: number; source: string; slot: SlotName; from: string }
  /** The bundle was refused or the install failed; the running system is unchanged. */
  | { kind: "install-failed"; at: number; source: string; reason: string }
  /** The bundle is in `slot`, which boots next on trial. */
  | { kind: "installed"; at: number; version: string; slot: SlotName; seconds: number }
  /** The first boot of a new slot reached the supervisor: the health gate is running. */
  | { kind: "trial-started"; at: number; version: string; slot: SlotName }
  /** The health gate passed: the slot is marked good and stays the one that boots. */
  | { kind: "committed"; at: number; version: string; slot: SlotName; seconds: number }
  /** The trial failed (a unit never got healthy, the agent is not running, PID 1 gave up on
   *  the supervisor); the slot is marked bad and the device reboots into the other one. */
  | { kind: "trial-failed"; at: number; version?: string; slot: SlotName; reason: string }
  /** The device runs `to` again after `from` failed; written on the first boot after the fallback. */
  | { kind: "rolled-back"; at: number; from: { slot: SlotName; version?: string }; to: { slot: SlotName; version: string }; reason: string }
  /** A person asked for the other slot (`paio update rollback`); it boots next. */
  | { kind: "rollback-requested"; at: number; from: { slot: SlotName; version: string }; to: { slot: SlotName; version: string } };

export type UpdateEventKind = UpdateEvent["kind"];

/** Whether the file's last byte is a newline (or the file is empty or missing). */
function endsWithNewline(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const size = fstatSync(fd).size;
    if (size === 0) return true;
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, size - 1);
    return b[0] === 0x0a;
  } catch {
    return true;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Appends one event (one write, so lines never interleave). After a line torn
 * by a power cut, the new event starts on a line of its own.
 */
export function appendEvent(ev: UpdateEvent, file = JOURNAL): void {
  mkdirSync(dirname(file), { recursive: true });
  const line = JSON.stringify(ev) + "\n";
  appendFileSync(file, endsWithNewline(file) ? line : "\n" + line, { mode: 0o644 });
}

/** Every event that parses, oldest first; torn or foreign lines are skipped. */
export function readEvents(file = JOURNAL): UpdateEvent[] {
  if (!existsSync(file)) return [];
  const out: UpdateEvent[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      const ev = JSON.parse(line) as UpdateEvent;
      if (ev && typeof ev === "object" && typeof ev.kind === "string" && typeof ev.at === "number") out.push(ev);
    } catch {
      // a line torn by a power cut
    }
  }
  return out;
}

/** One event in a sentence a person reads (the agent's incident text, `paio update status`). */
export function describeEvent(ev: UpdateEvent): string {
  switch (ev.kind) {
    case "install-started":
      return `installing ${ev.source} into slot ${ev.slot} (running ${ev.from})`;
    case "install-failed":
      return `the update from ${ev.source} was not installed: ${ev.reason}`;
    case "installed":
      return `version ${ev.version} was installed into slot ${ev.slot} in ${ev.seconds.toFixed(1)} s; it boots next, on trial`;
    case "trial-started":
      return `version ${ev.version} (slot ${ev.slot}) booted on trial; waiting for its health checks`;
    case "committed":
      return `version ${ev.version} (slot ${ev.slot}) passed its health checks ${ev.seconds.toFixed(0)} s after boot and is now the system`;
    case "trial-failed":
      return `version ${ev.version ?? "?"} (slot ${ev.slot}) failed its trial: ${ev.reason}`;
    case "rolled-back":
      return `back on version ${ev.to.version} (slot ${ev.to.slot}) because version ${ev.from.version ?? "?"} (slot ${ev.from.slot}) failed: ${ev.reason}`;
    case "rollback-requested":
      return `a person asked to go back from version ${ev.from.version} (slot ${ev.from.slot}) to ${ev.to.version} (slot ${ev.to.slot}); it boots next`;
  }
}

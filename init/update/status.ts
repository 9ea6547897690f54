// `paio update status`: the slots, their versions and states, which one runs,
// which boots next, and the last thing the update journal recorded.

import type { SlotInfo, UpdateStatus } from "./api.ts";
import { entryState, primarySlot, readEntries, SLOTS, slotEntry, type BootEntry } from "./boot-entries.ts";
import { bootedSlot, runningVersion, slotDevice, unsupportedReason, withEsp } from "./device.ts";
import { describeEvent, readEvents } from "./journal.ts";

/** The status from a list of boot entries (the ESP's), for the running system. */
export function statusFrom(entries: BootEntry[], version: string, booted = bootedSlot(), devices = true): UpdateStatus {
  const primary = primarySlot(entries);
  const slots: SlotInfo[] = SLOTS.map((name) => {
    const e = slotEntry(entries, name);
    return {
      name,
      device: devices ? slotDevice(name) : undefined,
      version: e?.version,
      booted: booted === name,
      primary: primary === name,
      state: entryState(e),
      triesLeft: e?.triesLeft,
    };
  });
  const events = readEvents();
  const lastEv = events[events.length - 1];
  return { supported: true, version, booted, slots, last: lastEv && { event: lastEv, text: describeEvent(lastEv) } };
}

export function updateStatus(): UpdateStatus {
  const version = runningVersion();
  const why = unsupportedReason();
  if (why) return { supported: false, reason: why, version, booted: bootedSlot(), slots: [] };
  const entries = withEsp(false, readEntries);
  return statusFrom(entries, version, bootedSlot(), !process.env.PAIO_ESP_DIR);
}

/** The status as a person reads it. */
export function formatStatus(s: UpdateStatus): string {
  if (!s.supported) return `PAIO ${s.version}: updates are not available here: ${s.reason}`;
  const lines = [`PAIO ${s.version}, running from slot ${s.booted ?? "?"}`];
  for (const slot of s.slots) {
    const what = [
      slot.version ? `version ${slot.version}` : "no version",
      slot.state === "trial" ? `on trial (${slot.triesLeft} boot${slot.triesLeft === 1 ? "" : "s"} left)` : slot.state,
      slot.booted ? "running" : "",
      slot.primary ? "boots next" : "",
    ].filter(Boolean);
    lines.push(`  slot ${slot.name}${slot.device ? ` (${slot.device})` : ""}: ${what.join(", ")}`);
  }
  if (s.last) lines.push(`last: ${s.last.text} (${new Date(s.last.event.at).toISOString().replace(/\.\d+Z$/, "Z")})`);
  return lines.join("\n");
}

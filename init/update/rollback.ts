// `paio update rollback`: the other slot boots next. Only a slot that was
// committed (it ran and passed its health gate) is a place to go back to.

import type { RollbackResult } from "./api.ts";
import { entryState, otherSlot, readEntries, setPrimary, slotEntry } from "./boot-entries.ts";
import { bootedSlot, runningVersion, unsupportedReason, withEsp } from "./device.ts";
import { appendEvent } from "./journal.ts";

export function requestRollback(): RollbackResult {
  const why = unsupportedReason();
  if (why) return { ok: false, reason: why };
  const from = bootedSlot();
  if (!from) return { ok: false, reason: "the running slot is unknown (no rauc.slot= on the kernel command line)" };
  const to = otherSlot(from);
  return withEsp(true, (esp) => {
    const e = slotEntry(readEntries(esp), to);
    const state = entryState(e);
    if (state !== "good") {
      const what = { empty: "holds no version yet", bad: "is marked bad (its version failed)", trial: "was never committed" }[state];
      return { ok: false, reason: `slot ${to} ${what}, so there is no previous version to go back to` };
    }
    setPrimary(esp, to);
    const version = e!.version ?? "unknown";
    appendEvent({ kind: "rollback-requested", at: Date.now(), from: { slot: from, version: runningVersion() }, to: { slot: to, version } });
    return { ok: true, from, to, version };
  });
}

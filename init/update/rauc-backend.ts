// RAUC's "custom" bootloader backend (system.conf: bootloader=custom,
// bootloader-custom-backend=/usr/libexec/paio/rauc-backend): RAUC runs it as
//   rauc-backend get-primary | get-current | get-state SLOT | set-state SLOT good|bad | set-primary SLOT
// and reads a slot's boot name (A, B) or a state (good, bad) from its output.
// It keeps systemd-boot's entries on the ESP (boot-entries.ts):
//   set-state X bad   (before RAUC writes X)   X's entry gets no tries left
//   set-primary X     (after RAUC wrote X)     X's kernel and initramfs go to the ESP,
//                                              and X gets a trial entry that boots next
//   set-state X good  (the health gate)        X's entry loses its counter

import { entryState, markBad, markGood, primarySlot, readEntries, setPrimary, slotEntry } from "./boot-entries.ts";
import { bootedSlot, readSlotContents, withEsp } from "./device.ts";
import type { SlotName } from "./journal.ts";

const USAGE = "usage: rauc-backend get-primary | get-current | get-state SLOT | set-state SLOT good|bad | set-primary SLOT";

function slotArg(v: string | undefined): SlotName {
  if (v !== "A" && v !== "B") throw new Error(`'${v ?? ""}' is not a slot (A or B)\n${USAGE}`);
  return v;
}

/** Runs one backend command; returns what to print. */
export function backend(args: string[]): string {
  const [cmd, a, b] = args;
  switch (cmd) {
    case "get-primary": {
      const p = withEsp(false, (esp) => primarySlot(readEntries(esp)));
      if (!p) throw new Error("the EFI system partition has no PAIO boot entry");
      return p;
    }
    case "get-current": {
      const s = bootedSlot();
      if (!s) throw new Error("no rauc.slot= on the kernel command line");
      return s;
    }
    case "get-state": {
      const slot = slotArg(a);
      const st = withEsp(false, (esp) => entryState(slotEntry(readEntries(esp), slot)));
      return st === "good" || st === "trial" ? "good" : "bad";
    }
    case "set-state": {
      const slot = slotArg(a);
      if (b !== "good" && b !== "bad") throw new Error(`set-state takes good or bad, not '${b ?? ""}'\n${USAGE}`);
      withEsp(true, (esp) => (b === "good" ? markGood(esp, slot) : markBad(esp, slot)));
      return "";
    }
    case "set-primary": {
      const slot = slotArg(a);
      withEsp(true, (esp) => {
        const st = entryState(slotEntry(readEntries(esp), slot));
        // A slot RAUC has just written (it marked it bad first) brings its own kernel.
        if (st === "bad" || st === "empty") setPrimary(esp, slot, readSlotContents(slot));
        else setPrimary(esp, slot);
      });
      return "";
    }
    default:
      throw new Error(USAGE);
  }
}

export function backendMain(args: string[]): number {
  try {
    const out = backend(args);
    if (out) console.log(out);
    return 0;
  } catch (e) {
    console.error(`rauc-backend: ${(e as Error).message}`);
    return 1;
  }
}

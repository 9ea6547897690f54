// What the rest of PAIO (the `paio update` command, the agent's update.* tools,
// the console) may ask of the update system. The implementations live beside
// this file; this is the contract.

import type { SlotName, UpdateEvent } from "./journal.ts";

export type { SlotName, UpdateEvent } from "./journal.ts";

/** One system slot as the device sees it. */
export interface SlotInfo {
  name: SlotName;
  /** The block device (e.g. /dev/vda2), when found. */
  device?: string;
  /** The PAIO version in the slot, when known (from its boot entry). */
  version?: string;
  /** The slot the running system booted from. */
  booted: boolean;
  /** The slot that boots next. */
  primary: boolean;
  /** good: committed; trial: installed, not yet through its health gate (tries left);
   *  bad: failed or being written; empty: never installed. */
  state: "good" | "bad" | "trial" | "empty";
  /** Boot tries left while on trial. */
  triesLeft?: number;
}

export interface UpdateStatus {
  /** False on a device without two system slots (the Raspberry Pi image); `reason` says why. */
  supported: boolean;
  reason?: string;
  /** The running version (/etc/paio/release). */
  version: string;
  booted?: SlotName;
  slots: SlotInfo[];
  /** The latest journal event, with its sentence. */
  last?: { event: UpdateEvent; text: string };
}

export type InstallResult = { ok: true; version: string; slot: SlotName; seconds: number } | { ok: false; reason: string };
export type RollbackResult = { ok: true; from: SlotName; to: SlotName; version: string } | { ok: false; reason: string };

export interface InstallOptions {
  allowDowngrade?: boolean;
  /** Progress of a download or install, 0..100, with what is happening. */
  progress?: (percent: number, what: string) => void;
}

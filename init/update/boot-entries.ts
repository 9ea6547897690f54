// The two system slots as the bootloader sees them: systemd-boot entries on the
// EFI system partition (ESP), one per slot, with systemd-boot's boot counting.
//
//   loader/entries/paio-a.conf        slot A, committed ("good"): no counter
//   loader/entries/paio-b+3.conf      slot B, on trial: 3 boots left
//   loader/entries/paio-b+1-2.conf    ... after two boots that did not commit
//   loader/entries/paio-b+0-3.conf    ... tries spent: "bad"
//   paio/a/vmlinuz, paio/a/initrd.img the slot's kernel and initramfs
//
// systemd-boot renames a counted entry before it boots it (one try fewer), sorts
// entries with no tries left after all others, then by `sort-key`, then by
// `version`, newest first; with no `default` in loader.conf it boots the first.
// So the slot that boots next is the one with the highest version number (the
// generation below) that is not bad, and a trial that keeps failing falls back
// to the other slot by itself. PAIO writes `version` as a generation counter:
// making a slot primary gives it the highest number.
//
// Everything here works on a directory (the mounted ESP), so it is tested on
// plain files; esp.ts mounts the real partition.

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { writeDurably } from "../../lib/durable-write.ts";
import { join } from "node:path";
import type { SlotName } from "./journal.ts";

export const SLOTS: readonly SlotName[] = ["A", "B"];
/** Boots a new slot gets before the bootloader gives up on it. */
export const TRIES = 3;
const ENTRIES = "loader/entries";
const NAME = /^paio-([ab])(?:\+(\d+)(?:-(\d+))?)?\.conf$/;

export interface BootEntry {
  slot: SlotName;
  /** The file name under loader/entries. */
  file: string;
  /** Boot counting: tries left and done; undefined for a committed entry. */
  triesLeft?: number;
  triesDone?: number;
  /** The `version` line: the generation number that orders the slots. */
  generation: number;
  /** The PAIO version in the slot (from the entry's title). */
  version?: string;
  /** The kernel command line. */
  options: string;
}

export type EntryState = "good" | "trial" | "bad" | "empty";

export class BootEntryError extends Error {}

/** The lowercase letter used in file and partition names. */
export const letter = (slot: SlotName): string => slot.toLowerCase();
export const otherSlot = (slot: SlotName): SlotName => (slot === "A" ? "B" : "A");

/** Parses one entry file's text; fields PAIO does not use are kept in `options` only. */
export function parseEntry(file: string, text: string): BootEntry | undefined {
  const m = NAME.exec(file);
  if (!m) return undefined;
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (!t || t.startsWith("#")) continue;
    const sp = t.search(/\s/);
    if (sp > 0) fields.set(t.slice(0, sp), t.slice(sp).trim());
  }
  const gen = Number(fields.get("version"));
  const title = fields.get("title") ?? "";
  return {
    slot: m[1]!.toUpperCase() as SlotName,
    file,
    triesLeft: m[2] === undefined ? undefined : Number(m[2]),
    triesDone: m[2] === undefined ? undefined : Number(m[3] ?? 0),
    generation: Number.isInteger(gen) && gen >= 0 ? gen : 0,
    version: /^PAIO (\S+)/.exec(title)?.[1],
    options: fields.get("options") ?? "",
  };
}

/** Every PAIO entry on the ESP mounted at `esp`; other files are left alone. */
export function readEntries(esp: string): BootEntry[] {
  const dir = join(esp, ENTRIES);
  if (!existsSync(dir)) return [];
  const out: BootEntry[] = [];
  for (const f of readdirSync(dir)) {
    // Names are matched without regard to case, as FAT does.
    const e = parseEntry(f.toLowerCase(), readFileSync(join(dir, f), "utf8"));
    if (e) out.push({ ...e, file: f });
  }
  return out;
}

const isBad = (e: BootEntry) => e.triesLeft === 0;

/** The order systemd-boot puts the entries in; it boots the first. */
export function bootOrder(entries: BootEntry[]): BootEntry[] {
  return [...entries].sort((a, b) => {
    if (isBad(a) !== isBad(b)) return isBad(a) ? 1 : -1;
    if (a.generation !== b.generation) return b.generation - a.generation;
    // Same generation (an interrupted commit left two files): the committed one first.
    if ((a.triesLeft === undefined) !== (b.triesLeft === undefined)) return a.triesLeft === undefined ? -1 : 1;
    return (b.triesLeft ?? 0) - (a.triesLeft ?? 0);
  });
}

/** The slot's entry; a committed one wins over a counted one left by an interrupted commit. */
export function slotEntry(entries: BootEntry[], slot: SlotName): BootEntry | undefined {
  return bootOrder(entries.filter((e) => e.slot === slot))[0];
}

export function entryState(e: BootEntry | undefined): EntryState {
  if (!e) return "empty";
  if (e.triesLeft === undefined) return "good";
  return e.triesLeft > 0 ? "trial" : "bad";
}

/** The slot systemd-boot boots next, if any entry exists. */
export function primarySlot(entries: BootEntry[]): SlotName | undefined {
  return bootOrder(entries)[0]?.slot;
}

function entryText(slot: SlotName, version: string, generation: number, options: string): string {
  const l = letter(slot);
  return [
    `# PAIO system slot ${slot}: written by the update system (docs/updates.md)`,
    `title PAIO ${version} (slot ${slot})`,
    "sort-key paio",
    `version ${generation}`,
    `linux /paio/${l}/vmlinuz`,
    `initrd /paio/${l}/initrd.img`,
    `options ${options}`,
    "",
  ].join("\n");
}

/** The command line for `slot`: the other's, with root, rauc.slot and paio.trial set for this one. */
export function slotOptions(base: string, slot: SlotName, trial: boolean): string {
  const kept = base.split(/\s+/).filter((w) => w && !/^(root|rauc\.slot|paio\.trial)=/.test(w));
  return [...kept, `root=PARTLABEL=paio-root-${letter(slot)}`, `rauc.slot=${slot}`, ...(trial ? ["paio.trial=1"] : [])].join(" ");
}


function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // vfat directories cannot always be fsynced; unmounting flushes them
  }
}

function entryPath(esp: string, file: string): string {
  return join(esp, ENTRIES, file);
}

/** Replaces every entry of `slot` with one file named `file`. */
function replaceSlotEntries(esp: string, slot: SlotName, file: string, text: string): void {
  const old = readEntries(esp).filter((e) => e.slot === slot);
  mkdirSync(join(esp, ENTRIES), { recursive: true });
  writeDurably(entryPath(esp, file), text);
  for (const e of old) if (e.file !== file) rmSync(entryPath(esp, e.file), { force: true });
  syncDir(join(esp, ENTRIES));
}

/**
 * Marks a slot not bootable (RAUC does this before it writes the slot, and the
 * health gate when a trial fails): its entry keeps its text but has no tries
 * left, so systemd-boot sorts it last and `paio update status` still shows
 * what it held.
 */
export function markBad(esp: string, slot: SlotName): void {
  const e = slotEntry(readEntries(esp), slot);
  if (!e || e.triesLeft === 0) return;
  const text = readFileSync(entryPath(esp, e.file), "utf8");
  replaceSlotEntries(esp, slot, `paio-${letter(slot)}+0-${(e.triesDone ?? 0) + (e.triesLeft ?? 0)}.conf`, text);
}

/** Commits a slot: its entry loses the counter and paio.trial, so it boots until another is made primary. */
export function markGood(esp: string, slot: SlotName): void {
  const entries = readEntries(esp);
  const e = slotEntry(entries, slot);
  if (!e) throw new BootEntryError(`slot ${slot} has no boot entry on the EFI system partition; it was never installed`);
  if (e.triesLeft === undefined && !/\bpaio\.trial=1\b/.test(e.options)) return;
  replaceSlotEntries(esp, slot, `paio-${letter(slot)}.conf`, entryText(slot, e.version ?? "unknown", e.generation, slotOptions(e.options, slot, false)));
}

export interface NewSlotContents {
  /** The PAIO version in the slot. */
  version: string;
  vmlinuz: Uint8Array;
  initrd: Uint8Array;
}

/**
 * Makes `slot` the one that boots next. With `contents` (RAUC has just written
 * the slot): its kernel and initramfs go to paio/<slot>/ and it gets a trial
 * entry with TRIES boots. Without (going back to a slot that is already
 * there): its entry only gets the highest generation.
 */
export function setPrimary(esp: string, slot: SlotName, contents?: NewSlotContents): void {
  const entries = readEntries(esp);
  const generation = Math.max(0, ...entries.map((e) => e.generation)) + 1;
  const current = slotEntry(entries, slot);
  if (!contents) {
    if (!current || current.triesLeft === 0) throw new BootEntryError(`slot ${slot} is ${entryState(current) === "empty" ? "empty" : "marked bad"}; install an update into it first`);
    const text = readFileSync(entryPath(esp, current.file), "utf8").replace(/^version .*$/m, `version ${generation}`);
    replaceSlotEntries(esp, slot, current.file, text);
    return;
  }
  const base = slotEntry(entries, otherSlot(slot))?.options ?? current?.options;
  if (!base) throw new BootEntryError("no boot entry to take the kernel command line from (loader/entries/paio-a.conf is missing)");
  const dir = join(esp, "paio", letter(slot));
  mkdirSync(dir, { recursive: true });
  writeDurably(join(dir, "vmlinuz"), contents.vmlinuz);
  writeDurably(join(dir, "initrd.img"), contents.initrd);
  syncDir(dir);
  replaceSlotEntries(esp, slot, `paio-${letter(slot)}+${TRIES}.conf`, entryText(slot, contents.version, generation, slotOptions(base, slot, true)));
}

/** The first entry of a fresh image: slot A, committed. */
export function firstEntryText(version: string, options: string): string {
  return entryText("A", version, 1, slotOptions(options, "A", false));
}

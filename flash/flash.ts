// `paio flash IMAGE TARGET`, start to end: look at the image and the target,
// apply the safety rules, load the first-boot settings, show what will be
// erased and ask, unmount, write with bmaptool, read every range back, then
// write the settings into the boot partition. Nothing touches the target
// before the person has said yes and every check has passed.

import { closeSync, openSync, fsyncSync, statSync, truncateSync } from "node:fs";
import { basename } from "node:path";
import { checkTarget, type Decision, type FlashOptions, type ImageFacts, type Refusal, type TargetFacts } from "./safety.ts";
import { fileIdentity, readHost, targetFacts } from "./host.ts";
import { ImageError, inspectImage, type ImageInfo } from "./image.ts";
import { human } from "./format.ts";
import { loadSettings, SettingsError, type FlashSettingsInput } from "./provision.ts";
import {
  WriteError, bmapCopy, digHoles, openTarget, probeExclusive, syncAndDropCache, unmountAll, verifyRanges, verifyWhole,
  type VerifyResult,
} from "./write.ts";
import { findDevice, type HostState } from "./lsblk.ts";

export interface FlashRequest extends FlashOptions {
  image: string;
  target: string;
  /** --bmap FILE */
  bmap?: string;
  noBmap: boolean;
  /** --yes: no question. */
  yes: boolean;
  /** --dry-run: every check, then stop. */
  dryRun: boolean;
  settings: FlashSettingsInput;
}

export interface Ui {
  /** A line for the person (stderr). */
  say(line: string): void;
  /** Progress of a phase; called often, the UI decides what to draw. */
  progress(what: "writing" | "verifying", done: number, total: number): void;
  /** Asks the person to type `expected` (or one of `accepted`); true when they did. */
  confirm(prompt: string, accepted: string[]): Promise<boolean>;
}

/** The flash was refused before anything was written: every reason, each with what to do. */
export class FlashRefused extends Error {
  constructor(readonly refusals: Refusal[]) {
    super(refusals.map((r) => r.reason).join("; "));
  }
}

export interface FlashResult {
  image: ImageInfo;
  target: string;
  /** true when --dry-run stopped before writing. */
  dryRun: boolean;
  writeSeconds: number;
  verify?: VerifyResult;
  /** For a file target: bytes it holds on disk (it stays sparse). */
  allocated?: number;
  /** What the first-boot settings wrote. */
  settings: string[];
  unmounted: string[];
}

const EMPTY_HOST: HostState = { devices: [], mounts: [], swaps: [], loops: {}, mmcTypes: {} };

function refuse(rule: Refusal["rule"], reason: string, remedy: string): never {
  throw new FlashRefused([{ rule, reason, remedy }]);
}

/** What will happen, for the person to read before saying yes. */
function plan(req: FlashRequest, info: ImageInfo, decision: Decision): string[] {
  const t = decision.target;
  const lines: string[] = [];
  const how = info.bmap
    ? `${human(info.written)} of ${human(info.size)} mapped, bmap ${info.bmapPath}`
    : `${human(info.size)}, no bmap: every block is written`;
  lines.push(`image:  ${info.path}${info.compression !== "none" ? ` (${info.compression}, streamed)` : ""}: ${how}`);
  if (t.kind === "block") {
    lines.push(`target: ${decision.erases[0] ?? t.path}`);
    const parts = decision.erases.slice(1);
    lines.push(parts.length ? "everything on it will be erased:" : "everything on it will be erased (no partitions or file systems seen on it).");
    lines.push(...parts);
  } else if (t.kind === "file") {
    lines.push(`target: ${t.path}, a file of ${human(t.size)}: its content will be replaced by the image${t.size > info.size ? ` (it keeps its size of ${human(t.size)})` : ""}`);
  } else {
    lines.push(`target: ${req.target}, a new file (sparse, ${human(info.size)})`);
  }
  for (const m of decision.unmount) lines.push(`first unmounts ${m.path} from ${m.mountpoint} (--unmount)`);
  return lines;
}

/**
 * After the question, which can take a while: the same drive must still be
 * there (same size, model and serial: a card swapped meanwhile is another
 * drive) and pass the same rules.
 */
function recheck(facts: TargetFacts, before: Decision, image: ImageFacts, req: FlashRequest): void {
  const host = readHost();
  const was = before.device!;
  const now = facts.kind === "block" ? findDevice(host.devices, facts.rdev) : undefined;
  if (!now || now.size !== was.size || now.serial !== was.serial || now.model !== was.model) {
    refuse("not-confirmed", `${req.target} changed while you were asked (${now ? "another medium" : "it is gone"})`, "check the drive with 'bin/paio flash --list' and run the command again");
  }
  const again = checkTarget(host, facts, image, { unmount: req.unmount, allowFixed: req.allowFixed });
  if (again.refusals.length) throw new FlashRefused(again.refusals);
  before.unmount = again.unmount;
}

export async function flash(req: FlashRequest, ui: Ui): Promise<FlashResult> {
  let info: ImageInfo;
  try {
    info = await inspectImage(req.image, { bmap: req.bmap, noBmap: req.noBmap });
  } catch (e) {
    if (e instanceof ImageError) refuse("bad-image", e.message, e.remedy);
    throw e;
  }
  const facts = targetFacts(req.target);
  const isBlock = facts.kind === "block";
  const host = isBlock ? readHost() : EMPTY_HOST;
  const img = fileIdentity(info.path);
  const bm = info.bmapPath ? fileIdentity(info.bmapPath) : undefined;
  const imageFacts: ImageFacts = {
    path: info.path, size: info.size, written: info.written, dev: img?.dev, ino: img?.ino, bmapDev: bm?.dev, bmapIno: bm?.ino,
  };
  const decision = checkTarget(host, facts, imageFacts, { unmount: req.unmount, allowFixed: req.allowFixed });
  if (decision.refusals.length) throw new FlashRefused(decision.refusals);

  let settings;
  try {
    settings = loadSettings(req.settings, info.compression === "none" ? info.path : undefined);
  } catch (e) {
    if (e instanceof SettingsError) refuse("bad-settings", e.message, e.remedy);
    throw e;
  }

  for (const l of plan(req, info, decision)) ui.say(l);
  if (settings) {
    ui.say("then writes first-boot settings into its boot partition:");
    for (const l of settings.summary) ui.say(`  ${l}`);
  }
  const result: FlashResult = { image: info, target: req.target, dryRun: req.dryRun, writeSeconds: 0, settings: [], unmounted: [] };
  if (req.dryRun) {
    ui.say("dry run: every check passed; nothing was written");
    return result;
  }
  const needsAsking = isBlock || (facts.kind === "file" && facts.size > 0);
  if (needsAsking && !req.yes) {
    const name = decision.device?.name ?? basename(req.target);
    const accepted = [name, req.target, ...(decision.device ? [decision.device.path] : [])];
    const ok = await ui.confirm(`Type ${name} to ${isBlock ? "erase the drive" : "replace the file"} and write the image (anything else stops): `, accepted);
    if (!ok) refuse("not-confirmed", "not confirmed", "type the name exactly as shown, or add --yes in scripts");
    if (isBlock) recheck(facts, decision, imageFacts, req);
  }

  result.unmounted = unmountAll(decision.unmount);
  for (const l of result.unmounted) ui.say(l);
  if (isBlock) probeExclusive(req.target);
  const before = facts.kind === "file" ? facts.size : 0;

  const copy = await bmapCopy(info, req.target, (d, t) => ui.progress("writing", d, t));
  result.writeSeconds = copy.seconds;
  for (const w of copy.warnings) ui.say(`bmaptool: ${w}`);
  if (!isBlock) {
    // A file that was larger stands for a drive of that size: it keeps it (the rest reads as zeros).
    if (before > info.size) truncateSync(req.target, before);
    if (!info.bmap) digHoles(req.target);
  }

  syncAndDropCache(req.target, isBlock);
  const fd = openTarget(req.target, isBlock);
  try {
    const progress = (d: number, t: number) => ui.progress("verifying", d, t);
    result.verify = info.bmap ? verifyRanges(fd, req.target, info.bmap, progress) : await verifyWhole(fd, req.target, info, progress);
  } finally {
    closeSync(fd);
  }

  if (settings) {
    try {
      result.settings = settings.write(req.target);
    } catch (e) {
      if (e instanceof SettingsError) throw new WriteError(`writing the first-boot settings failed: ${e.message}`, e.remedy);
      throw e;
    }
    if (isBlock) syncAndDropCache(req.target, true);
    else {
      const f = openSync(req.target, "r+");
      try {
        fsyncSync(f);
      } finally {
        closeSync(f);
      }
    }
  }
  if (!isBlock) result.allocated = statSync(req.target).blocks * 512;
  return result;
}

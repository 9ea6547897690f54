// The rules that keep `paio flash` off the wrong disk. Pure functions over a
// HostState (flash/lsblk.ts), so recorded layouts test the same decisions
// the live machine makes. docs/flashing.md says why each rule exists.

import {
  chainsTo, findDevice, indexDevices, mountHolding, subtree,
  type BlockDevice, type HostState, type Mount,
} from "./lsblk.ts";
import { human } from "./format.ts";

/** Mount points that make a disk part of the running system. */
export const SYSTEM_MOUNTS = ["/", "/usr", "/var", "/home", "/boot", "/efi"];

export function isSystemMount(mp: string): boolean {
  return SYSTEM_MOUNTS.includes(mp) || mp.startsWith("/boot/");
}

/** Devices stacked on a drive that an unmount does not release. */
const STACK_TYPES = /^(crypt|lvm|dm|mpath|raid\d*|md)$/;

/**
 * The devices this system runs from, each with why: mounted at a system
 * mount point (directly, through an overlay's layers or a btrfs source) or
 * used as swap (a partition, or the disk holding a swap file).
 */
export function systemUses(host: HostState): Map<string, string> {
  const uses = new Map<string, string>();
  const add = (d: BlockDevice | undefined, why: string) => {
    if (d && !uses.has(d.kname)) uses.set(d.kname, why);
  };
  const ofMount = (m: Mount, why: string, depth: number) => {
    const byNumber = m.majMin && !m.majMin.startsWith("0:") ? findDevice(host.devices, m.majMin) : undefined;
    const d = byNumber ?? (m.source.startsWith("/dev/") ? findDevice(host.devices, m.source) : undefined);
    if (d) return add(d, why);
    if (m.fstype === "overlay" && depth < 4) {
      // A live system's root: an overlay whose layers live on other mounts (a squashfs on a loop device).
      for (const opt of m.superOptions.split(",")) {
        const [k, v] = opt.split("=", 2);
        if (!v || !["lowerdir", "upperdir", "workdir"].includes(k!)) continue;
        for (const dir of v.split(":")) {
          const inner = mountHolding(host.mounts.filter((x) => x !== m && x.mountpoint !== m.mountpoint), dir);
          if (inner) ofMount(inner, `${why} (an overlay with layers in ${dir})`, depth + 1);
        }
      }
    }
  };
  for (const d of indexDevices(host.devices).values()) {
    const mp = d.mountpoints.find(isSystemMount);
    if (mp) add(d, `mounted at ${mp}`);
  }
  for (const m of host.mounts) if (isSystemMount(m.mountpoint)) ofMount(m, `mounted at ${m.mountpoint}`, 0);
  for (const s of host.swaps) {
    if (s.type === "file") {
      const m = mountHolding(host.mounts, s.file);
      if (m) ofMount(m, `holds the swap file ${s.file}`, 0);
    } else {
      add(findDevice(host.devices, s.file), "used as swap");
    }
  }
  // Through loop devices: a system device on a loop device makes the disk
  // holding its backing file a system disk too, and so on down.
  for (let round = 0; round < 8; round++) {
    const before = uses.size;
    for (const top of host.devices) {
      if (top.type !== "loop") continue;
      const hit = [...uses.keys()].map((k) => chainsTo(top, k)[0]).find((c) => c !== undefined);
      if (!hit) continue;
      const back = host.loops[top.kname];
      if (!back) continue;
      const why = `holds ${back.file}, the backing file of ${top.path} (${describeChain(hit)} ${uses.get(hit[hit.length - 1]!.kname)})`;
      if (back.rdev) add(findDevice(host.devices, back.rdev), `backs ${top.path} (${describeChain(hit)} ${uses.get(hit[hit.length - 1]!.kname)})`);
      else if (back.dev && !back.dev.startsWith("0:") && findDevice(host.devices, back.dev)) add(findDevice(host.devices, back.dev), why);
      else {
        const m = mountHolding(host.mounts, back.file);
        if (m) ofMount(m, why, 0);
      }
    }
    if (uses.size === before) break;
  }
  return uses;
}

/** "nvme0n1 > nvme0n1p3 > luks-4f1c (crypt) > vg-root (lvm)". */
export function describeChain(chain: BlockDevice[]): string {
  return chain.map((d) => (d.type === "disk" || d.type === "part" || d.type === "loop" ? d.name : `${d.name} (${d.type})`)).join(" > ");
}

/** The top-level devices the system runs from, each with the first reason found. */
export function systemDisks(host: HostState): Map<string, string> {
  const uses = systemUses(host);
  const disks = new Map<string, string>();
  for (const top of host.devices) {
    const reasons: string[] = [];
    for (const [kname, why] of uses) {
      const chain = chainsTo(top, kname)[0];
      if (chain) reasons.push(`${describeChain(chain)}: ${why}`);
    }
    if (reasons.length) disks.set(top.kname, reasons.join("; "));
  }
  return disks;
}

export function isRemovable(d: BlockDevice, host: HostState): boolean {
  return d.removable || d.hotplug || d.tran === "usb" || host.mmcTypes[d.kname] === "SD";
}

/** "usb", "nvme", "sata", "mmc (SD card)", "loop", ... */
export function busOf(d: BlockDevice, host: HostState): string {
  if (d.type === "loop") return "loop";
  const mmc = host.mmcTypes[d.kname];
  if (mmc || /^mmcblk/.test(d.kname) || d.subsystems?.includes("mmc")) return mmc === "MMC" ? "mmc (eMMC)" : mmc === "SD" ? "mmc (SD card)" : "mmc";
  if (d.tran) return d.tran;
  if (d.subsystems?.includes("virtio")) return "virtio";
  return "-";
}

export interface MountedPart {
  path: string;
  mountpoint: string;
}

/** Every mount of a drive and what is built on it, the deepest mount point first (the unmount order). */
export function mountsOn(d: BlockDevice, host: HostState): MountedPart[] {
  const seen = new Set<string>();
  const out: MountedPart[] = [];
  for (const n of subtree(d)) {
    const points = new Set(n.mountpoints);
    for (const m of host.mounts) if (m.majMin === n.majMin || m.source === n.path) points.add(m.mountpoint);
    for (const mp of points) {
      const key = `${n.path} ${mp}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ path: n.path, mountpoint: mp });
    }
  }
  return out.sort((a, b) => b.mountpoint.length - a.mountpoint.length);
}

export interface DriveSummary {
  path: string;
  name: string;
  model: string;
  size: number;
  bus: string;
  removable: boolean;
  readOnly: boolean;
  mounted: MountedPart[];
  /** Why this computer runs from it, when it does. */
  system?: string;
  /** Why it cannot be a target as it is, when it cannot (the first rule that says no). */
  note?: string;
}

function modelOf(d: BlockDevice): string {
  return [d.vendor, d.model].filter(Boolean).join(" ").replace(/\s+/g, " ").trim() || "-";
}

/** The drives `paio flash --list` shows: whole disks (no RAM or zram disks), with what would stop a flash. */
export function listDrives(host: HostState): DriveSummary[] {
  const system = systemDisks(host);
  return host.devices
    .filter((d) => d.type === "disk" && !/^(zram|ram)\d/.test(d.kname))
    .map((d) => {
      const removable = isRemovable(d, host);
      const s: DriveSummary = {
        path: d.path, name: d.name, model: modelOf(d), size: d.size, bus: busOf(d, host), removable,
        readOnly: d.readOnly, mounted: mountsOn(d, host), system: system.get(d.kname),
      };
      if (s.system) s.note = "this computer runs from it";
      else if (d.size === 0) s.note = "no medium (an empty card reader?)";
      else if (d.readOnly) s.note = "read-only";
      else if (!removable) s.note = "fixed drive (needs --allow-fixed)";
      else if (s.mounted.length) s.note = "mounted (needs --unmount)";
      return s;
    });
}

export type Rule =
  | "not-a-drive" | "partition" | "no-medium" | "system-disk" | "in-use-stack" | "mounted" | "fixed"
  | "too-small" | "read-only" | "is-image" | "holds-image" | "no-space"
  | "bad-image" | "bad-settings" | "not-confirmed" | "permission";

export interface Refusal {
  rule: Rule;
  /** What is wrong, naming the device or file. */
  reason: string;
  /** What to do about it. */
  remedy: string;
}

/** What the image is, for the rules. */
export interface ImageFacts {
  path: string;
  /** Bytes it takes on the target (the uncompressed image). */
  size: number;
  /** Bytes a bmap write puts on the target (the mapped blocks); the size without a bmap. */
  written: number;
  /** The file system holding the image file ("major:minor") and its inode. */
  dev?: string;
  ino?: number;
  /** The bmap file's, so it is not overwritten either. */
  bmapDev?: string;
  bmapIno?: number;
}

/** What TARGET is, as flash/host.ts found it. */
export type TargetFacts =
  | { kind: "block"; path: string; rdev: string; writable?: boolean }
  | { kind: "file"; path: string; size: number; dev: string; ino: number; writable: boolean; free?: number }
  | { kind: "missing"; path: string; parentExists: boolean; free?: number }
  | { kind: "other"; path: string; what: string };

export interface FlashOptions {
  unmount: boolean;
  allowFixed: boolean;
}

export interface Decision {
  target: TargetFacts;
  /** The drive, for a block device. */
  device?: BlockDevice;
  refusals: Refusal[];
  /** What --unmount will unmount, deepest first. */
  unmount: MountedPart[];
  /** What will be erased, for the person to read before saying yes. */
  erases: string[];
}

function partLine(n: BlockDevice, host: HostState): string {
  const mps = mountsOn({ ...n, children: [] }, host).map((m) => m.mountpoint);
  return [
    n.name.padEnd(12),
    (n.type === "part" ? n.fstype ?? "-" : `${n.type}${n.fstype ? ` ${n.fstype}` : ""}`).padEnd(11),
    human(n.size).padStart(10),
    n.label ? `"${n.label}"` : "",
    mps.length ? `mounted at ${mps.join(", ")}` : "",
  ].filter(Boolean).join("  ");
}

/** How a drive reads in one line: "/dev/sdb: SanDisk Ultra, 28.7 GiB, usb, removable". */
export function describeDrive(d: BlockDevice, host: HostState): string {
  const model = d.type === "loop" ? `loop device over ${host.loops[d.kname]?.file ?? "an unknown file"}` : modelOf(d);
  return `${d.path}: ${model === "-" ? "no model name" : model}, ${human(d.size)}, ${busOf(d, host)}, ${isRemovable(d, host) ? "removable" : "fixed"}${d.readOnly ? ", read-only" : ""}`;
}

const sameFile = (aDev?: string, aIno?: number, bDev?: string, bIno?: number) =>
  aDev !== undefined && aIno !== undefined && aDev === bDev && aIno === bIno;

/**
 * Every reason not to write the image to this target, each with what to do.
 * No refusal means the flash may go ahead (after the person says yes), with
 * the mounts in `unmount` unmounted first when --unmount was given.
 */
export function checkTarget(host: HostState, target: TargetFacts, image: ImageFacts, opts: FlashOptions): Decision {
  const refusals: Refusal[] = [];
  const refuse = (rule: Rule, reason: string, remedy: string) => refusals.push({ rule, reason, remedy });
  const decision: Decision = { target, refusals, unmount: [], erases: [] };
  const list = "'bin/paio flash --list' shows the drives";

  if (target.kind === "other") {
    refuse("not-a-drive", `${target.path} is ${target.what}, not a drive or a file`, `name a whole drive (/dev/sdX, /dev/mmcblkN) or an image file; ${list}`);
    return decision;
  }
  if (target.kind === "missing") {
    if (target.path.startsWith("/dev/")) refuse("not-a-drive", `${target.path}: no such device`, `check the name; ${list}`);
    else if (!target.parentExists) refuse("not-a-drive", `${target.path}: its folder does not exist`, "make the folder first, or name another file");
    else if (target.free !== undefined && target.free < image.written) {
      refuse("no-space", `the file system holding ${target.path} has ${human(target.free)} free; the image needs ${human(image.written)} there`, "free some space or name a file on another file system");
    }
    return decision;
  }
  if (target.kind === "file") {
    if (sameFile(target.dev, target.ino, image.dev, image.ino)) {
      refuse("is-image", `${target.path} is the image file itself (${image.path})`, "name the drive or a new file to write to");
    } else if (sameFile(target.dev, target.ino, image.bmapDev, image.bmapIno)) {
      refuse("is-image", `${target.path} is the image's bmap file`, "name the drive or a new file to write to");
    }
    if (!target.writable) refuse("read-only", `${target.path} cannot be written (permissions or a read-only file system)`, "name a file you can write, or run as its owner");
    if (target.size > 0 && target.size < image.size) {
      refuse("too-small", `${target.path} is ${human(target.size)} (${target.size} bytes); the image needs ${human(image.size)} (${image.size} bytes)`,
        "remove the file (it is then made at the image's size) or grow it with 'truncate -s SIZE'");
    }
    if (target.free !== undefined && target.free < image.written) {
      refuse("no-space", `the file system holding ${target.path} has ${human(target.free)} free; the image needs ${human(image.written)} there`, "free some space or name a file on another file system");
    }
    return decision;
  }

  const d = findDevice(host.devices, target.rdev);
  if (!d) {
    refuse("not-a-drive", `${target.path} (device ${target.rdev}) is not among the block devices lsblk lists`, list);
    return decision;
  }
  decision.device = d;
  decision.erases = [describeDrive(d, host), ...subtree(d).slice(1).map((n) => `  ${partLine(n, host)}`)];
  if (d.mountpoints.length || d.fstype) decision.erases.splice(1, 0, `  ${partLine({ ...d, name: "(whole)", type: "part" }, host)}`);

  if (d.type === "part") {
    const parent = host.devices.find((t) => chainsTo(t, d.kname).length > 0);
    refuse("partition", `${target.path} is a partition${parent ? ` of ${parent.path}` : ""}, not a whole drive`,
      parent ? `name the whole drive: ${parent.path} (the image brings its own partition table)` : list);
    return decision;
  }
  if (d.type !== "disk" && d.type !== "loop") {
    refuse("not-a-drive", `${target.path} is a ${d.type} device, not a drive`, `name the drive itself; ${list}`);
    return decision;
  }
  const system = systemDisks(host).get(d.kname);
  if (system) {
    refuse("system-disk", `${target.path} holds this computer's system: ${system}`, `writing it would destroy the running system; choose another drive (${list})`);
  }
  if (d.size === 0) {
    refuse("no-medium", `${target.path} has no medium (size 0: an empty card reader?)`, "insert the card, then run the command again");
    return decision;
  }
  if (d.readOnly) {
    refuse("read-only", `${target.path} is read-only`,
      "an SD card's lock switch may be on (slide it up, towards the contacts) or the drive write-protected; reinsert it and check with 'bin/paio flash --list'");
  }
  if (d.size < image.size) {
    refuse("too-small", `${target.path} is ${human(d.size)} (${d.size} bytes); the image needs ${human(image.size)} (${image.size} bytes)`, "use a drive at least as large as the image");
  }
  if (!isRemovable(d, host) && !opts.allowFixed) {
    refuse("fixed", d.type === "loop" ? `${target.path} is a loop device, not a removable drive` : `${target.path} is a fixed (non-removable) drive: ${describeDrive(d, host)}`,
      "if you really mean this drive, add --allow-fixed");
  }
  if (target.writable === false && !d.readOnly) {
    refuse("permission", `${target.path}: permission denied (writing a drive needs root)`, "run it as root: sudo bin/paio flash ...");
  }
  const loop = d.type === "loop" ? host.loops[d.kname] : undefined;
  if (loop && sameFile(loop.dev, loop.ino, image.dev, image.ino)) {
    refuse("is-image", `${target.path} is a loop device over the image file itself (${loop.file})`, "name another drive or file");
  }
  if (image.dev && !system) {
    const holder = findDevice(host.devices, image.dev);
    if (holder && subtree(d).some((n) => n.kname === holder.kname)) {
      refuse("holds-image", `the image file ${image.path} lies on ${target.path} (${holder.path})`, "copy the image to another drive first");
    }
  }
  const stacks = subtree(d).slice(1).filter((n) => STACK_TYPES.test(n.type));
  if (stacks.length && !system) {
    const how = stacks.map((s) =>
      s.type === "crypt" ? `cryptsetup close ${s.name}` : s.type === "lvm" ? `vgchange -an (the volume group of ${s.name})` : /^(raid|md)/.test(s.type) ? `mdadm --stop ${s.path}` : `dmsetup remove ${s.name}`);
    refuse("in-use-stack", `${target.path} holds open volumes: ${stacks.map((s) => `${s.name} (${s.type})`).join(", ")}; unmounting does not release them`,
      `unmount what is on them and close them first: ${[...new Set(how)].join("; ")}`);
  }
  const mounted = mountsOn(d, host);
  if (mounted.length && !system) {
    if (opts.unmount) decision.unmount = mounted;
    else {
      refuse("mounted", `${target.path} has mounted file systems: ${mounted.map((m) => `${m.path} at ${m.mountpoint}`).join(", ")}`,
        "add --unmount to have them unmounted first (close any program using them), or unmount them yourself");
    }
  }
  return decision;
}

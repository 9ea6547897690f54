// Where the update system's state lives on a device: the EFI system partition
// (mounted only while it is read or written, so a power cut at any other time
// cannot touch it), the two root partitions, the running version and slot.
// PAIO_ESP_DIR names a directory to use as the ESP instead of mounting one,
// for tests on the host.

import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { blockDevices, findBootPartition } from "../../lib/provision/firstboot.ts";
import { letter } from "./boot-entries.ts";
import type { SlotName } from "./journal.ts";

export const RUN_DIR = process.env.PAIO_RUN_DIR ?? "/run/paio";
export const RELEASE_FILE = process.env.PAIO_RELEASE_FILE ?? "/etc/paio/release";
export const RAUC_CONF = process.env.PAIO_RAUC_CONF ?? "/etc/rauc/system.conf";
export const KEYRING = process.env.PAIO_RAUC_KEYRING ?? "/etc/rauc/keyring.pem";

export class UpdateError extends Error {}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function sh(argv: string[], timeout = 60_000): { ok: boolean; out: string } {
  try {
    const r = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout });
    return { ok: r.exitCode === 0, out: (r.stdout.toString() + r.stderr.toString()).trim() };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

/** PAIO_VERSION from a release file's text. */
export function releaseVersion(text: string | undefined): string | undefined {
  return text ? /^PAIO_VERSION=(\S+)$/m.exec(text)?.[1] : undefined;
}

export function runningVersion(): string {
  return releaseVersion(read(RELEASE_FILE)) ?? "unknown";
}

/** The slot the running system booted from: rauc.slot= on the kernel command line. */
export function bootedSlot(cmdline = read(process.env.PAIO_CMDLINE_FILE ?? "/proc/cmdline") ?? ""): SlotName | undefined {
  const m = /(?:^|\s)rauc\.slot=([AB])(?:\s|$)/.exec(cmdline);
  return m ? (m[1] as SlotName) : undefined;
}

/** Whether this boot is a new slot's trial (paio.trial=1, until the gate commits it). */
export function onTrial(cmdline = read(process.env.PAIO_CMDLINE_FILE ?? "/proc/cmdline") ?? ""): boolean {
  return /(?:^|\s)paio\.trial=1(?:\s|$)/.test(cmdline);
}

/** The root partition of a slot: the GPT partition named paio-root-a or paio-root-b. */
export function slotDevice(slot: SlotName): string | undefined {
  const d = blockDevices().find((b) => b.partname === `paio-root-${letter(slot)}`);
  return d ? `/dev/${d.devname}` : undefined;
}

/** Why this device cannot take A/B updates, or undefined when it can. */
export function unsupportedReason(): string | undefined {
  if (process.env.PAIO_ESP_DIR) return undefined;
  if (!slotDevice("A") || !slotDevice("B")) {
    return "this device has one system slot (no partitions named paio-root-a and paio-root-b; the Raspberry Pi image is one of these): a new version is put on it by flashing (docs/flashing.md)";
  }
  if (!existsSync(RAUC_CONF)) return `${RAUC_CONF} is missing, so RAUC cannot install bundles on this image`;
  return undefined;
}

let seq = 0;
function mountPoint(what: string): string {
  const dir = join(RUN_DIR, "update", `${what}.${process.pid}.${seq++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Runs `fn` with the ESP mounted (read-only unless `write`), and unmounts it
 * afterwards, which writes everything out.
 */
export function withEsp<T>(write: boolean, fn: (dir: string) => T): T {
  const fixed = process.env.PAIO_ESP_DIR;
  if (fixed) return fn(fixed);
  const found = findBootPartition();
  if ("error" in found) throw new UpdateError(`cannot find the EFI system partition: ${found.error}`);
  const dir = mountPoint("esp");
  const m = sh(["mount", "-t", "vfat", "-o", `${write ? "rw" : "ro"},nodev,nosuid,noexec,iocharset=ascii,utf8`, found.dev, dir]);
  if (!m.ok) {
    rmSync(dir, { recursive: true, force: true });
    throw new UpdateError(`cannot mount the EFI system partition ${found.dev} (${found.how}): ${m.out}`);
  }
  try {
    return fn(dir);
  } finally {
    const u = sh(["umount", dir]);
    if (u.ok) rmSync(dir, { recursive: true, force: true });
    else console.error(`update: cannot unmount ${dir}: ${u.out}`);
  }
}

/** What a freshly written slot holds: its version, kernel and initramfs (from /boot in its root). */
export function readSlotContents(slot: SlotName): { version: string; vmlinuz: Uint8Array; initrd: Uint8Array } {
  const dev = slotDevice(slot);
  if (!dev) throw new UpdateError(`slot ${slot} has no partition (paio-root-${letter(slot)})`);
  const dir = mountPoint(`slot-${letter(slot)}`);
  const m = sh(["mount", "-t", "squashfs", "-o", "ro,nodev,nosuid", dev, dir]);
  if (!m.ok) {
    rmSync(dir, { recursive: true, force: true });
    throw new UpdateError(`cannot mount slot ${slot} (${dev}): ${m.out}`);
  }
  try {
    const version = releaseVersion(read(join(dir, "etc/paio/release")));
    if (!version) throw new UpdateError(`slot ${slot} (${dev}) has no /etc/paio/release with PAIO_VERSION`);
    const file = (p: string) => {
      try {
        return new Uint8Array(readFileSync(join(dir, p)));
      } catch {
        throw new UpdateError(`slot ${slot} (${dev}) has no /${p}; a PAIO root carries its kernel and initramfs in /boot`);
      }
    };
    return { version, vmlinuz: file("boot/vmlinuz"), initrd: file("boot/initrd.img") };
  } finally {
    sh(["umount", dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The `compatible=` of this device's RAUC configuration: which bundles it takes. */
export function systemCompatible(): string | undefined {
  return /^compatible=(\S+)$/m.exec(read(RAUC_CONF) ?? "")?.[1];
}

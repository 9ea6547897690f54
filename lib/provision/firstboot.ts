// First-boot settings at boot: the supervisor calls firstBoot() once per
// boot, before it loads the units. It finds the boot partition (the FAT
// partition the firmware booted from: GPT name paio-esp, else partition 1 of
// the disk the root file system is on, or paio.boot= on the kernel command
// line), mounts it read-only under /run, and imports what is new there
// (import.ts). Only when something must be taken off it (a Wi-Fi key) is it
// made writable, written, synced and unmounted at once.

import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, realpathSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { HOSTNAME_RE } from "../config/network.ts";
import { readConfigFile } from "../config/read.ts";
import { dataFormatProblem } from "../data-format.ts";
import { describeReport, HOSTNAME_FILE, importFirstBootSettings, type ImportReport } from "./import.ts";

export const BOOT_PARTLABEL = "paio-esp";

interface BlockDev {
  name: string;
  devname: string;
  partname?: string;
  partuuid?: string;
  partn?: number;
  major?: string;
  minor?: string;
  /** The disk a partition belongs to (its parent in sysfs). */
  disk?: string;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Every block device the kernel lists, from /sys/class/block/NAME/uevent. */
export function blockDevices(sys = "/sys"): BlockDev[] {
  const dir = join(sys, "class", "block");
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: BlockDev[] = [];
  for (const name of names) {
    const uevent = read(join(dir, name, "uevent"));
    if (!uevent) continue;
    const kv = Object.fromEntries(uevent.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
    let disk: string | undefined;
    if (kv.DEVTYPE === "partition") {
      try {
        disk = basename(dirname(realpathSync(join(dir, name))));
      } catch {
        disk = undefined;
      }
    }
    out.push({
      name, devname: kv.DEVNAME ?? name, partname: kv.PARTNAME, partuuid: kv.PARTUUID?.toLowerCase(), partn: kv.PARTN ? Number(kv.PARTN) : undefined,
      major: kv.MAJOR, minor: kv.MINOR, disk,
    });
  }
  return out;
}

function cmdlineArg(cmdline: string, key: string): string | undefined {
  for (const w of cmdline.trim().split(/\s+/)) if (w.startsWith(`${key}=`)) return w.slice(key.length + 1);
  return undefined;
}

function bySpec(devs: BlockDev[], spec: string): BlockDev | undefined {
  if (spec.startsWith("PARTLABEL=")) return devs.find((d) => d.partname === spec.slice(10));
  if (spec.startsWith("PARTUUID=")) return devs.find((d) => d.partuuid === spec.slice(9).toLowerCase());
  if (spec.startsWith("/dev/")) return devs.find((d) => d.devname === spec.slice(5));
  return undefined;
}

/**
 * The boot partition's device: paio.boot=SPEC on the kernel command line,
 * else the partition named paio-esp, else partition 1 of the disk holding
 * the root (root= on the command line, or the device mounted at /).
 */
export function findBootPartition(sys = "/sys", proc = "/proc"): { dev: string; how: string } | { error: string } {
  const devs = blockDevices(sys);
  const cmdline = read(join(proc, "cmdline")) ?? "";
  const spec = cmdlineArg(cmdline, "paio.boot");
  if (spec) {
    const d = bySpec(devs, spec);
    return d ? { dev: `/dev/${d.devname}`, how: `paio.boot=${spec}` } : { error: `no device ${spec} (paio.boot= on the kernel command line)` };
  }
  const esp = devs.find((d) => d.partname === BOOT_PARTLABEL);
  if (esp) return { dev: `/dev/${esp.devname}`, how: `partition named ${BOOT_PARTLABEL}` };
  let root: BlockDev | undefined;
  const rootSpec = cmdlineArg(cmdline, "root");
  if (rootSpec) root = bySpec(devs, rootSpec);
  if (!root) {
    // The device mounted at /: its major:minor in mountinfo.
    for (const line of (read(join(proc, "self", "mountinfo")) ?? "").split("\n")) {
      const f = line.split(" ");
      if (f[4] === "/" && f[2]) {
        const [major, minor] = f[2].split(":");
        root = devs.find((d) => d.major === major && d.minor === minor);
        if (root) break;
      }
    }
  }
  if (!root?.disk) return { error: `cannot tell which disk holds the root file system${rootSpec ? ` (root=${rootSpec})` : ""}` };
  const first = devs.find((d) => d.disk === root!.disk && d.partn === 1);
  if (!first) return { error: `the root disk ${root.disk} has no partition 1` };
  return { dev: `/dev/${first.devname}`, how: `partition 1 of ${root.disk}, the root disk` };
}

/** Whether a device starts with a FAT boot sector. */
export function isFatDevice(dev: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(dev, "r");
    const bs = Buffer.alloc(512);
    if (readSync(fd, bs, 0, 512, 0) < 512 || bs[510] !== 0x55 || bs[511] !== 0xaa) return false;
    return /^FAT(12|16)? {0,5}$/.test(bs.subarray(54, 62).toString("latin1")) || bs.subarray(82, 90).toString("latin1") === "FAT32   ";
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function run(argv: string[]): { ok: boolean; out: string } {
  try {
    const r = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    return { ok: r.exitCode === 0, out: (r.stdout.toString() + r.stderr.toString()).trim() };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

/** The device's own host name (first-boot settings) from the start of the boot, before any unit runs; the network unit keeps it. */
function setDeviceHostname(state: string, say: (line: string) => void): void {
  const r = readConfigFile(join(state, HOSTNAME_FILE), 256);
  if (!r.ok) return;
  const name = r.text.trim();
  if (!HOSTNAME_RE.test(name)) {
    say(`first-boot settings: ${join(state, HOSTNAME_FILE)} does not hold a host name; the image's stays`);
    return;
  }
  try {
    writeFileSync("/proc/sys/kernel/hostname", name);
  } catch (e) {
    say(`first-boot settings: cannot set the host name: ${(e as Error).message}`);
  }
}

export interface FirstBootOptions {
  runDir?: string;
  state?: string;
  say: (line: string) => void;
}

/**
 * Once per boot: finds, mounts and imports the boot partition's first-boot
 * settings, and sets the device's host name. Reports on the console through
 * `say`; never throws.
 */
export function firstBoot(opts: FirstBootOptions): ImportReport | undefined {
  const state = opts.state ?? "/var/lib/paio";
  const marker = join(opts.runDir ?? "/run/paio", "provision.done");
  if (existsSync(marker)) return undefined;
  // A data partition in a newer format: its settings files are not rewritten here; the boot partition keeps them for the version that knows it.
  if (dataFormatProblem(state)) {
    opts.say("first-boot settings: not imported: the data partition is in a format this version does not know (see above); they stay on the boot partition");
    setDeviceHostname(state, opts.say);
    return undefined;
  }
  try {
    return importFromBootPartition(opts);
  } catch (e) {
    opts.say(`first-boot settings: internal error: ${(e as Error).stack ?? e}`);
    return undefined;
  } finally {
    setDeviceHostname(state, opts.say);
  }
}

function importFromBootPartition(opts: FirstBootOptions): ImportReport | undefined {
  const runDir = opts.runDir ?? "/run/paio";
  const state = opts.state ?? "/var/lib/paio";
  const marker = join(runDir, "provision.done");
  try {
    mkdirSync(runDir, { recursive: true });
    writeFileSync(marker, "");
  } catch {
    // /run is not writable: importing still works, a restarted supervisor would only look again
  }
  const found = findBootPartition();
  if ("error" in found) {
    opts.say(`first-boot settings: no boot partition to read: ${found.error}`);
    return undefined;
  }
  if (!isFatDevice(found.dev)) {
    opts.say(`first-boot settings: ${found.dev} (${found.how}) is not a FAT file system; nothing read`);
    return undefined;
  }
  const mnt = join(runDir, "boot");
  mkdirSync(mnt, { recursive: true });
  // The kernel's default FAT character set is not built in: ascii for names' case, UTF-8 for long names.
  const mount = run(["mount", "-t", "vfat", "-o", "ro,nodev,nosuid,noexec,iocharset=ascii,utf8", found.dev, mnt]);
  if (!mount.ok) {
    opts.say(`first-boot settings: cannot mount ${found.dev} (${found.how}): ${mount.out}`);
    return undefined;
  }
  let report: ImportReport | undefined;
  try {
    report = importFirstBootSettings(
      { boot: mnt, state, imageNetwork: "/etc/paio/network.toml", imageUnits: "/etc/paio/units" },
      {
        persistent: !existsSync(join(runDir, "data-volatile")),
        setHostname: (name) => writeFileSync("/proc/sys/kernel/hostname", name),
        beforeBootWrite: () => {
          const rw = run(["mount", "-o", "remount,rw", mnt]);
          if (!rw.ok) throw new Error(`cannot make the boot partition writable: ${rw.out}`);
        },
      },
    );
    for (const line of describeReport(report)) opts.say(line);
  } catch (e) {
    opts.say(`first-boot settings: internal error: ${(e as Error).stack ?? e}`);
  } finally {
    run(["sync"]);
    const um = run(["umount", mnt]);
    if (!um.ok) opts.say(`first-boot settings: cannot unmount the boot partition: ${um.out}`);
  }
  return report;
}

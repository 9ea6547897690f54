// The drive-safety rules of `paio flash` (flash/safety.ts): decisions on
// recorded machine layouts (tests/flash/*: lsblk --json, mountinfo, swaps,
// sysfs), then the same rules on real loop devices attached here, mounted and
// unmounted (skipped, saying why, where loop devices cannot be made).

import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  findDevice, parseLsblk, parseMountinfo, parseSwaps, unescapeOctal, type BlockDevice, type HostState,
} from "../../flash/lsblk.ts";
import {
  checkTarget, listDrives, systemDisks, type Decision, type FlashOptions, type ImageFacts, type TargetFacts,
} from "../../flash/safety.ts";
import { readHost, targetFacts } from "../../flash/host.ts";
import { paioFlash, rangeDigests, readBmap, sh, syntheticImage, MiB, type Synthetic } from "../flash/synthetic.ts";

const REPO = join(import.meta.dirname, "../..");
const LAYOUTS = join(REPO, "tests/flash");
const GiB = 1024 * MiB;

function layout(name: string): HostState {
  const dir = join(LAYOUTS, name);
  const sysfs = existsSync(join(dir, "sysfs.json")) ? JSON.parse(readFileSync(join(dir, "sysfs.json"), "utf8")) : {};
  return {
    devices: parseLsblk(readFileSync(join(dir, "lsblk.json"), "utf8")),
    mounts: parseMountinfo(readFileSync(join(dir, "mountinfo"), "utf8")),
    swaps: parseSwaps(readFileSync(join(dir, "swaps"), "utf8")),
    loops: sysfs.loops ?? {},
    mmcTypes: sysfs.mmcTypes ?? {},
  };
}

/** The same machine with lsblk's mount points blanked: only mountinfo and /proc/swaps say what is mounted. */
function withoutLsblkMounts(h: HostState): HostState {
  const strip = (d: BlockDevice): BlockDevice => ({ ...d, mountpoints: [], children: d.children.map(strip) });
  return { ...h, devices: h.devices.map(strip) };
}

const RPI_IMAGE: ImageFacts = { path: "out/arm64/paio-rpi.img", size: 1 * GiB, written: 300 * MiB, dev: "0:99", ino: 7 };
const NO: FlashOptions = { unmount: false, allowFixed: false };

function block(h: HostState, path: string): TargetFacts {
  const d = findDevice(h.devices, path);
  if (!d) throw new Error(`${path} is not in the layout`);
  return { kind: "block", path, rdev: d.majMin };
}

function decide(h: HostState, path: string, opts: Partial<FlashOptions> = {}, image = RPI_IMAGE): Decision {
  return checkTarget(h, block(h, path), image, { ...NO, ...opts });
}

const rules = (d: Decision) => d.refusals.map((r) => r.rule);

describe("recorded layouts", () => {
  test("every layout parses: whole disks on top, partitions and stacks below", () => {
    for (const name of ["laptop-nvme-sd", "lvm-luks", "usb-stick", "mounted-sd", "readonly-card", "live-usb"]) {
      const h = layout(name);
      expect(h.devices.length).toBeGreaterThan(1);
      expect(h.mounts.some((m) => m.mountpoint === "/")).toBe(true);
    }
  });

  test("laptop: the NVMe disk holds /, /boot/efi and swap; the SD card in the built-in reader may be written", () => {
    const h = layout("laptop-nvme-sd");
    const sys = systemDisks(h);
    expect([...sys.keys()]).toEqual(["nvme0n1"]);
    expect(sys.get("nvme0n1")).toMatch(/nvme0n1 > nvme0n1p2: mounted at \//);
    expect(sys.get("nvme0n1")).toMatch(/swap/);

    const nvme = decide(h, "/dev/nvme0n1");
    expect(rules(nvme)).toEqual(expect.arrayContaining(["system-disk", "fixed"]));
    const sysRefusal = nvme.refusals.find((r) => r.rule === "system-disk")!;
    expect(sysRefusal.reason).toMatch(/holds this computer's system/);
    expect(sysRefusal.remedy).toMatch(/choose another drive/);
    // --allow-fixed lifts the fixed-drive rule, never the system-disk one.
    expect(rules(decide(h, "/dev/nvme0n1", { allowFixed: true, unmount: true }))).toContain("system-disk");

    const sd = decide(h, "/dev/mmcblk0");
    expect(sd.refusals).toEqual([]);
    expect(sd.unmount).toEqual([]);
    expect(sd.erases[0]).toMatch(/^\/dev\/mmcblk0: .*29\.7 GiB, mmc \(SD card\), removable/);
    expect(sd.erases.join("\n")).toMatch(/mmcblk0p1 +exfat .*"SDXC"/);

    const part = decide(h, "/dev/mmcblk0p1");
    expect(rules(part)).toEqual(["partition"]);
    expect(part.refusals[0]!.remedy).toMatch(/\/dev\/mmcblk0/);
  });

  test("laptop: an eMMC (mmc type MMC) is a fixed drive, an SD card is not", () => {
    const h = layout("laptop-nvme-sd");
    const emmc = { ...h, mmcTypes: { mmcblk0: "MMC" } };
    expect(rules(decide(emmc, "/dev/mmcblk0"))).toEqual(["fixed"]);
    expect(decide(emmc, "/dev/mmcblk0").refusals[0]!.remedy).toMatch(/--allow-fixed/);
    expect(rules(decide(emmc, "/dev/mmcblk0", { allowFixed: true }))).toEqual([]);
  });

  test("LVM on LUKS: the disk under crypt and lvm holds / and swap, shown as the chain", () => {
    const h = layout("lvm-luks");
    const why = systemDisks(h).get("nvme0n1")!;
    expect(why).toContain("nvme0n1 > nvme0n1p3 > nvme_crypt (crypt) > vgubuntu-root (lvm): mounted at /");
    expect(why).toContain("nvme0n1 > nvme0n1p3 > nvme_crypt (crypt) > vgubuntu-swap_1 (lvm)");
    expect(why).toMatch(/nvme0n1p2: mounted at \/boot/);
    expect(rules(decide(h, "/dev/nvme0n1"))).toContain("system-disk");
    expect(rules(decide(h, "/dev/mapper/vgubuntu-root"))).toEqual(["not-a-drive"]);
    expect(rules(decide(h, "/dev/dm-0"))).toEqual(["not-a-drive"]);
    expect(rules(decide(h, "/dev/nvme0n1p3"))).toEqual(["partition"]);
    // The stick: allowed, and an image larger than it is refused.
    expect(decide(h, "/dev/sda").refusals).toEqual([]);
    const big = decide(h, "/dev/sda", {}, { ...RPI_IMAGE, size: 16 * GiB });
    expect(rules(big)).toEqual(["too-small"]);
    expect(big.refusals[0]!.reason).toMatch(/15376000000 bytes.*17179869184 bytes/);
    expect(decide(h, "/dev/sda", {}, { ...RPI_IMAGE, size: 15376000000 }).refusals).toEqual([]);
  });

  test("LVM on LUKS: found from mountinfo and /proc/swaps alone (device numbers and /dev/dm-N)", () => {
    const h = withoutLsblkMounts(layout("lvm-luks"));
    const why = systemDisks(h).get("nvme0n1")!;
    expect(why).toContain("vgubuntu-root (lvm): mounted at /");
    expect(why).toContain("vgubuntu-swap_1 (lvm): used as swap");
    expect(rules(decide(h, "/dev/nvme0n1"))).toContain("system-disk");
    expect(systemDisks(h).has("sda")).toBe(false);
  });

  test("an open LUKS volume on a stick: unmounting does not release it, so it is refused with how to close it", () => {
    const h = layout("lvm-luks");
    const stick = h.devices.find((d) => d.name === "sda")!;
    const crypt: BlockDevice = {
      name: "luks-stick", kname: "dm-5", path: "/dev/mapper/luks-stick", majMin: "254:5", type: "crypt", size: stick.size,
      removable: false, hotplug: false, readOnly: false, mountpoints: ["/media/u/secret"], children: [],
    };
    stick.children[0]!.children = [crypt];
    const d = decide(h, "/dev/sda", { unmount: true });
    expect(rules(d)).toEqual(["in-use-stack"]);
    expect(d.refusals[0]!.remedy).toMatch(/cryptsetup close luks-stick/);
  });

  test("desktop: btrfs subvolumes and a swap file are found through mountinfo's source and the mount holding the file", () => {
    const h = withoutLsblkMounts(layout("usb-stick"));
    expect(h.mounts.find((m) => m.mountpoint === "/")!.majMin).toBe("0:33");
    const why = systemDisks(h).get("sda")!;
    expect(why).toMatch(/sda2: mounted at \//);
    expect(systemDisks({ ...h, mounts: h.mounts.filter((m) => m.mountpoint !== "/" && m.mountpoint !== "/boot/efi") }).get("sda")).toMatch(/mounted at \/home|swap file \/home\/swapfile/);
  });

  test("desktop: a mounted stick needs --unmount; an empty card reader has no medium", () => {
    const h = layout("usb-stick");
    const stick = decide(h, "/dev/sdb");
    expect(rules(stick)).toEqual(["mounted"]);
    expect(stick.refusals[0]!.reason).toContain("/dev/sdb1 at /run/media/sam/KINGSTON");
    expect(stick.refusals[0]!.remedy).toMatch(/--unmount/);
    const ok = decide(h, "/dev/sdb", { unmount: true });
    expect(ok.refusals).toEqual([]);
    expect(ok.unmount).toEqual([{ path: "/dev/sdb1", mountpoint: "/run/media/sam/KINGSTON" }]);
    expect(rules(decide(h, "/dev/sdc"))).toEqual(["no-medium"]);
    const list = listDrives(h);
    expect(list.map((d) => [d.name, d.bus, d.removable, d.note])).toEqual([
      ["sda", "sata", false, "this computer runs from it"],
      ["sdb", "usb", true, "mounted (needs --unmount)"],
      ["sdc", "usb", true, "no medium (an empty card reader?)"],
    ]);
    expect(list[1]!.model).toBe("Kingston DataTraveler 3.0");
  });

  test("a mounted SD card: refused without --unmount; with it, both partitions are unmounted first", () => {
    const h = layout("mounted-sd");
    const refused = decide(h, "/dev/sdb");
    expect(rules(refused)).toEqual(["mounted"]);
    expect(refused.refusals[0]!.reason).toMatch(/\/dev\/sdb1 at \/media\/ana\/bootfs.*\/dev\/sdb2 at \/media\/ana\/rootfs|\/dev\/sdb2 at \/media\/ana\/rootfs.*\/dev\/sdb1 at \/media\/ana\/bootfs/);
    const ok = decide(h, "/dev/sdb", { unmount: true });
    expect(ok.refusals).toEqual([]);
    expect(ok.unmount.map((m) => m.mountpoint).sort()).toEqual(["/media/ana/bootfs", "/media/ana/rootfs"]);
    expect(ok.erases.join("\n")).toMatch(/sdb2 +ext4 .*"rootfs"  mounted at \/media\/ana\/rootfs/);
  });

  test("the image file lying on the card itself is refused", () => {
    const h = layout("mounted-sd");
    const d = decide(h, "/dev/sdb", { unmount: true }, { ...RPI_IMAGE, dev: "8:18" });
    expect(rules(d)).toEqual(["holds-image"]);
  });

  test("a read-only card (lock switch) is refused, saying where the switch is", () => {
    const h = layout("readonly-card");
    const d = decide(h, "/dev/sdb");
    expect(rules(d)).toEqual(["read-only"]);
    expect(d.refusals[0]!.remedy).toMatch(/lock switch/);
    expect(listDrives(h).find((x) => x.name === "sdb")!.note).toBe("read-only");
  });

  test("a live USB system: / is an overlay over a loop device whose backing file is on the stick", () => {
    const h = layout("live-usb");
    const sys = systemDisks(h);
    expect(sys.get("sdb")).toMatch(/holds \/run\/live\/medium\/live\/filesystem\.squashfs, the backing file of \/dev\/loop0/);
    expect(sys.get("loop0")).toMatch(/mounted at \/ \(an overlay/);
    expect(rules(decide(h, "/dev/sdb"))).toEqual(["system-disk"]);
    expect(rules(decide(h, "/dev/loop0", { allowFixed: true }))).toContain("system-disk");
    expect(decide(h, "/dev/sdc").refusals).toEqual([]);
    expect(rules(decide(h, "/dev/sda"))).toEqual(["fixed"]);
    expect(decide(h, "/dev/sda", { allowFixed: true }).refusals).toEqual([]);
    // Without the loop device's backing file known, the path of the file decides (the mount holding it).
    const noDev = { ...h, loops: { loop0: { file: "/run/live/medium/live/filesystem.squashfs" } } };
    expect(systemDisks(noDev).has("sdb")).toBe(true);
  });

  test("a loop device over the image file is the image itself", () => {
    const loop: BlockDevice = {
      name: "loop3", kname: "loop3", path: "/dev/loop3", majMin: "7:3", type: "loop", size: 2 * GiB,
      removable: false, hotplug: false, readOnly: false, mountpoints: [], children: [],
    };
    const h: HostState = { devices: [loop], mounts: [], swaps: [], loops: { loop3: { file: "/tmp/x/paio.img", dev: "254:0", ino: 42 } }, mmcTypes: {} };
    const d = checkTarget(h, block(h, "/dev/loop3"), { ...RPI_IMAGE, dev: "254:0", ino: 42 }, { unmount: false, allowFixed: true });
    expect(rules(d)).toEqual(["is-image"]);
    expect(d.refusals[0]!.reason).toContain("/tmp/x/paio.img");
  });

  test("a drive this user cannot write is refused up front, saying root is needed", () => {
    const h = layout("lvm-luks");
    const d = checkTarget(h, { ...block(h, "/dev/sda"), writable: false } as TargetFacts, RPI_IMAGE, NO);
    expect(rules(d)).toEqual(["permission"]);
    expect(d.refusals[0]!.remedy).toMatch(/sudo/);
  });

  test("mountinfo and /proc/swaps escapes", () => {
    expect(unescapeOctal("/media/ana/My\\040Card")).toBe("/media/ana/My Card");
    const m = parseMountinfo("300 25 8:17 / /media/ana/My\\040Card rw,nosuid shared:1 - vfat /dev/sdb1 rw\n");
    expect(m[0]).toEqual({ majMin: "8:17", mountpoint: "/media/ana/My Card", fstype: "vfat", source: "/dev/sdb1", superOptions: "rw" });
    expect(parseSwaps("Filename\tType\tSize\tUsed\tPriority\n/swap\\040file  file  1024  0  -2\n")).toEqual([{ file: "/swap file", type: "file" }]);
  });
});

describe("file targets", () => {
  const h: HostState = { devices: [], mounts: [], swaps: [], loops: {}, mmcTypes: {} };
  const img: ImageFacts = { path: "/tmp/a.img", size: 48 * MiB, written: 3 * MiB, dev: "254:0", ino: 100, bmapDev: "254:0", bmapIno: 101 };
  const file = (over: Partial<Extract<TargetFacts, { kind: "file" }>>): TargetFacts => ({ kind: "file", path: "/tmp/t.img", size: 0, dev: "254:0", ino: 200, writable: true, free: GiB, ...over });
  const check = (t: TargetFacts) => rules(checkTarget(h, t, img, NO));

  test("the image and its bmap are refused as targets; a new or empty file is fine", () => {
    expect(check(file({ ino: 100, size: 48 * MiB }))).toEqual(["is-image"]);
    expect(check(file({ ino: 101, size: 2000 }))).toEqual(["is-image", "too-small"]);
    expect(check(file({}))).toEqual([]);
    expect(check({ kind: "missing", path: "/tmp/new.img", parentExists: true, free: GiB })).toEqual([]);
  });

  test("a smaller file, an unwritable one, a full file system, a folder, a missing device or folder", () => {
    expect(check(file({ size: MiB }))).toEqual(["too-small"]);
    expect(check(file({ size: 64 * MiB }))).toEqual([]);
    expect(check(file({ writable: false }))).toEqual(["read-only"]);
    expect(check(file({ free: MiB }))).toEqual(["no-space"]);
    expect(check({ kind: "other", path: "/tmp", what: "a folder" })).toEqual(["not-a-drive"]);
    expect(check({ kind: "missing", path: "/dev/sdz", parentExists: true })).toEqual(["not-a-drive"]);
    expect(check({ kind: "missing", path: "/nope/x.img", parentExists: false })).toEqual(["not-a-drive"]);
  });
});

// ---- real loop devices ------------------------------------------------------

function loopUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "loop devices need root";
  const r = Bun.spawnSync(["losetup", "-f"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) return `losetup -f failed: ${r.stderr.toString().trim() || `exit ${r.exitCode}`}`;
  return undefined;
}

const noLoop = loopUnavailable();
if (noLoop) console.log(`flash-safety: real loop-device tests skipped: ${noLoop}`);

describe.skipIf(noLoop !== undefined)("real loop devices", () => {
  let dir: string;
  let img: Synthetic;
  let backing: string;
  let dev = "";
  let mnt: string;
  const mounted = () => readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === mnt);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "paio-flash-loop-"));
    img = syntheticImage(dir);
    backing = join(dir, "card.img");
    sh(["truncate", "-s", "64M", backing]);
    dev = sh(["losetup", "-f", "--show", backing]).trim();
    // A file system on the whole device, as on a superfloppy-formatted stick (no partition needed from the kernel).
    sh(["mkfs.ext4", "-q", "-L", "CARD", "-E", "lazy_itable_init=0,lazy_journal_init=0", dev]);
    mnt = join(dir, "mnt");
    mkdirSync(mnt);
    sh(["mount", dev, mnt]);
    writeFileSync(join(mnt, "photo.jpg"), "not really a photo");
    // Read-only from here on, so the kernel writes nothing more to it and its checksum is stable.
    sh(["mount", "-o", "remount,ro", mnt]);
  }, 120_000);

  afterAll(() => {
    if (mnt && mounted()) Bun.spawnSync(["umount", mnt]);
    if (dev) Bun.spawnSync(["losetup", "-d", dev]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the live host: lsblk sees the loop device, its mount, and the disk this machine runs from", () => {
    const h = readHost();
    const d = findDevice(h.devices, dev)!;
    expect(d.type).toBe("loop");
    expect(h.loops[d.kname]!.file).toBe(backing);
    const decision = checkTarget(h, targetFacts(dev), { path: img.image, size: img.size, written: 3 * MiB }, NO);
    expect(rules(decision)).toEqual(expect.arrayContaining(["fixed", "mounted"]));
    // The root file system's disk is refused (checked through the rules alone: nothing is run against it).
    const root = h.mounts.find((m) => m.mountpoint === "/");
    const rootDev = root && findDevice(h.devices, root.majMin);
    if (rootDev) {
      const top = h.devices.find((t) => JSON.stringify(t).includes(`"kname":"${rootDev.kname}"`))!;
      expect(rules(checkTarget(h, { kind: "block", path: top.path, rdev: top.majMin }, { path: img.image, size: img.size, written: 3 * MiB }, { unmount: true, allowFixed: true }))).toContain("system-disk");
    } else {
      console.log("flash-safety: / is not on a block device lsblk lists here; its refusal is tested on the recorded layouts");
    }
  });

  test("a mounted loop device is refused without --unmount and left as it was", () => {
    const before = sh(["sha256sum", backing]);
    const r = paioFlash(REPO, ["--yes", "--allow-fixed", img.image, dev]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`has mounted file systems: ${dev} at ${mnt}`);
    expect(r.err).toContain("--unmount");
    expect(r.err).toContain("nothing was written");
    expect(mounted()).toBe(true);
    const fixed = paioFlash(REPO, ["--yes", "--unmount", img.image, dev]);
    expect(fixed.code).toBe(1);
    expect(fixed.err).toContain("is a loop device, not a removable drive");
    expect(sh(["sha256sum", backing])).toBe(before);
  });

  test("with --unmount it is unmounted, written exclusively and verified", () => {
    const r = paioFlash(REPO, ["--yes", "--allow-fixed", "--unmount", img.image, dev]);
    expect(r.err).toContain(`unmounted ${dev} from ${mnt}`);
    expect(r.err).toMatch(/verified: read \d+ ranges? .* every sha256 matches the bmap/);
    expect(r.code).toBe(0);
    expect(mounted()).toBe(false);
    const bmap = readBmap(img.bmap);
    expect(rangeDigests(dev, bmap)).toEqual(bmap.ranges.map((x) => x.checksum));
  });

  test("without --yes the drive's name must be typed; anything else writes nothing", () => {
    const name = dev.replace("/dev/", "");
    const before = sh(["sha256sum", backing]);
    const no = paioFlash(REPO, ["--allow-fixed", img.image, dev], "sdb\n");
    expect(no.err).toContain(`Type ${name} to erase the drive`);
    expect(no.err).toContain("refused: not confirmed");
    expect(no.code).toBe(1);
    expect(sh(["sha256sum", backing])).toBe(before);
    const yes = paioFlash(REPO, ["--allow-fixed", img.image, dev], `${name}\n`);
    expect(yes.code, yes.err).toBe(0);
  });

  test("a device another program holds exclusively is refused as in use, nothing written", async () => {
    const before = sh(["sha256sum", backing]);
    const holder = Bun.spawn(["python3", "-c", `import os, sys, time
fd = os.open(${JSON.stringify(dev)}, os.O_RDONLY | os.O_EXCL)
print("held", flush=True)
time.sleep(60)`], { stdout: "pipe", stderr: "pipe" });
    try {
      const reader = holder.stdout.getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toContain("held");
      const r = paioFlash(REPO, ["--yes", "--allow-fixed", img.image, dev]);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`${dev} is in use`);
      expect(sh(["sha256sum", backing])).toBe(before);
    } finally {
      holder.kill();
      await holder.exited;
    }
  });
});

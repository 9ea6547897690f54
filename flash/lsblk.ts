// What the host's block devices are and what uses them, read from the
// outputs of `lsblk --json -b -O`, /proc/self/mountinfo and /proc/swaps.
// Everything here is a pure function over those texts, so recorded layouts
// (tests/flash/) give the same answers as a live machine.

export interface BlockDevice {
  /** lsblk's NAME: "sdb", "nvme0n1p2", "vg-root" (a dm device's mapper name). */
  name: string;
  /** The kernel's name: "sdb", "dm-1". */
  kname: string;
  /** The device node: "/dev/sdb", "/dev/mapper/vg-root". */
  path: string;
  /** "8:16". */
  majMin: string;
  /** disk, part, loop, crypt, lvm, raid1, rom, ... */
  type: string;
  /** Bytes; 0 for a card reader with no card. */
  size: number;
  /** The kernel's "removable media" flag (SD readers, most USB sticks). */
  removable: boolean;
  /** Hot-pluggable (USB, PCMCIA): a drive that can go away, as lsblk's HOTPLUG says. */
  hotplug: boolean;
  readOnly: boolean;
  /** Transport: usb, sata, nvme, mmc, ... */
  tran?: string;
  /** lsblk's SUBSYSTEMS, "block:scsi:usb:pci". */
  subsystems?: string;
  model?: string;
  vendor?: string;
  serial?: string;
  fstype?: string;
  label?: string;
  /** Where it is mounted (every mount, bind mounts too). */
  mountpoints: string[];
  /** Partitions, and the devices built on it (crypt, lvm, raid). */
  children: BlockDevice[];
}

export interface Mount {
  /** "major:minor" of the file system's device (0:N for tmpfs, overlay, btrfs subvolumes). */
  majMin: string;
  /** The mount point, unescaped. */
  mountpoint: string;
  fstype: string;
  /** The mount source: "/dev/sda2", "overlay", "tmpfs". */
  source: string;
  /** The file system's own options (overlay's lowerdir= and upperdir= are here). */
  superOptions: string;
}

export interface Swap {
  file: string;
  /** "partition" or "file". */
  type: string;
}

export interface LoopBacking {
  /** The backing file, as the kernel reports it. */
  file: string;
  /** "major:minor" of the file system holding it, when the file could be looked at. */
  dev?: string;
  /** The backing file's inode, when it could be looked at. */
  ino?: number;
  /** When the backing file is itself a block device: its "major:minor". */
  rdev?: string;
}

/** Everything the safety rules look at, gathered by flash/host.ts or read from a recorded layout. */
export interface HostState {
  /** lsblk's tree: the top-level devices with their children. */
  devices: BlockDevice[];
  mounts: Mount[];
  swaps: Swap[];
  /** Loop devices' backing files, by kernel name ("loop0"). */
  loops: Record<string, LoopBacking>;
  /** The card type of mmc block devices from sysfs ("SD" or "MMC", i.e. eMMC), by kernel name. */
  mmcTypes: Record<string, string>;
}

export class LayoutError extends Error {}

function str(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  const s = String(v).trim();
  return s === "" ? undefined : s;
}

/** lsblk writes true/false since util-linux 2.37 and "0"/"1" before. */
function bool(v: unknown): boolean {
  return v === true || v === 1 || v === "1" || v === "true";
}

function num(v: unknown): number {
  const n = typeof v === "number" ? v : Number(String(v ?? "0"));
  return Number.isFinite(n) ? n : 0;
}

function device(raw: Record<string, unknown>, where: string): BlockDevice {
  const name = str(raw.name);
  if (!name) throw new LayoutError(`lsblk output: a device without a name at ${where}`);
  const kname = str(raw.kname) ?? name;
  const mps = Array.isArray(raw.mountpoints) ? raw.mountpoints : [raw.mountpoint];
  const children = Array.isArray(raw.children) ? raw.children : [];
  return {
    name,
    kname,
    path: str(raw.path) ?? `/dev/${kname}`,
    majMin: str(raw["maj:min"]) ?? "",
    type: str(raw.type) ?? "disk",
    size: num(raw.size),
    removable: bool(raw.rm),
    hotplug: bool(raw.hotplug),
    readOnly: bool(raw.ro),
    tran: str(raw.tran),
    subsystems: str(raw.subsystems),
    model: str(raw.model),
    vendor: str(raw.vendor),
    serial: str(raw.serial),
    fstype: str(raw.fstype),
    label: str(raw.label),
    mountpoints: mps.map(str).filter((m): m is string => m !== undefined),
    children: children.map((c, i) => device(c as Record<string, unknown>, `${where} > ${name}[${i}]`)),
  };
}

/** The device tree from `lsblk --json -b -O` (or any column set that has NAME; -b for sizes in bytes). */
export function parseLsblk(json: unknown): BlockDevice[] {
  const text = typeof json === "string" ? json : undefined;
  let data: unknown = json;
  if (text !== undefined) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new LayoutError(`lsblk output is not JSON: ${(e as Error).message}`);
    }
  }
  const list = (data as { blockdevices?: unknown })?.blockdevices;
  if (!Array.isArray(list)) throw new LayoutError("lsblk output has no \"blockdevices\" list");
  return list.map((d, i) => device(d as Record<string, unknown>, `blockdevices[${i}]`));
}

/** mountinfo and /proc/swaps write a space as \040, a tab as \011, a newline as \012, a backslash as \134. */
export function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** /proc/self/mountinfo: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue". */
export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const f = line.split(" ");
    const dash = f.indexOf("-", 6);
    if (f.length < 10 || dash < 0) continue;
    mounts.push({
      majMin: f[2]!,
      mountpoint: unescapeOctal(f[4]!),
      fstype: f[dash + 1] ?? "",
      source: unescapeOctal(f[dash + 2] ?? ""),
      superOptions: f[dash + 3] ?? "",
    });
  }
  return mounts;
}

/** /proc/swaps: a header line, then "Filename Type Size Used Priority". */
export function parseSwaps(text: string): Swap[] {
  return text
    .split("\n")
    .slice(1)
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const f = l.split(/\s+/);
      return { file: unescapeOctal(f[0]!), type: f[1] ?? "" };
    });
}

/** Every device once (a volume group's LV appears under each of its PVs), by kernel name. */
export function indexDevices(devices: BlockDevice[]): Map<string, BlockDevice> {
  const byKname = new Map<string, BlockDevice>();
  const walk = (d: BlockDevice) => {
    if (!byKname.has(d.kname)) byKname.set(d.kname, d);
    d.children.forEach(walk);
  };
  devices.forEach(walk);
  return byKname;
}

/** The device a path or "major:minor" names: /dev/sdb, /dev/mapper/x, /dev/dm-1, 8:16. */
export function findDevice(devices: BlockDevice[], what: string): BlockDevice | undefined {
  for (const d of indexDevices(devices).values()) {
    if (d.majMin === what || d.path === what || `/dev/${d.kname}` === what || `/dev/${d.name}` === what) return d;
  }
  return undefined;
}

/** The chains from a top-level device down to each of its descendants, the device itself first. */
export function chainsTo(top: BlockDevice, kname: string): BlockDevice[][] {
  const out: BlockDevice[][] = [];
  const walk = (d: BlockDevice, path: BlockDevice[]) => {
    const p = [...path, d];
    if (d.kname === kname) out.push(p);
    d.children.forEach((c) => walk(c, p));
  };
  walk(top, []);
  return out;
}

/** A device and everything built on it. */
export function subtree(d: BlockDevice): BlockDevice[] {
  return [d, ...d.children.flatMap(subtree)];
}

/** The mount whose mount point holds a path (the longest matching mount point; the last one mounted wins a tie). */
export function mountHolding(mounts: Mount[], path: string): Mount | undefined {
  let best: Mount | undefined;
  for (const m of mounts) {
    const mp = m.mountpoint;
    const inside = mp === "/" ? path.startsWith("/") : path === mp || path.startsWith(mp.endsWith("/") ? mp : `${mp}/`);
    if (inside && (!best || mp.length >= best.mountpoint.length)) best = m;
  }
  return best;
}

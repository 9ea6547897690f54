// What goes into a PAIO image, in one place: Debian packages, paths, the
// kernel command line, the timestamp every file gets.

import { fileURLToPath } from "node:url";
import { homedir } from "node:os";
import { join } from "node:path";

export const REPO = fileURLToPath(new URL("../", import.meta.url));
export const BUILD = join(REPO, "out", "build");

/**
 * The architectures PAIO builds for. x86_64 is the default; PAIO_ARCH (make's
 * ARCH=) picks another. Everything that differs between them is here.
 */
export const ARCHES = {
  x86_64: {
    debArch: "amd64",
    /** Debian's multiarch directory name. */
    multiarch: "x86_64-linux-gnu",
    /** The C compiler for PID 1 and the exec helper (static). */
    gcc: "gcc",
    /** npm's Bun build: "baseline" runs on x86-64 CPUs without AVX2 too. */
    bunPackage: "@oven/bun-linux-x64-baseline",
    /** onnxruntime-node's directory for this architecture. */
    onnxDir: "x64",
    /** Outputs go to out/ itself for the first architecture, out/<arch>/ for the others. */
    outSub: "",
    kernelLink: "kernel",
    /** Debian's kernel when PAIO_STOCK_KERNEL=1. */
    debianKernel: "linux-image-cloud-amd64",
  },
  arm64: {
    debArch: "arm64",
    multiarch: "aarch64-linux-gnu",
    gcc: "aarch64-linux-gnu-gcc",
    bunPackage: "@oven/bun-linux-aarch64",
    onnxDir: "arm64",
    outSub: "arm64",
    kernelLink: "arm64/kernel",
    debianKernel: "linux-image-arm64",
  },
} as const;
export type Arch = keyof typeof ARCHES;

/** The architecture to build for: PAIO_ARCH, default x86_64; an unknown one names those that exist. */
export function targetArch(value = process.env.PAIO_ARCH): Arch {
  const a = value || "x86_64";
  if (a in ARCHES) return a as Arch;
  throw new ArchError(`unknown architecture '${a}' (PAIO_ARCH / ARCH=); the ones PAIO builds: ${Object.keys(ARCHES).join(", ")}`);
}
export class ArchError extends Error {}

export const ARCH: Arch = (() => {
  try {
    return targetArch();
  } catch (e) {
    console.error(`image: error: ${(e as Error).message}`);
    process.exit(2);
  }
})();
export const A = ARCHES[ARCH];

/** The top output directory; PAIO_OUT lets a test build a second image beside the first. */
export const OUT_BASE = process.env.PAIO_OUT ?? join(REPO, "out");
/** This architecture's outputs: out/ for x86_64, out/arm64/ for arm64. */
export const OUT = A.outSub ? join(OUT_BASE, A.outSub) : OUT_BASE;

/** Downloaded Debian packages live outside the clone, so a fresh clone reuses them. */
export const CACHE = process.env.PAIO_CACHE ?? join(homedir(), ".cache", "paio");

/**
 * Files in the root file system get this modification time, so two builds of
 * the same inputs are byte-identical. Override with SOURCE_DATE_EPOCH.
 */
export const SOURCE_DATE_EPOCH = Number(process.env.SOURCE_DATE_EPOCH ?? 1767225600); // 2026-01-01

/**
 * Debian's kernel, used unless PAIO_KERNEL names a kernel directory: the small
 * cloud flavour by default on x86_64; PAIO_DEBIAN_KERNEL=linux-image-amd64
 * picks the generic one (more drivers, e.g. the i6300esb watchdog QEMU emulates).
 */
export const DEBIAN_KERNEL_META = process.env.PAIO_DEBIAN_KERNEL ?? A.debianKernel;

/** Networking (docs/network.md): SSH, firewall, time, Wi-Fi, and the libraries they need. */
export const NETWORK_PACKAGES = [
  ...["dropbear-bin", "libtomcrypt1", "libtommath1", "zlib1g", "libcrypt1"],
  ...["nftables", "libnftables1", "libedit2", "libbsd0", "libmd0", "libtinfo6", "libmnl0", "libnftnl11", "libxtables12", "libjansson4", "libgmp10"],
  ...["chrony", "libnettle8", "libhogweed6", "libgnutls30", "libp11-kit0", "libffi8", "libidn2-0", "libunistring2", "libtasn1-6", "libcap2", "libseccomp2"],
  ...["wpasupplicant", "libnl-3-200", "libnl-genl-3-200", "libnl-route-3-200", "libpcsclite1", "libssl3", "libdbus-1-3", "libsystemd0", "libgcrypt20", "libgpg-error0", "liblz4-1", "liblzma5", "libzstd1"],
];

/**
 * A/B updates (docs/updates.md): RAUC, and the D-Bus system bus its service
 * answers on, with the libraries they need.
 */
export const UPDATE_PACKAGES = [
  "rauc", "dbus-daemon",
  ...["libglib2.0-0", "libpcre2-8-0", "libmount1", "libselinux1", "libjson-glib-1.0-0", "libfdisk1"],
  ...["libcurl3-gnutls", "libnghttp2-14", "librtmp1", "libssh2-1", "libpsl5", "libldap-2.5-0", "libgssapi-krb5-2", "libkrb5-3", "libk5crypto3", "libkrb5support0", "libkeyutils1", "libbrotli1", "libsasl2-2"],
  ...["libdbus-1-3", "libexpat1", "libapparmor1", "libaudit1", "libcap-ng0"],
];
/** The programs of UPDATE_PACKAGES, by package. */
export const UPDATE_FILES: Record<string, string[]> = {
  rauc: ["usr/bin/rauc"],
  "dbus-daemon": ["usr/bin/dbus-daemon"],
};
/** Debian packages whose files go into the image (libraries are picked by ELF needs). */
export const DEBIAN_PACKAGES = [
  "busybox-static",
  "libc6",
  "libgcc-s1",
  "libstdc++6",
  "e2fsprogs",
  "libext2fs2",
  "libcom-err2",
  "libblkid1",
  "libuuid1",
  "libss2",
  "systemd-boot-efi",
  "rt-tests",
  "libnuma1",
  ...NETWORK_PACKAGES,
  ...UPDATE_PACKAGES,
];

/** Packages only some architectures need: the Raspberry Pi's boot firmware (Debian's non-free-firmware). */
export const ARCH_PACKAGES: Record<Arch, string[]> = { x86_64: [], arm64: ["raspi-firmware", "firmware-brcm80211"] };

/**
 * Wi-Fi firmware of the Pi 3 (BCM43430) and the Pi 3 B+/4 (BCM43455), from
 * Debian's firmware-brcm80211, with the boards' own calibration files. It goes
 * into the initramfs: the built-in brcmfmac driver asks for it while it
 * probes, before the root file system is mounted.
 */
export const WIFI_FIRMWARE: Record<Arch, { pkg: string; src: string; dest: string }[]> = {
  x86_64: [],
  arm64: [
    "brcmfmac43430-sdio.bin", "brcmfmac43430-sdio.clm_blob", "brcmfmac43430-sdio.raspberrypi,3-model-b.txt",
    "brcmfmac43455-sdio.bin", "brcmfmac43455-sdio.clm_blob", "brcmfmac43455-sdio.raspberrypi,3-model-b-plus.txt", "brcmfmac43455-sdio.raspberrypi,4-model-b.txt",
  ].map((f) => ({ pkg: "firmware-brcm80211", src: `lib/firmware/brcm/${f}`, dest: `brcm/${f}` })),
};

/** Network programs from Debian, by package (started by the network, ssh and time units). */
export const NETWORK_FILES: Record<string, string[]> = {
  "dropbear-bin": ["usr/sbin/dropbear", "usr/bin/dropbearkey"],
  nftables: ["usr/sbin/nft"],
  chrony: ["usr/sbin/chronyd", "usr/bin/chronyc"],
  wpasupplicant: ["sbin/wpa_supplicant"],
};

/** Scheduling-latency tools (Debian's rt-tests) for measuring the kernel's hooks on a device. */
export const RT_TESTS_FILES = ["usr/bin/cyclictest", "usr/bin/hackbench"];

/** Programs from e2fsprogs that PID 1 needs for the data partition. */
export const E2FSPROGS_FILES = ["sbin/mke2fs", "sbin/e2fsck", "etc/mke2fs.conf"];

export const KERNEL_CMDLINE = [
  "console=tty0",
  "console=ttyS0,115200",
  "root=PARTLABEL=paio-root-a",
  "rauc.slot=A",
  "ro",
  "loglevel=4",
  "panic=10",
];

/** arm64 UEFI machines and QEMU virt: the PL011 serial port is the console. */
export const ARM64_CMDLINE = ["console=ttyAMA0,115200", ...KERNEL_CMDLINE.filter((a) => !a.startsWith("console="))];

/**
 * The Raspberry Pi image has an MBR (the Pi's boot ROM reads no GPT on the
 * Pi 3), so partitions are found by the disk signature and number, not by
 * label. The console is the mini UART on the GPIO header (ttyS1).
 */
export const RPI_DISK_SIGNATURE = "50a10001";
/** The Pi image's size (image/genimage-rpi.cfg): QEMU's SD card must be a power of two. */
export const RPI_IMAGE_BYTES = 1 << 30;
export const RPI_CMDLINE = [
  "console=ttyS1,115200",
  `root=PARTUUID=${RPI_DISK_SIGNATURE}-02`,
  "ro",
  `paio.data=PARTUUID=${RPI_DISK_SIGNATURE}-03`,
  "loglevel=4",
  "panic=10",
];

/** The disk images of each architecture: UEFI ones (GPT, systemd-boot) and the Pi's. */
export interface DiskImage {
  file: string;
  kind: "uefi" | "rpi";
  cmdline: string[];
  /** UEFI: the removable-media boot path and systemd-boot's file for this architecture. */
  efiBoot?: string;
  sdboot?: string;
}
export const DISK_IMAGES: Record<Arch, DiskImage[]> = {
  x86_64: [{ file: "paio-x86_64.img", kind: "uefi", cmdline: KERNEL_CMDLINE, efiBoot: "BOOTX64.EFI", sdboot: "systemd-bootx64.efi" }],
  arm64: [
    { file: "paio-arm64.img", kind: "uefi", cmdline: ARM64_CMDLINE, efiBoot: "BOOTAA64.EFI", sdboot: "systemd-bootaa64.efi" },
    { file: "paio-rpi.img", kind: "rpi", cmdline: RPI_CMDLINE },
  ],
};

/** The Pi's boot partition: firmware files from raspi-firmware, and the device trees the kernel build made. */
export const RPI_FIRMWARE_FILES = ["bootcode.bin", "start.elf", "fixup.dat", "start4.elf", "fixup4.dat"];
export const RPI_DTBS = ["bcm2837-rpi-3-b.dtb", "bcm2837-rpi-3-b-plus.dtb", "bcm2711-rpi-4-b.dtb"];

export const OUTPUTS = {
  disk: join(OUT, DISK_IMAGES[ARCH][0]!.file),
  rootfs: join(OUT, "rootfs.squashfs"),
  kernel: join(OUT, "vmlinuz"),
  initrd: join(OUT, "initrd.img"),
  manifest: join(OUT, "manifest.tsv"),
  stamp: join(OUT, "image.stamp"),
};

/** Where `make build` leaves our own compiled parts: the C programs per architecture, the bundles shared. */
const BUILD_ARCH = A.outSub ? join(BUILD, A.outSub) : BUILD;
export const OWN_PARTS = {
  pid1: join(BUILD_ARCH, "pid1"),
  qemuExec: join(BUILD_ARCH, "qemu-exec"),
  supervisor: join(BUILD, "supervisor.js"),
  network: join(BUILD, "network.js"),
  paioCli: join(BUILD, "paio.js"),
  agent: join(BUILD, "agent.js"),
  console: join(BUILD, "console.js"),
};

/** Where `make models` leaves the signed models (see agents/models/build.ts). */
export const MODELS_DIR = join(REPO, "out", "models");

/**
 * onnxruntime-node is loaded at run time from /usr/lib/paio/node_modules (the
 * agent's bundle leaves it external: its native binding cannot be bundled).
 * These are the files it needs, relative to node_modules.
 */
export function onnxruntimeJs(arch: Arch) {
  const dir = ARCHES[arch].onnxDir;
  return {
    "onnxruntime-node": { keep: new RegExp(`^(package\\.json|dist/[^/]+\\.js|bin/napi-v6/linux/${dir}/onnxruntime_binding\\.node)$`) },
    "onnxruntime-common": { keep: /^(package\.json|dist\/cjs\/.+\.js)$/ },
  };
}
export const ONNXRUNTIME_JS = onnxruntimeJs(ARCH);

export function onnxLibDir(arch: Arch): string {
  return join(REPO, "node_modules/onnxruntime-node/bin/napi-v6/linux", ARCHES[arch].onnxDir);
}

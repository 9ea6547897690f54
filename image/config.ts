// What goes into a PAIO image, in one place: Debian packages, paths, the
// kernel command line, the timestamp every file gets.

import { fileURLToPath } from "node:url";
import { homedir } from "node:os";
import { join } from "node:path";

export const REPO = fileURLToPath(new URL("../", import.meta.url));
/** Outputs; PAIO_OUT lets a test build a second image beside the first. */
export const OUT = process.env.PAIO_OUT ?? join(REPO, "out");
export const BUILD = join(REPO, "out", "build");

/** Downloaded Debian packages live outside the clone, so a fresh clone reuses them. */
export const CACHE = process.env.PAIO_CACHE ?? join(homedir(), ".cache", "paio");

/**
 * Files in the root file system get this modification time, so two builds of
 * the same inputs are byte-identical. Override with SOURCE_DATE_EPOCH.
 */
export const SOURCE_DATE_EPOCH = Number(process.env.SOURCE_DATE_EPOCH ?? 1767225600); // 2026-01-01

/**
 * Debian's kernel, used unless PAIO_KERNEL names a kernel directory: the small
 * cloud flavour by default; PAIO_DEBIAN_KERNEL=linux-image-amd64 picks the
 * generic one (more drivers, e.g. the i6300esb watchdog QEMU emulates).
 */
export const DEBIAN_KERNEL_META = process.env.PAIO_DEBIAN_KERNEL ?? "linux-image-cloud-amd64";

/** Networking (docs/network.md): SSH, firewall, time, Wi-Fi, and the libraries they need. */
export const NETWORK_PACKAGES = [
  ...["dropbear-bin", "libtomcrypt1", "libtommath1", "zlib1g", "libcrypt1"],
  ...["nftables", "libnftables1", "libedit2", "libbsd0", "libmd0", "libtinfo6", "libmnl0", "libnftnl11", "libxtables12", "libjansson4", "libgmp10"],
  ...["chrony", "libnettle8", "libhogweed6", "libgnutls30", "libp11-kit0", "libffi8", "libidn2-0", "libunistring2", "libtasn1-6", "libcap2", "libseccomp2"],
  ...["wpasupplicant", "libnl-3-200", "libnl-genl-3-200", "libnl-route-3-200", "libpcsclite1", "libssl3", "libdbus-1-3", "libsystemd0", "libgcrypt20", "libgpg-error0", "liblz4-1", "liblzma5", "libzstd1"],
];

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
];

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
  "root=PARTLABEL=paio-root",
  "ro",
  "loglevel=4",
  "panic=10",
];

export const OUTPUTS = {
  disk: join(OUT, "paio-x86_64.img"),
  rootfs: join(OUT, "rootfs.squashfs"),
  kernel: join(OUT, "vmlinuz"),
  initrd: join(OUT, "initrd.img"),
  manifest: join(OUT, "manifest.tsv"),
  stamp: join(OUT, "image.stamp"),
};

/** Where `make build` leaves our own compiled parts. */
export const OWN_PARTS = {
  pid1: join(BUILD, "pid1"),
  qemuExec: join(BUILD, "qemu-exec"),
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
export const ONNXRUNTIME_JS = {
  "onnxruntime-node": { keep: /^(package\.json|dist\/[^/]+\.js|bin\/napi-v6\/linux\/x64\/onnxruntime_binding\.node)$/ },
  "onnxruntime-common": { keep: /^(package\.json|dist\/cjs\/.+\.js)$/ },
} as const;

export const DEFAULT_BUN = join(REPO, "node_modules/@oven/bun-linux-x64-baseline/bin/bun");
export const ONNXRUNTIME_LIB_DIR = join(REPO, "node_modules/onnxruntime-node/bin/napi-v6/linux/x64");

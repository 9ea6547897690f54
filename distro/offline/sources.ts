// Where each package Buildroot would download comes from in the offline
// build: a Debian source package (its upstream tarball, unpacked) given to
// Buildroot as <PKG>_OVERRIDE_SRCDIR. Debian's versions are sometimes older
// than Buildroot's; the settings below are what those versions need.

/** Buildroot package (without "host-") -> Debian source package; null: nothing to build. */
export const BR_SOURCES: Record<string, string | null> = {
  busybox: "busybox",
  e2fsprogs: "e2fsprogs",
  "util-linux": "util-linux",
  acl: "acl",
  attr: "attr",
  autoconf: "autoconf",
  automake: "automake-1.16",
  // The kernel's device tree compiler (boards with a device tree) needs bison
  // and flex: the host's own are used (see below), as Buildroot itself would
  // if it did not prefer its own builds for reproducibility.
  bison: null,
  flex: null,
  // The host's own fakeroot is used (see FAKEROOT below).
  fakeroot: null,
  kmod: "kmod",
  libtool: "libtool",
  libzlib: "zlib",
  lz4: "lz4",
  lzo: "lzo2",
  m4: "m4",
  patchelf: "patchelf",
  pkgconf: "pkgconf",
  squashfs: "squashfs-tools",
  tar: "tar",
  xz: "xz-utils",
  zstd: "libzstd",
};

/** Variables set on make's command line: they win over the packages' own .mk files. */
export const OFFLINE_MAKE_VARS = [
  // xz 5.4 does not know Buildroot's options for 5.6 (e.g. the riscv filter).
  "HOST_XZ_CONF_OPTS=",
  // The host's fakeroot is installed as is; nothing to regenerate.
  "HOST_FAKEROOT_AUTORECONF=NO",
  // The same for flex (which would otherwise also need gettext-tiny, which Debian does not have).
  "HOST_FLEX_AUTORECONF=NO",
];

/** Extra settings, read by Buildroot before the packages' .mk files. */
const SETTINGS = `
# Debian's upstream tarballs of these have no generated configure script.
PATCHELF_AUTORECONF = YES
KMOD_AUTORECONF = YES

# fakeroot: the host's (Debian's) fakeroot, not a build from source.
HOST_FAKEROOT_CONFIGURE_CMDS = true
HOST_FAKEROOT_BUILD_CMDS = true
define HOST_FAKEROOT_INSTALL_CMDS
	mkdir -p $(HOST_DIR)/bin
	ln -sf /usr/bin/fakeroot $(HOST_DIR)/bin/fakeroot
endef

# bison and flex: the host's (Debian's), for the kernel's dtc.
HOST_BISON_CONFIGURE_CMDS = true
HOST_BISON_BUILD_CMDS = true
define HOST_BISON_INSTALL_CMDS
	mkdir -p $(HOST_DIR)/bin
	ln -sf /usr/bin/bison $(HOST_DIR)/bin/bison
endef
HOST_FLEX_CONFIGURE_CMDS = true
HOST_FLEX_BUILD_CMDS = true
define HOST_FLEX_INSTALL_CMDS
	mkdir -p $(HOST_DIR)/bin
	ln -sf /usr/bin/flex $(HOST_DIR)/bin/flex
endef
`;

/**
 * Buildroot packages that are prebuilt files rather than sources: taken from
 * a Debian binary package (fetched from `component`, which the private apt
 * list adds as a deb entry), its directories mapped into the layout the
 * Buildroot package expects (`from` in the .deb -> `to` in its source tree).
 */
export const BR_BINARY_DEBS: Record<string, { deb: string; component: string; map: { from: string; to: string }[]; license: { from: string; to: string } }> = {
  // The Pi's boot firmware (start4.elf, fixup4.dat, ...), which Buildroot
  // takes from github.com/raspberrypi/firmware's boot/ directory.
  "rpi-firmware": {
    deb: "raspi-firmware",
    component: "non-free-firmware",
    map: [{ from: "usr/lib/raspi-firmware", to: "boot" }],
    license: { from: "usr/share/doc/raspi-firmware/copyright", to: "boot/LICENCE.broadcom" },
  },
};

export function overrideFile(dirs: Map<string, string>): string {
  const lines = ["# Written by distro/offline/build.ts: Debian's sources for an offline build.", ""];
  for (const [pkg, dir] of [...dirs].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`${pkg.toUpperCase().replace(/-/g, "_")}_OVERRIDE_SRCDIR = ${dir}`);
  }
  return lines.join("\n") + "\n" + SETTINGS;
}

/** Fixes to unpacked sources before Buildroot sees them (keyed by Debian source package). */
export const SOURCE_FIXUPS: Record<string, string[][]> = {
  // kmod's configure.ac includes gtk-doc's make fragment, which only gtk-doc ships.
  kmod: [["touch", "libkmod/docs/gtk-doc.make"]],
};

// The boards `make buildroot` builds offline, and for each architecture the
// Debian packages its external toolchain is made of.
//
//   make buildroot                              x86_64 UEFI PCs and QEMU q35 (paio_qemu_x86_64_defconfig)
//   make buildroot ARCH=arm64                   QEMU's arm64 virt machine, arm64 UEFI (paio_aarch64_virt_defconfig)
//   make buildroot ARCH=arm64 PAIO_BOARD=rpi4   Raspberry Pi 4, 64-bit (paio_raspberrypi4_64_defconfig)
//
// The Makefile passes its ARCH as PAIO_ARCH (x86_64 unless told otherwise).
// The board is PAIO_BOARD, or BOARD when make passes it on, else the
// architecture's first board (pc, virt).

export type Arch = "x86_64" | "arm64";

export interface Board {
  name: string;
  defconfig: string;
  arch: Arch;
  /** The disk image the post-image script writes into Buildroot's images/. */
  image: string;
  /** Where the outputs land, under out/buildroot/. */
  outDir: string;
  /** Buildroot packages taken from Debian binary packages (sources.ts, BR_BINARY_DEBS). */
  binaryDebs: string[];
}

export const BOARDS: Record<string, Board> = {
  pc: { name: "pc", defconfig: "paio_qemu_x86_64_defconfig", arch: "x86_64", image: "paio-x86_64.img", outDir: "", binaryDebs: [] },
  virt: { name: "virt", defconfig: "paio_aarch64_virt_defconfig", arch: "arm64", image: "paio-arm64.img", outDir: "arm64-virt", binaryDebs: [] },
  rpi4: { name: "rpi4", defconfig: "paio_raspberrypi4_64_defconfig", arch: "arm64", image: "paio-rpi4.img", outDir: "rpi4", binaryDebs: ["rpi-firmware"] },
};

/**
 * The board from PAIO_ARCH (or ARCH) and BOARD (or PAIO_BOARD): the
 * architecture's first board unless BOARD names another of the same
 * architecture. Throws, saying what exists, on an unknown name or a board of
 * another architecture.
 */
export function pickBoard(env: Record<string, string | undefined>): Board {
  const boardName = env.PAIO_BOARD || env.BOARD;
  const arch = env.PAIO_ARCH || env.ARCH || "x86_64";
  const ofArch = Object.values(BOARDS).filter((b) => b.arch === arch);
  if (!ofArch.length) throw new Error(`unknown architecture '${arch}' (ARCH=); the ones the Buildroot tree builds: x86_64, arm64`);
  if (!boardName) return ofArch[0]!;
  const board = BOARDS[boardName];
  if (!board) throw new Error(`unknown BOARD=${boardName} for the Buildroot build; the boards: ${Object.values(BOARDS).map((b) => `${b.name} (${b.arch})`).join(", ")}`);
  if (board.arch !== arch) throw new Error(`BOARD=${boardName} is an ${board.arch} board: make buildroot ARCH=${board.arch} PAIO_BOARD=${boardName}`);
  return board;
}

export interface Toolchain {
  /** The target tuple, the prefix of every program (BR2_TOOLCHAIN_EXTERNAL_CUSTOM_PREFIX). */
  prefix: string;
  /** Debian packages unpacked into the toolchain directory (gcc 12, glibc 2.36, Linux 6.1 headers). */
  debs: string[];
  /** Host packages whose programs the toolchain links to (binutils). */
  hostPackages: string[];
  /** Its directory under the cache (Buildroot's wrappers have the path built in). */
  dir: string;
  /** make variables for Buildroot with this toolchain. */
  makeVars: string[];
}

export const TOOLCHAINS: Record<Arch, Toolchain> = {
  // Debian's native compiler and C library, relocated; binutils are the host's.
  x86_64: {
    prefix: "x86_64-linux-gnu",
    debs: [
      "gcc-12", "cpp-12", "g++-12", "gcc-12-base", "libgcc-12-dev", "libstdc++-12-dev", "libc6", "libc6-dev", "linux-libc-dev",
      "libgcc-s1", "libstdc++6", "libcrypt1", "libcrypt-dev", "libgomp1", "libatomic1", "libitm1", "libquadmath0",
      "libasan8", "liblsan0", "libtsan2", "libubsan1", "libcc1-0",
    ],
    hostPackages: [],
    dir: "toolchain",
    makeVars: [],
  },
  // Debian's cross compiler and its arm64 C library (the *-arm64-cross
  // packages), with the C library moved into a sysroot of its own;
  // binutils are the host's binutils-aarch64-linux-gnu.
  arm64: {
    prefix: "aarch64-linux-gnu",
    debs: [
      "gcc-12-aarch64-linux-gnu", "cpp-12-aarch64-linux-gnu", "g++-12-aarch64-linux-gnu", "gcc-12-aarch64-linux-gnu-base",
      "libgcc-12-dev-arm64-cross", "libstdc++-12-dev-arm64-cross", "libc6-arm64-cross", "libc6-dev-arm64-cross", "linux-libc-dev-arm64-cross",
      "libgcc-s1-arm64-cross", "libstdc++6-arm64-cross", "libgomp1-arm64-cross", "libatomic1-arm64-cross", "libitm1-arm64-cross",
      "libasan8-arm64-cross", "liblsan0-arm64-cross", "libtsan2-arm64-cross", "libubsan1-arm64-cross", "libhwasan0-arm64-cross",
    ],
    hostPackages: ["binutils-aarch64-linux-gnu"],
    dir: "toolchain-arm64",
    // Buildroot refuses any compiler configured with --with-sysroot=/ (a
    // distribution's cross compiler is) because such a compiler would take
    // headers and libraries from the build machine's root. This one never
    // does: its programs are wrappers that always pass --sysroot (the
    // directory holding only the arm64 C library), and build.ts checks that
    // before the build. So that one check is switched off by name; every
    // other toolchain check Buildroot makes still runs.
    makeVars: ["check_unusable_toolchain=true"],
  },
};

/** The Buildroot settings that replace a defconfig's toolchain with the offline one at `path`. */
export function toolchainSettings(arch: Arch, path: string): Record<string, string> {
  return {
    BR2_TOOLCHAIN_EXTERNAL_BOOTLIN: "n",
    BR2_TOOLCHAIN_EXTERNAL_CUSTOM: "y",
    BR2_TOOLCHAIN_EXTERNAL_PREINSTALLED: "y",
    BR2_TOOLCHAIN_EXTERNAL_PATH: `"${path}/usr"`,
    BR2_TOOLCHAIN_EXTERNAL_CUSTOM_PREFIX: `"${TOOLCHAINS[arch].prefix}"`,
    BR2_TOOLCHAIN_EXTERNAL_GCC_12: "y",
    BR2_TOOLCHAIN_EXTERNAL_HEADERS_6_1: "y",
    BR2_TOOLCHAIN_EXTERNAL_CUSTOM_GLIBC: "y",
    BR2_TOOLCHAIN_EXTERNAL_CXX: "y",
    BR2_TOOLCHAIN_EXTERNAL_OPENMP: "y",
    BR2_TOOLCHAIN_EXTERNAL_INET_RPC: "n",
  };
}

/**
 * The offline defconfig: the committed one without the settings `settings`
 * replaces (and without its Bootlin toolchain choice, whatever the
 * architecture), then those settings.
 */
export function mergeDefconfig(base: string, settings: Record<string, string>): string {
  const kept = base.split("\n").filter((l) => {
    const name = /^(BR2_\w+)=/.exec(l)?.[1] ?? /^# (BR2_\w+) is not set$/.exec(l)?.[1];
    return l.trim() && !(name && (name in settings || name.startsWith("BR2_TOOLCHAIN_EXTERNAL_BOOTLIN_")));
  });
  const extra = Object.entries(settings).map(([k, v]) => (v === "n" ? `# ${k} is not set` : `${k}=${v}`));
  return [...kept, "# offline: Debian's toolchain, sources and kernel (distro/offline/build.ts)", ...extra].join("\n") + "\n";
}

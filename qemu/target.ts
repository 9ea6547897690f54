// What a guest is: an architecture and the board QEMU emulates for it.
//   x86_64 on "pc"   (q35, OVMF or direct kernel boot)
//   arm64  on "virt" (AAVMF or direct kernel boot)
//   arm64  on "rpi3" (raspi3b: a Raspberry Pi 3 B, booted from its SD card's
//                     FAT partition as the Pi firmware would; no network)
// The built files live in out/ for x86_64 and in out/arm64/ for arm64.

import { join } from "node:path";

export type Arch = "x86_64" | "arm64";
export type Board = "pc" | "virt" | "rpi3";

export interface Target {
  arch: Arch;
  board: Board;
}

export const ARCHES: readonly Arch[] = ["x86_64", "arm64"];
export const BOARDS: readonly Board[] = ["pc", "virt", "rpi3"];

const BOARD_ARCH: Record<Board, Arch> = { pc: "x86_64", virt: "arm64", rpi3: "arm64" };
const DEFAULT_BOARD: Record<Arch, Board> = { x86_64: "pc", arm64: "virt" };

/** The Pi's memory: QEMU's raspi3b has exactly 1 GiB, like the board. */
export const RPI3_MEMORY_MB = 1024;
/** The Pi 3's four Cortex-A53 cores: QEMU's raspi3b has neither more nor fewer. */
export const RPI3_CPUS = 4;

export class TargetError extends Error {}

export function parseArch(value: string, where = "--arch "): Arch {
  const v = value === "aarch64" ? "arm64" : value === "amd64" || value === "x86-64" ? "x86_64" : value;
  if ((ARCHES as readonly string[]).includes(v)) return v as Arch;
  throw new TargetError(`${where}${value}: unknown architecture; there are ${ARCHES.join(", ")}`);
}

export function parseBoard(value: string, where = "--board "): Board {
  if ((BOARDS as readonly string[]).includes(value)) return value as Board;
  throw new TargetError(`${where}${value}: unknown board; there are ${BOARDS.map((b) => `${b} (${BOARD_ARCH[b]})`).join(", ")}`);
}

/** The architecture and board from what was asked; a board implies its architecture. */
export function resolveTarget(asked: { arch?: Arch; board?: Board }): Target {
  const { arch, board } = asked;
  if (board && arch && BOARD_ARCH[board] !== arch) {
    const boards = BOARDS.filter((b) => BOARD_ARCH[b] === arch);
    throw new TargetError(`board ${board} is ${BOARD_ARCH[board]}, not ${arch}; ${arch} has ${boards.join(", ")}`);
  }
  if (board) return { arch: BOARD_ARCH[board], board };
  const a = arch ?? "x86_64";
  return { arch: a, board: DEFAULT_BOARD[a] };
}

/** PAIO_TEST_ARCH and PAIO_TEST_BOARD: which guest the tests boot when they do not say. */
export function targetFromEnv(env: Record<string, string | undefined> = process.env): { arch?: Arch; board?: Board } {
  const arch = env.PAIO_TEST_ARCH ? parseArch(env.PAIO_TEST_ARCH, "PAIO_TEST_ARCH=") : undefined;
  const board = env.PAIO_TEST_BOARD ? parseBoard(env.PAIO_TEST_BOARD, "PAIO_TEST_BOARD=") : undefined;
  return { arch, board };
}

/** Where the build puts an architecture's files: out/ for x86_64, out/arm64/ for arm64. */
export function artifactDir(outDir: string, arch: Arch): string {
  return arch === "x86_64" ? outDir : join(outDir, "arm64");
}

/** The disk image `make image` builds for a target. */
export function imagePath(outDir: string, t: Target): string {
  const dir = artifactDir(outDir, t.arch);
  if (t.board === "rpi3") return join(dir, "paio-rpi.img");
  return join(dir, t.arch === "x86_64" ? "paio-x86_64.img" : "paio-arm64.img");
}

/** How to build a target's image. */
export function buildHint(t: Target): string {
  return t.arch === "x86_64" ? "make image" : "make image ARCH=arm64";
}

/** The options that select a target on `paio qemu`'s command line. */
export function targetFlags(t: Target): string {
  if (t.board === "rpi3") return "--board rpi3";
  return `--arch ${t.arch}`;
}

export function describeTarget(t: Target): string {
  switch (t.board) {
    case "pc":
      return "x86_64 (q35)";
    case "virt":
      return "arm64 (virt)";
    case "rpi3":
      return "arm64 (Raspberry Pi 3 B)";
  }
}

/**
 * Seconds to wait for the supervisor's readiness: PAIO_BOOT_TIMEOUT, else 300
 * for x86_64 and more for arm64, whose emulation (TCG on an x86_64 host) is
 * slower, the Pi's SD card most of all.
 */
export function defaultBootTimeoutS(t: Target, env: Record<string, string | undefined> = process.env): number {
  const given = Number(env.PAIO_BOOT_TIMEOUT);
  if (env.PAIO_BOOT_TIMEOUT && Number.isFinite(given) && given > 0) return given;
  return t.board === "pc" ? 300 : t.board === "virt" ? 600 : 900;
}

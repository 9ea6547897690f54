// Shared helpers for tests that boot the image.
import { fileURLToPath } from "node:url";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { afterAll, beforeAll } from "vitest";
import { join } from "node:path";
import { Guest, type GuestOptions } from "../../qemu/guest.ts";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
/**
 * The architecture the end-to-end tests boot: x86_64, or arm64 (QEMU virt,
 * cortex-a72) when PAIO_TEST_ARCH=arm64 (`make test-arm64`).
 */
export const TEST_ARCH = process.env.PAIO_TEST_ARCH === "arm64" ? "arm64" : "x86_64";
export const OUT = TEST_ARCH === "arm64" ? join(REPO, "out", "arm64") : join(REPO, "out");
export const IMAGE = join(OUT, TEST_ARCH === "arm64" ? "paio-arm64.img" : "paio-x86_64.img");
/** Emulated arm64 is slower than emulated x86_64: its boots get more time. */
export const BOOT_TIMEOUT_MS = Number(process.env.PAIO_BOOT_TIMEOUT ?? (TEST_ARCH === "arm64" ? 600 : 300)) * 1000;

export function requireBuiltImage(image = IMAGE): void {
  if (!existsSync(image)) throw new Error(`${image} is missing: run 'make image${TEST_ARCH === "arm64" ? " ARCH=arm64" : ""}' (make test does it) before the end-to-end tests`);
}

/**
 * A private, sparse copy of the built disk image for one test file, removed
 * afterwards: for tests that boot several times with persistent data. Call it
 * at the top of a describe block; the function returns the copy's path.
 */
export function scratchDisk(name: string): () => string {
  let dir = "";
  beforeAll(() => {
    requireBuiltImage();
    dir = mkdtempSync(join(tmpdir(), `paio-${name}-`));
    Bun.spawnSync(["cp", "--sparse=always", IMAGE, join(dir, "disk.img")]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return () => join(dir, "disk.img");
}

/** Boots a guest and waits for the supervisor; the caller must shut it down or kill it. */
export async function bootGuest(opts: Partial<GuestOptions> = {}): Promise<Guest> {
  requireBuiltImage();
  const guest = await Guest.start({
    outDir: OUT,
    // The project's one SSH key (out/ssh/), the one `bin/paio ssh` uses, whatever the architecture.
    keyDir: join(REPO, "out"),
    disk: IMAGE,
    arch: TEST_ARCH,
    boot: "direct",
    snapshot: true,
    echo: process.env.PAIO_TEST_CONSOLE ? (l) => process.stderr.write(`console| ${l}\n`) : undefined,
    ...opts,
  });
  try {
    await guest.waitReady(BOOT_TIMEOUT_MS);
  } catch (e) {
    guest.kill();
    throw e;
  }
  return guest;
}

/**
 * Shell functions every test script gets. busybox has no pgrep: `pgrep PATTERN`
 * prints the lowest PID whose command line contains PATTERN. They match with
 * the shell's `case`, so it never finds its own helper processes.
 */
export const PRELUDE = `
pgrep() {
  for d in /proc/[0-9]*; do
    c=$(cat "$d/cmdline" 2>/dev/null | tr '\\0' ' ')
    case "$c" in *"$1"*) echo "\${d#/proc/}" ;; esac
  done | sort -n | head -n 1
}
# pcount PATTERN: how many processes have PATTERN in their command line.
pcount() {
  n=0
  for d in /proc/[0-9]*; do
    c=$(cat "$d/cmdline" 2>/dev/null | tr '\\0' ' ')
    case "$c" in *"$1"*) n=$((n + 1)) ;; esac
  done
  echo $n
}
`;

/** Runs a script that must succeed; returns its output. */
export async function sh(guest: Guest, script: string, timeoutMs?: number): Promise<string> {
  const { code, output } = await guest.sh(PRELUDE + script, timeoutMs);
  if (code !== 0) throw new Error(`guest script failed with ${code}:\n${script}\n--- output ---\n${output}`);
  return output;
}

/** Polls the console until a line matches, or fails after timeoutMs. */
export async function consoleLine(guest: Guest, re: RegExp, timeoutMs = 60_000): Promise<string> {
  let timer: Timer | undefined;
  try {
    return await Promise.race([
      guest.console.waitFor(re),
      new Promise<string>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no console line matching ${re} within ${timeoutMs} ms; last lines:\n${guest.console.lastLines(20).join("\n")}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Byte offset and size of a GPT partition of a disk image, by name. */
export function partition(image: string, name: string): { offset: number; size: number } {
  const out = Bun.spawnSync(["sfdisk", "--json", image], { stdout: "pipe" }).stdout.toString();
  const table = JSON.parse(out).partitiontable;
  const p = table.partitions.find((x: { name?: string }) => x.name === name);
  if (!p) throw new Error(`${image} has no partition named ${name}`);
  const sector = table.sectorsize ?? 512;
  return { offset: p.start * sector, size: p.size * sector };
}

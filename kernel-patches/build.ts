#!/usr/bin/env bun
// `make kernel [ARCH=arm64]`: Debian's linux-source-6.1 with PAIO's patches,
// configured from tinyconfig plus kernel-patches/paio.config and the
// architecture's fragment (x86_64.config, arm64.config), everything built in.
// arm64 is cross-built with Debian's aarch64-linux-gnu-gcc and also gets the
// Raspberry Pi device trees. The result is cached outside the clone, keyed by
// a hash of its inputs (architecture, source version, patches, fragments,
// this script), so it is rebuilt only when one of them changes:
//
//   ~/.cache/paio/kernel/<hash>/{vmlinuz, config, release, build.log[, dtbs/]}
//
// and out/kernel (x86_64) or out/arm64/kernel points at it (what `make image`
// passes as PAIO_KERNEL).

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, copyFileSync, lstatSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkFragment, parseFragment } from "./fragment.ts";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const PATCHES = join(REPO, "kernel-patches");
const CACHE = join(process.env.PAIO_CACHE ?? join(homedir(), ".cache", "paio"), "kernel");
const TARBALL = process.env.PAIO_LINUX_SOURCE ?? "/usr/src/linux-source-6.1.tar.xz";
const JOBS = process.env.PAIO_KERNEL_JOBS ?? "2";
const t0 = performance.now();

/** How each architecture is built: kernel ARCH, cross compiler, image target, device trees. */
export const TARGETS = {
  x86_64: { karch: "x86", cross: "", image: "bzImage", imagePath: "arch/x86/boot/bzImage", dtbs: [] as string[], link: "out/kernel" },
  arm64: {
    karch: "arm64",
    cross: "aarch64-linux-gnu-",
    // The uncompressed Image: an EFI application for UEFI machines, and what the Pi's firmware loads.
    image: "Image",
    imagePath: "arch/arm64/boot/Image",
    dtbs: ["broadcom/bcm2837-rpi-3-b.dtb", "broadcom/bcm2837-rpi-3-b-plus.dtb", "broadcom/bcm2711-rpi-4-b.dtb"],
    link: "out/arm64/kernel",
  },
} as const;
export type KernelArch = keyof typeof TARGETS;

export function parseArch(value: string | undefined): KernelArch {
  const a = value || "x86_64";
  if (a in TARGETS) return a as KernelArch;
  fail(`unknown architecture '${a}'; the ones PAIO builds: ${Object.keys(TARGETS).join(", ")}`);
}

const ARCH = parseArch(process.env.PAIO_ARCH);
const T = TARGETS[ARCH];
/** make's own variables from a calling make (MAKEFLAGS may carry ARCH=...) must not reach the kernel's make. */
const MAKE_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "ARCH", "CROSS_COMPILE"].includes(k)));
const KMAKE = ["make", `ARCH=${T.karch}`, ...(T.cross ? [`CROSS_COMPILE=${T.cross}`] : [])];

function say(line: string): void {
  console.log(`kernel ${line}`);
}

function fail(msg: string): never {
  console.error(`kernel: error: ${msg}`);
  process.exit(1);
}

function elapsed(): string {
  return `${((performance.now() - t0) / 1000).toFixed(0)} s`;
}

function run(cmd: string[], cwd: string, what: string): string {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe", env: MAKE_ENV });
  const out = r.stdout.toString() + r.stderr.toString();
  if (r.exitCode !== 0) fail(`${what} failed (${cmd.join(" ")}):\n${out.split("\n").slice(-30).join("\n")}`);
  return out;
}

export function patchFiles(): string[] {
  return readdirSync(PATCHES).filter((f) => /^\d{4}-.*\.patch$/.test(f)).sort();
}

function sourceVersion(): string {
  const r = Bun.spawnSync(["dpkg-query", "-W", "-f=${Version}", "linux-source-6.1"], { stdout: "pipe", stderr: "pipe" });
  return r.exitCode === 0 ? r.stdout.toString().trim() : "unknown";
}

/** The fragments merged on top of tinyconfig, in order. */
export function fragmentFiles(arch: KernelArch): string[] {
  return ["paio.config", `${arch}.config`];
}

function compilerVersion(): string {
  const r = Bun.spawnSync([`${T.cross}gcc`, "-dumpfullversion"], { stdout: "pipe", stderr: "pipe" });
  return r.exitCode === 0 ? r.stdout.toString().trim() : "unknown";
}

export function inputsHash(): string {
  const h = createHash("sha256");
  h.update(`source ${sourceVersion()}\n`);
  h.update(`arch ${ARCH} ${T.cross}gcc ${compilerVersion()}\n`);
  for (const f of [...patchFiles(), ...fragmentFiles(ARCH), "build.ts", "fragment.ts"]) h.update(`${f}\0`).update(readFileSync(join(PATCHES, f)));
  return h.digest("hex").slice(0, 16);
}

function link(target: string): void {
  const l = join(REPO, T.link);
  mkdirSync(dirname(l), { recursive: true });
  if (existsSync(l) || (() => { try { return lstatSync(l).isSymbolicLink(); } catch { return false; } })()) rmSync(l, { recursive: true, force: true });
  symlinkSync(target, l);
}

async function main(): Promise<void> {
  if (!existsSync(TARBALL)) fail(`${TARBALL} is missing: run 'make deps' (it installs Debian's linux-source-6.1), or set PAIO_LINUX_SOURCE to the tarball`);
  if (T.cross && Bun.spawnSync(["sh", "-c", `command -v ${T.cross}gcc`]).exitCode !== 0) fail(`${T.cross}gcc is missing: run 'make deps' (it installs Debian's gcc-aarch64-linux-gnu)`);
  const hash = inputsHash();
  const dest = join(CACHE, hash);
  if (existsSync(join(dest, "vmlinuz"))) {
    link(dest);
    say(`up to date: ${ARCH} ${readFileSync(join(dest, "release"), "utf8").trim()} (cache ${hash}); ${T.link} -> ~/.cache/paio/kernel/${hash}`);
    return;
  }
  const tree = join(CACHE, `build-${ARCH}-${hash}`);
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  say(`[1/5] unpacking ${TARBALL} (${sourceVersion()})`);
  run(["tar", "-xf", TARBALL, "-C", tree, "--strip-components=1"], tree, "unpacking the source");
  say(`[2/5] applying ${patchFiles().length} patches (${elapsed()})`);
  for (const p of patchFiles()) {
    run(["patch", "-p1", "--forward", "--batch", "-i", join(PATCHES, p)], tree, `applying ${p}`);
    say(`      ${p}`);
  }
  const fragments = fragmentFiles(ARCH);
  say(`[3/5] configuring for ${ARCH}: tinyconfig + ${fragments.map((f) => `kernel-patches/${f}`).join(" + ")} (${elapsed()})`);
  configure(tree);
  say(`      every option of ${fragments.join(" and ")} is in .config`);
  const targets = [T.image, ...T.dtbs];
  say(`[4/5] building ${targets.join(" ")} with -j${JOBS} (${elapsed()})`);
  const logLines: string[] = [];
  const proc = Bun.spawn([...KMAKE, `-j${JOBS}`, ...targets], { cwd: tree, stdout: "pipe", stderr: "pipe", env: MAKE_ENV });
  let objects = 0;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    let partial = "";
    for await (const chunk of stream) {
      const parts = (partial + dec.decode(chunk)).split("\n");
      partial = parts.pop()!;
      for (const l of parts) {
        logLines.push(l);
        if (/^\s+CC\s/.test(l) && ++objects % 100 === 0) say(`      ${objects} files compiled (${elapsed()})`);
      }
    }
  };
  await Promise.all([pump(proc.stdout), pump(proc.stderr)]);
  const exit = await proc.exited;
  writeFileSync(join(tree, "build.log"), logLines.join("\n"));
  if (exit !== 0) fail(`the kernel build failed; the last lines:\n${logLines.slice(-30).join("\n")}`);
  // "Without new warnings": nothing may warn in the files the patches touch.
  const touched = patchFiles().flatMap((p) => [...readFileSync(join(PATCHES, p), "utf8").matchAll(/^\+\+\+ b\/(\S+)/gm)].map((m) => m[1]!));
  const warnings = logLines.filter((l) => /warning:/.test(l) && touched.some((f) => l.includes(f.replace(/\.h$/, ""))));
  if (warnings.length) fail(`the patched files build with warnings:\n${warnings.join("\n")}`);
  say(`      ${objects} files compiled; no warnings in ${[...new Set(touched)].join(", ")}`);
  say(`[5/5] caching (${elapsed()})`);
  const stage = `${dest}.tmp`;
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  copyFileSync(join(tree, T.imagePath), join(stage, "vmlinuz"));
  copyFileSync(join(tree, ".config"), join(stage, "config"));
  if (T.dtbs.length) mkdirSync(join(stage, "dtbs"));
  for (const d of T.dtbs) copyFileSync(join(tree, "arch/arm64/boot/dts", d), join(stage, "dtbs", basename(d)));
  writeFileSync(join(stage, "release"), run([...KMAKE, "-s", "kernelrelease"], tree, "make kernelrelease").trim() + "\n");
  copyFileSync(join(tree, "build.log"), join(stage, "build.log"));
  renameSync(stage, dest);
  // The build tree is kept only for the newest hash of each architecture (for quick looks); older ones go.
  for (const d of readdirSync(CACHE)) if (d.startsWith(`build-${ARCH}-`) && d !== `build-${ARCH}-${hash}`) rmSync(join(CACHE, d), { recursive: true, force: true });
  link(dest);
  say(`built ${ARCH} ${readFileSync(join(dest, "release"), "utf8").trim()} in ${elapsed()}; cached as ~/.cache/paio/kernel/${hash}`);
}

/** tinyconfig, the fragments merged in order, olddefconfig; then every option must have landed. */
export function configure(tree: string): void {
  run([...KMAKE, "tinyconfig"], tree, "make tinyconfig");
  const paths = fragmentFiles(ARCH).map((f) => join(PATCHES, f));
  run(["scripts/kconfig/merge_config.sh", "-m", ".config", ...paths], tree, "merging the fragments");
  run([...KMAKE, "olddefconfig"], tree, "make olddefconfig");
  const final = readFileSync(join(tree, ".config"), "utf8");
  const missing = fragmentFiles(ARCH).flatMap((f) => checkFragment(parseFragment(readFileSync(join(PATCHES, f), "utf8")), final).map((m) => `${f}: ${m}`));
  if (missing.length) fail(`options that did not land in the final .config (a dependency is missing):\n  ${missing.join("\n  ")}`);
}

if (import.meta.main) await main();

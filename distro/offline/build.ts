#!/usr/bin/env bun
// `make buildroot [ARCH=arm64 [PAIO_BOARD=virt|rpi4]]`: builds one of
// distro/'s defconfigs (boards.ts) with the Buildroot tree at BUILDROOT_DIR,
// offline, from Debian's packages:
//
//   1. toolchain  Debian's gcc 12 and glibc 2.36 (.deb files, unpacked and
//                 relocated into one directory), used as an external
//                 toolchain: the native compiler for x86_64, the
//                 aarch64-linux-gnu cross compiler and the *-arm64-cross C
//                 library for arm64
//   2. sources    Debian's source packages for every package Buildroot would
//                 download, unpacked and given to Buildroot as
//                 <PKG>_OVERRIDE_SRCDIR (the newest version whose files the
//                 archive really has); the kernel is Debian's linux-source;
//                 prebuilt firmware (the Pi's) from Debian's binary package;
//                 the app's files (for arm64, npm's arm64 Bun is fetched)
//   3. configure  the committed defconfig with the offline settings on top
//   4. build      `make` inside a network namespace with no network at all
//   5. outputs    out/buildroot/ (x86_64) or out/buildroot/<board>/: the disk
//                 image, a manifest of the root file system, and its
//                 differences from the assembler's manifest
//
// Steps 1-2 are cached in ~/.cache/paio/buildroot (a toolchain keyed by the
// versions of its Debian packages, each source tree fetched once);
// Buildroot's own output directory (one per board) lives there too, so a
// second run rebuilds only what changed.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, cpSync, chmodSync, lstatSync, readlinkSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { privateAptOptions, systemSources } from "../../image/apt.ts";
import { aptList, archiveCandidates, chooseSource, compareVersions, describeChoice, dscTarball, fileVersion, releaseCodename, sourceCandidates } from "./apt.ts";
import { mergeDefconfig, pickBoard, TOOLCHAINS, toolchainSettings, type Arch, type Board } from "./boards.ts";
import { compareManifests, rootManifest } from "./manifest.ts";
import { BR_BINARY_DEBS, BR_SOURCES, OFFLINE_MAKE_VARS, overrideFile, SOURCE_FIXUPS } from "./sources.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const DISTRO = join(REPO, "distro");
const CACHE = join(process.env.PAIO_CACHE ?? join(homedir(), ".cache", "paio"), "buildroot");
const LINUX_TARBALL = process.env.PAIO_LINUX_SOURCE ?? "/usr/src/linux-source-6.1.tar.xz";
const JOBS = process.env.PAIO_BUILDROOT_JOBS ?? "2";
const SUPPORTED = /^2025\.02(\.\d+)?$/;
const t0 = performance.now();

/** Bumped when prepareToolchain() lays a directory out differently. */
const TOOLCHAIN_LAYOUT = 2;

/** Host programs Buildroot itself needs (it checks for them before building). */
const HOST_PACKAGES = ["genimage", "dosfstools", "mtools", "build-essential", "rsync", "bc", "cpio", "unzip", "file", "wget", "perl", "fakeroot", "dpkg-dev", "util-linux", "bison", "flex"];

/** make's own variables from a calling make (`make buildroot ARCH=arm64` puts ARCH=arm64 in MAKEFLAGS) must not reach Buildroot's make. */
const MAKE_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "ARCH", "BOARD", "CROSS_COMPILE"].includes(k))) as Record<string, string>;

function say(line: string): void {
  console.log(`buildroot ${line}`);
}
function fail(msg: string): never {
  console.error(`buildroot: error: ${msg}`);
  process.exit(1);
}
function elapsed(): string {
  return `${((performance.now() - t0) / 1000).toFixed(0)} s`;
}

function attempt(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): { ok: boolean; output: string } {
  const r = Bun.spawnSync(cmd, { cwd: opts.cwd, env: { ...MAKE_ENV, ...opts.env }, stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, output: r.stdout.toString() + r.stderr.toString() };
}

function run(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): string {
  const r = Bun.spawnSync(cmd, { cwd: opts.cwd, env: { ...MAKE_ENV, ...opts.env }, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) fail(`${cmd.join(" ")} failed (exit ${r.exitCode}):\n${(r.stdout.toString() + r.stderr.toString()).trim().split("\n").slice(-20).join("\n")}`);
  return r.stdout.toString();
}

function buildrootDir(): { dir: string; version: string } {
  const dir = process.env.BUILDROOT_DIR;
  if (!dir) fail("BUILDROOT_DIR is not set: point it at a Buildroot 2025.02.x tree (a release tarball or a checkout of the 2025.02.x branch)");
  const mk = join(dir, "Makefile");
  if (!existsSync(mk)) fail(`BUILDROOT_DIR=${dir} has no Makefile; is it a Buildroot tree?`);
  const version = /^export BR2_VERSION := (\S+)$/m.exec(readFileSync(mk, "utf8"))?.[1];
  if (!version) fail(`BUILDROOT_DIR=${dir}: no BR2_VERSION in its Makefile; is it a Buildroot tree?`);
  if (!SUPPORTED.test(version)) fail(`BUILDROOT_DIR=${dir} is Buildroot ${version}; PAIO's tree is made for 2025.02.x (the LTS)`);
  return { dir, version };
}

function installHostPackages(arch: Arch): void {
  const wanted = [...HOST_PACKAGES, ...TOOLCHAINS[arch].hostPackages];
  const missing = wanted.filter((p) => Bun.spawnSync(["dpkg-query", "-W", "-f=${Status}", p], { stdout: "pipe", stderr: "pipe" }).stdout.toString() !== "install ok installed");
  if (missing.length === 0) return;
  say(`      installing host packages: ${missing.join(" ")}`);
  run(["apt-get", "install", "-y", "--no-install-recommends", ...missing], { env: { DEBIAN_FRONTEND: "noninteractive" } });
}

/**
 * apt with a private state directory and entries of its own (deb-src for the
 * machine's Debian archive, deb lines for extra components such as
 * non-free-firmware), so that source packages can be fetched without
 * touching the system's apt sources.
 */
export function aptOptions(binaryComponents: string[]): string[] {
  const codename = releaseCodename(existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : "") ?? "bookworm";
  // The deb822 files (Debian 12's debian.sources) and the one-line
  // /etc/apt/sources.list alike.
  const list = aptList(systemSources(), codename, binaryComponents);
  if (!list.trim()) fail(`the apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/) name no ${codename} suite: the offline build fetches Debian ${codename}'s source packages`);
  return privateAptOptions(join(CACHE, "apt"), list).options;
}

let aptUpdated = false;
/** `apt-get update` of the private lists, once per run. */
export function aptUpdate(apt: string[]): void {
  if (aptUpdated) return;
  run(["apt-get", ...apt, "update", "-q"]);
  aptUpdated = true;
}

/** The installed version of a Debian package, or else the version apt would download. */
function packageVersion(pkg: string): string {
  const r = Bun.spawnSync(["dpkg-query", "-W", "-f=${Status} ${Version}", pkg], { stdout: "pipe", stderr: "pipe" });
  const m = /^install ok installed (\S+)$/.exec(r.stdout.toString());
  if (r.exitCode === 0 && m) return m[1]!;
  return /^\s*Candidate:\s*(\S+)/m.exec(Bun.spawnSync(["apt-cache", "policy", pkg], { stdout: "pipe", stderr: "pipe" }).stdout.toString())?.[1] ?? "";
}

/** The newest .deb of `pkg` in `dir` (apt-get download names them pkg_version_arch.deb, ':' written %3a). */
function newestDeb(dir: string, pkg: string): string | undefined {
  const debs = readdirSync(dir)
    .map((f) => ({ f, m: /^([^_]+)_([^_]+)_[^_]+\.deb$/.exec(f) }))
    .filter((d) => d.m?.[1] === pkg)
    .map((d) => ({ f: d.f, v: decodeURIComponent(d.m![2]!) }));
  return debs.sort((a, b) => compareVersions(a.v, b.v)).pop()?.f;
}

/** x86_64: Debian's native compiler, its programs under the names Buildroot asks for; binutils are the host's. */
function layoutNative(tmp: string): void {
  const bin = join(tmp, "usr/bin");
  for (const tool of ["gcc", "g++", "cpp", "gcc-ar", "gcc-nm", "gcc-ranlib"]) {
    rmSync(join(bin, `x86_64-linux-gnu-${tool}`), { force: true });
    symlinkSync(`x86_64-linux-gnu-${tool}-12`, join(bin, `x86_64-linux-gnu-${tool}`));
  }
  for (const tool of ["as", "ld", "ld.bfd", "ar", "nm", "objcopy", "objdump", "ranlib", "readelf", "strip", "addr2line", "size", "strings", "c++filt", "elfedit", "gprof"]) {
    const host = `/usr/bin/x86_64-linux-gnu-${tool}`;
    if (existsSync(host) && !existsSync(join(bin, `x86_64-linux-gnu-${tool}`))) symlinkSync(host, join(bin, `x86_64-linux-gnu-${tool}`));
  }
  // Buildroot copies every ld*.so.* it finds: this directory would match.
  rmSync(join(tmp, "etc/ld.so.conf.d"), { recursive: true, force: true });
}

/**
 * arm64: Debian's cross compiler was configured with --with-sysroot=/ and
 * looks for its C library in usr/aarch64-linux-gnu/{lib,include} next to
 * itself. Here the C library (and the arm64 runtime libraries) move into
 * sysroot/usr, the layout Buildroot copies into its staging directory
 * (sysroot/lib -> usr/lib); only the C++ headers stay where g++ looks for
 * them. Nothing is left in the compiler's own library directory that a link
 * against Buildroot's staging directory could pick up instead of staging's
 * (glibc's libc.so names /usr/lib/libc.so.6, which the linker finds under
 * whichever sysroot is given). gcc, g++ and cpp are wrappers that pass
 * --sysroot=<dest>/sysroot, so nothing is ever taken from the build
 * machine's root; Buildroot's own wrapper passes its staging directory after
 * it, which wins. binutils are the host's binutils-aarch64-linux-gnu.
 */
function layoutCross(tmp: string, dest: string, prefix: string): void {
  const tooldir = join(tmp, "usr", prefix);
  const sysroot = join(tmp, "sysroot");
  mkdirSync(join(sysroot, "usr"), { recursive: true });
  renameSync(join(tooldir, "lib"), join(sysroot, "usr/lib"));
  renameSync(join(tooldir, "include"), join(sysroot, "usr/include"));
  mkdirSync(join(tooldir, "include"));
  renameSync(join(sysroot, "usr/include/c++"), join(tooldir, "include/c++"));
  symlinkSync("usr/lib", join(sysroot, "lib"));
  const lib = join(sysroot, "usr/lib");
  for (const f of readdirSync(lib).filter((f) => f.endsWith(".so"))) {
    const p = join(lib, f);
    if (lstatSync(p).isSymbolicLink() || statSync(p).size > 4096) continue;
    const text = readFileSync(p, "utf8");
    if (text.includes("GNU ld script")) writeFileSync(p, text.replaceAll(`/usr/${prefix}/lib/`, "/usr/lib/"));
  }
  // gcc's directory links its runtime libraries (libstdc++.so, libgomp.so,
  // ...) to ../../../../<prefix>/lib/: now in the sysroot.
  const gccLib = join(tmp, "usr/lib/gcc-cross", prefix);
  for (const version of readdirSync(gccLib)) {
    for (const f of readdirSync(join(gccLib, version))) {
      const p = join(gccLib, version, f);
      if (!lstatSync(p).isSymbolicLink()) continue;
      const target = readlinkSync(p);
      const moved = target.replace(new RegExp(`^(\\.\\./){4}${prefix}/lib/`), "../../../../../sysroot/usr/lib/");
      if (moved !== target) {
        rmSync(p);
        symlinkSync(moved, p);
      }
    }
  }
  const bin = join(tmp, "usr/bin");
  for (const tool of ["gcc", "g++", "cpp"]) {
    const w = join(bin, `${prefix}-${tool}`);
    rmSync(w, { force: true });
    writeFileSync(w, `#!/bin/sh\n# PAIO's offline toolchain: Debian's ${prefix}-${tool}-12, always with a sysroot (its own unless one is given).\nexec "${dest}/usr/bin/${prefix}-${tool}-12" --sysroot="${dest}/sysroot" "$@"\n`);
    chmodSync(w, 0o755);
  }
  for (const tool of ["gcc-ar", "gcc-nm", "gcc-ranlib"]) symlinkSync(`${prefix}-${tool}-12`, join(bin, `${prefix}-${tool}`));
  mkdirSync(join(tooldir, "bin"), { recursive: true });
  for (const tool of ["as", "ld", "ld.bfd", "ar", "nm", "objcopy", "objdump", "ranlib", "readelf", "strip", "addr2line", "size", "strings", "c++filt", "elfedit", "gprof"]) {
    const host = `/usr/bin/${prefix}-${tool}`;
    if (!existsSync(host)) continue;
    if (!existsSync(join(bin, `${prefix}-${tool}`))) symlinkSync(host, join(bin, `${prefix}-${tool}`));
    // gcc runs the assembler and the linker from its tool directory.
    if (["as", "ld", "ld.bfd", "ar", "nm", "objcopy", "objdump", "ranlib", "readelf", "strip"].includes(tool)) symlinkSync(host, join(tooldir, "bin", tool));
  }
}

/**
 * What Buildroot's check for distribution toolchains stands for, checked on
 * the result: the C library is found inside the toolchain's sysroot, with its
 * headers; a C and a C++ program link for the target; and they link the same
 * against a copy of the sysroot given with --sysroot, as Buildroot's staging
 * directory is, without a file of the toolchain's own sysroot in the way.
 */
function checkCrossToolchain(dest: string, prefix: string): void {
  const cc = join(dest, "usr/bin", `${prefix}-gcc`);
  const cxx = join(dest, "usr/bin", `${prefix}-g++`);
  const libc = run(["sh", "-c", `readlink -f "$(${cc} -print-file-name=libc.a)"`]).trim();
  if (libc !== join(dest, "sysroot/usr/lib/libc.a")) fail(`the arm64 toolchain finds its C library at ${libc}, not in ${dest}/sysroot`);
  if (!existsSync(join(dest, "sysroot/usr/include/stdio.h"))) fail(`the arm64 toolchain's sysroot has no usr/include/stdio.h`);
  const dir = join(dest, ".check");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const staging = join(dir, "staging");
  cpSync(join(dest, "sysroot"), staging, { recursive: true, verbatimSymlinks: true });
  writeFileSync(join(dir, "t.c"), "#include <stdio.h>\n#include <omp.h>\nint main(void) { puts(\"paio\"); return omp_get_thread_num(); }\n");
  writeFileSync(join(dir, "t.cc"), "#include <string>\nint main() { return std::string(\"paio\").size() == 4 ? 0 : 1; }\n");
  const builds: [string, string[]][] = [
    ["t", [cc, "-fstack-protector-strong", "-fopenmp", "-o", join(dir, "t"), join(dir, "t.c")]],
    ["tpp", [cxx, "-o", join(dir, "tpp"), join(dir, "t.cc")]],
    ["ts", [cc, `--sysroot=${staging}`, "-mcpu=cortex-a72", "-fopenmp", "-o", join(dir, "ts"), join(dir, "t.c")]],
    ["tsp", [cxx, `--sysroot=${staging}`, "-o", join(dir, "tsp"), join(dir, "t.cc")]],
    ["tstatic", [cc, `--sysroot=${staging}`, "-static", "-o", join(dir, "tstatic"), join(dir, "t.c"), "-fopenmp"]],
  ];
  for (const [out, cmd] of builds) {
    run(cmd);
    const machine = readFileSync(join(dir, out)).readUInt16LE(18);
    if (machine !== 183) fail(`the arm64 toolchain made ${out} for ELF machine ${machine}, not aarch64 (183)`);
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Step 1: Debian's compiler and C library, relocated into one directory. */
export function prepareToolchain(arch: Arch): string {
  const spec = TOOLCHAINS[arch];
  // The path stays the same across versions (Buildroot's wrappers have it
  // built in); its .done file says which packages it holds.
  const dest = join(CACHE, spec.dir);
  const want = spec.debs.map((p) => `${p}=${packageVersion(p)}`).join("\n") + `\nlayout=${TOOLCHAIN_LAYOUT}\n`;
  if (existsSync(join(dest, ".done")) && readFileSync(join(dest, ".done"), "utf8") === want) {
    say(`[1/5] toolchain: ${arch} cached`);
    return dest;
  }
  say(`[1/5] toolchain: fetching ${spec.debs.length} Debian packages (${arch}: gcc 12, glibc 2.36, Linux 6.1 headers)`);
  const debs = join(CACHE, "debs");
  mkdirSync(debs, { recursive: true });
  run(["apt-get", "download", ...spec.debs], { cwd: debs });
  const tmp = `${dest}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const pkg of spec.debs) {
    const file = newestDeb(debs, pkg);
    if (!file) fail(`apt-get download left no ${pkg}_*.deb in ${debs}`);
    run(["dpkg-deb", "-x", join(debs, file), tmp]);
  }
  if (arch === "x86_64") layoutNative(tmp);
  else layoutCross(tmp, dest, spec.prefix);
  rmSync(dest, { recursive: true, force: true });
  renameSync(tmp, dest);
  if (arch !== "x86_64") checkCrossToolchain(dest, spec.prefix);
  writeFileSync(join(dest, ".done"), want);
  say(`      toolchain ready (${elapsed()})`);
  return dest;
}

/**
 * Fetches source package `src` into `dl`: the newest version the archive
 * lists whose files can be fetched (a suite may list a version whose files
 * are gone), saying which one and why. Returns it and its tarball.
 */
export function fetchSource(apt: string[], src: string, dl: string): { version: string; tarball: string } {
  const candidates = sourceCandidates(run(["apt-cache", ...apt, "madison", src]), src);
  let choice;
  try {
    choice = chooseSource(src, candidates, (v) => attempt(["apt-get", ...apt, "source", "--download-only", "-q", `${src}=${v}`], { cwd: dl }));
  } catch (e) {
    fail((e as Error).message);
  }
  say(`      ${describeChoice(src, choice)}`);
  const dsc = join(dl, `${src}_${fileVersion(choice.version)}.dsc`);
  const tarball = existsSync(dsc) ? dscTarball(readFileSync(dsc, "utf8")) : undefined;
  if (!tarball || !existsSync(join(dl, tarball))) fail(`${src} ${choice.version}: no source tarball named by ${dsc}`);
  return { version: choice.version, tarball };
}

/** Step 2: Debian's source packages, unpacked, one directory per Buildroot package. */
export function prepareSources(apt: string[]): Map<string, string> {
  const srcRoot = join(CACHE, "src");
  mkdirSync(srcRoot, { recursive: true });
  const wanted = [...new Set(Object.values(BR_SOURCES).filter((s) => s !== null))] as string[];
  const missing = wanted.filter((s) => !existsSync(join(srcRoot, s, ".done")));
  if (missing.length) {
    say(`[2/5] sources: fetching ${missing.length} Debian source packages: ${missing.join(" ")}`);
    aptUpdate(apt);
    const dl = join(CACHE, "debian-src");
    mkdirSync(dl, { recursive: true });
    for (const src of missing) {
      const { version, tarball } = fetchSource(apt, src, dl);
      const dir = join(srcRoot, src);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      run(["tar", "-xf", join(dl, tarball), "-C", dir, "--strip-components=1"]);
      for (const fix of SOURCE_FIXUPS[src] ?? []) run(fix, { cwd: dir });
      writeFileSync(join(dir, ".done"), `${version}\n${tarball}\n`);
    }
  } else {
    say(`[2/5] sources: ${wanted.length} Debian source packages cached`);
  }
  const dirs = new Map<string, string>();
  for (const [pkg, src] of Object.entries(BR_SOURCES)) {
    const dir = src === null ? join(srcRoot, "empty") : join(srcRoot, src);
    mkdirSync(dir, { recursive: true });
    dirs.set(pkg, dir);
  }
  return dirs;
}

/** Prebuilt files from Debian binary packages (the Pi's firmware), laid out as the Buildroot package expects. */
export function prepareBinaryDebs(apt: string[], names: string[], dirs: Map<string, string>): void {
  for (const name of names) {
    const spec = BR_BINARY_DEBS[name]!;
    const dir = join(CACHE, "src", `deb-${spec.deb}`);
    if (!existsSync(join(dir, ".done"))) {
      aptUpdate(apt);
      const dl = join(CACHE, "debian-bin");
      mkdirSync(dl, { recursive: true });
      const candidates = archiveCandidates(run(["apt-cache", ...apt, "madison", spec.deb]), spec.deb, "Packages");
      let choice;
      try {
        choice = chooseSource(spec.deb, candidates, (v) => attempt(["apt-get", ...apt, "download", "-q", `${spec.deb}=${v}`], { cwd: dl }));
      } catch (e) {
        fail(`${(e as Error).message}\n(${spec.deb} is in Debian's ${spec.component} component)`);
      }
      say(`      ${name}: ${describeChoice(spec.deb, choice)}`);
      const deb = newestDeb(dl, spec.deb);
      if (!deb) fail(`apt-get download left no ${spec.deb}_*.deb in ${dl}`);
      const unpacked = `${dir}.deb`;
      rmSync(unpacked, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(unpacked, { recursive: true });
      run(["dpkg-deb", "-x", join(dl, deb), unpacked]);
      for (const { from, to } of spec.map) cpSync(join(unpacked, from), join(dir, to), { recursive: true });
      if (existsSync(join(unpacked, spec.license.from))) cpSync(join(unpacked, spec.license.from), join(dir, spec.license.to));
      rmSync(unpacked, { recursive: true, force: true });
      writeFileSync(join(dir, ".done"), `${choice.version}\n`);
    }
    dirs.set(name, dir);
  }
}

/**
 * The app's files for the architecture, listed the way the paio-app package
 * installs them (image/app.ts): this checks they are all there before the
 * long build and, for arm64, fetches npm's arm64 Bun (as package-lock.json
 * pins it) into ~/.cache/paio/npm while the network is still allowed.
 */
function prepareApp(arch: Arch): void {
  const rows = run([process.execPath, join(REPO, "image/app.ts"), "list", "--arch", arch, "--lib-dir", "usr/lib"], { cwd: REPO }).trim().split("\n");
  const bun = rows.map((r) => r.split("\t")).find((c) => c[0] === "usr/bin/bun");
  say(`      app: ${rows.length} files for ${arch}, Bun ${bun?.[2] ?? "?"}`);
}

/** Step 3: the committed defconfig with the offline settings replacing its toolchain and kernel source. */
export function offlineDefconfig(board: Board, toolchain: string): string {
  const settings: Record<string, string> = {
    ...toolchainSettings(board.arch, toolchain),
    BR2_LINUX_KERNEL_CUSTOM_VERSION: "n",
    BR2_LINUX_KERNEL_CUSTOM_TARBALL: "y",
    BR2_LINUX_KERNEL_CUSTOM_TARBALL_LOCATION: `"file://${LINUX_TARBALL}"`,
    // The disk image tools are the host's (Debian's genimage, dosfstools and
    // mtools, the ones the assembler uses): not every Debian mirror carries
    // their sources, and building them gains nothing on a Debian host.
    BR2_PACKAGE_HOST_GENIMAGE: "n",
    BR2_PACKAGE_HOST_DOSFSTOOLS: "n",
    BR2_PACKAGE_HOST_MTOOLS: "n",
    BR2_DL_DIR: `"${join(CACHE, "dl")}"`,
    BR2_PACKAGE_OVERRIDE_FILE: `"${join(CACHE, `override-${board.name}.mk`)}"`,
    BR2_PRIMARY_SITE: `""`,
    BR2_BACKUP_SITE: `""`,
    BR2_JLEVEL: JOBS,
  };
  const file = join(CACHE, board.defconfig.replace("_defconfig", "_offline_defconfig"));
  writeFileSync(file, mergeDefconfig(readFileSync(join(DISTRO, "configs", board.defconfig), "utf8"), settings));
  return file;
}

/** Step 4: make, with no network, printing Buildroot's step lines with the time. */
async function buildrootMake(br: string, output: string, makeVars: string[], args: string[]): Promise<void> {
  const netns = Bun.spawnSync(["unshare", "--net", "true"], { stdout: "pipe", stderr: "pipe" }).exitCode === 0;
  if (!netns) say("      (no network namespace available: building without the no-network guarantee)");
  const cmd = [...(netns ? ["unshare", "--net"] : []), "make", "-C", br, `O=${output}`, `BR2_EXTERNAL=${DISTRO}`, ...makeVars, ...args];
  const log: string[] = [];
  const proc = Bun.spawn(cmd, { env: { ...MAKE_ENV, FORCE_UNSAFE_CONFIGURE: "1", BR2_DL_DIR: join(CACHE, "dl") }, stdout: "pipe", stderr: "pipe" });
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    let partial = "";
    for await (const chunk of stream) {
      const parts = (partial + dec.decode(chunk)).split("\n");
      partial = parts.pop()!;
      for (const l of parts) {
        log.push(l);
        // Buildroot's step lines: ">>> busybox 1.35.0 Building" (with terminal colours).
        const clean = l.replace(/\x1b\[[0-9;]*m/g, "");
        if (clean.startsWith(">>> ")) say(`      ${clean.slice(4)} (${elapsed()})`);
      }
    }
  };
  await Promise.all([pump(proc.stdout), pump(proc.stderr)]);
  const exit = await proc.exited;
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, "build.log"), log.join("\n") + "\n");
  if (exit !== 0) fail(`make ${args.join(" ")} failed (exit ${exit}); the last lines (all of them: ${join("out/buildroot", BOARD.outDir, "build.log")}):\n${log.slice(-40).join("\n")}`);
}

let BOARD: Board;
let OUT: string;

async function main(): Promise<void> {
  try {
    BOARD = pickBoard(process.env);
  } catch (e) {
    fail((e as Error).message);
  }
  OUT = join(REPO, "out", "buildroot", BOARD.outDir);
  const { dir: br, version } = buildrootDir();
  if (!existsSync(LINUX_TARBALL)) fail(`${LINUX_TARBALL} is missing: run 'make deps' (it installs Debian's linux-source-6.1), or set PAIO_LINUX_SOURCE`);
  for (const f of ["out/build/agent.js", "out/models/manifest.json"]) {
    if (!existsSync(join(REPO, f))) fail(`${f} is missing: 'make buildroot' builds it first; run 'make build models'`);
  }
  say(`Buildroot ${version}, ${BOARD.defconfig} (BOARD=${BOARD.name}), cache ~/.cache/paio/buildroot`);
  mkdirSync(CACHE, { recursive: true });
  installHostPackages(BOARD.arch);
  const toolchain = prepareToolchain(BOARD.arch);
  const apt = aptOptions([...new Set(BOARD.binaryDebs.map((n) => BR_BINARY_DEBS[n]!.component))]);
  const sources = prepareSources(apt);
  prepareBinaryDebs(apt, BOARD.binaryDebs, sources);
  prepareApp(BOARD.arch);
  writeFileSync(join(CACHE, `override-${BOARD.name}.mk`), overrideFile(sources));
  mkdirSync(join(CACHE, "dl"), { recursive: true });

  const defconfig = offlineDefconfig(BOARD, toolchain);
  // One output directory per board (x86_64 keeps the name it always had).
  const output = join(CACHE, BOARD.name === "pc" ? "output" : `output-${BOARD.name}`);
  const makeVars = [...OFFLINE_MAKE_VARS, ...TOOLCHAINS[BOARD.arch].makeVars];
  say(`[3/5] configure (${elapsed()})`);
  await buildrootMake(br, output, makeVars, [`BR2_DEFCONFIG=${defconfig}`, "defconfig"]);
  say(`[4/5] build, no network (${elapsed()})`);
  // PAIO's own packages come from this tree, which Buildroot does not watch:
  // they are redone on every run (seconds), everything else only when needed.
  await buildrootMake(br, output, makeVars, ["paio-pid1-dirclean", "paio-app-dirclean"]);
  await buildrootMake(br, output, makeVars, []);

  say(`[5/5] outputs (${elapsed()})`);
  mkdirSync(OUT, { recursive: true });
  const rel = join("out/buildroot", BOARD.outDir, BOARD.image);
  const img = join(output, "images", BOARD.image);
  if (!existsSync(img)) fail(`the build finished without ${img}; see ${join("out/buildroot", BOARD.outDir, "build.log")}`);
  // Sparse: the blank data partition takes no room.
  run(["cp", "--sparse=always", img, join(OUT, BOARD.image)]);
  // The manifest of what the image really holds: the squashfs, unpacked.
  const unpacked = join(OUT, ".rootfs");
  rmSync(unpacked, { recursive: true, force: true });
  run(["unsquashfs", "-q", "-n", "-d", unpacked, join(output, "images", "rootfs.squashfs")]);
  const manifest = rootManifest(unpacked);
  rmSync(unpacked, { recursive: true, force: true });
  writeFileSync(join(OUT, "manifest.tsv"), manifest);
  // The assembler's manifest of the same architecture, when it was built.
  const assembler = join(REPO, "out", BOARD.arch === "x86_64" ? "" : BOARD.arch, "manifest.tsv");
  if (existsSync(assembler)) {
    const diff = compareManifests(readFileSync(assembler, "utf8"), manifest);
    writeFileSync(join(OUT, "manifest-diff.txt"), diff.report);
    say(`      PAIO's parts: ${diff.paioSame} same, ${diff.paioDiffer.length} differ; differences: ${join("out/buildroot", BOARD.outDir, "manifest-diff.txt")}`);
  }
  const size = (p: string) => `${(statSync(p).size / 1048576).toFixed(1)} MiB`;
  say(`built ${rel} in ${elapsed()} (rootfs.squashfs ${size(join(output, "images", "rootfs.squashfs"))})`);
  if (BOARD.name === "pc") say(`boot it: bin/paio qemu exec --image ${rel} SCRIPT`);
  else if (BOARD.name === "virt") say(`boot it: bin/paio qemu exec --arch arm64 --board virt --image ${rel} SCRIPT`);
  else say(`write it to an SD card: dd if=${rel} of=/dev/sdX bs=4M conv=fsync (docs/buildroot.md)`);
}

if (import.meta.main) await main();

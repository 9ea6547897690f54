#!/usr/bin/env bun
// `make buildroot`: builds distro/'s paio_qemu_x86_64_defconfig with the
// Buildroot tree at BUILDROOT_DIR, offline, from Debian's packages:
//
//   1. toolchain  Debian's gcc-12 and glibc 2.36 (.deb files, unpacked and
//                 relocated into one directory), used as an external toolchain
//   2. sources    Debian's source packages for every package Buildroot would
//                 download, unpacked and given to Buildroot as
//                 <PKG>_OVERRIDE_SRCDIR; the kernel is Debian's linux-source
//   3. configure  the committed defconfig with the offline settings on top
//   4. build      `make` inside a network namespace with no network at all
//   5. outputs    out/buildroot/: the disk image, a manifest of the root file
//                 system, and its differences from the assembler's manifest
//
// Steps 1-2 are cached in ~/.cache/paio/buildroot (the toolchain keyed by
// the versions of its Debian packages, each source tree fetched once);
// Buildroot's own output directory lives there too, so a second run rebuilds
// only what changed.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { compareManifests, rootManifest } from "./manifest.ts";
import { BR_SOURCES, OFFLINE_MAKE_VARS, overrideFile, SOURCE_FIXUPS } from "./sources.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const DISTRO = join(REPO, "distro");
const DEFCONFIG = "paio_qemu_x86_64_defconfig";
const CACHE = join(process.env.PAIO_CACHE ?? join(homedir(), ".cache", "paio"), "buildroot");
const OUT = join(REPO, "out", "buildroot");
const LINUX_TARBALL = process.env.PAIO_LINUX_SOURCE ?? "/usr/src/linux-source-6.1.tar.xz";
const JOBS = process.env.PAIO_BUILDROOT_JOBS ?? "2";
const SUPPORTED = /^2025\.02(\.\d+)?$/;
const t0 = performance.now();

/** Debian packages that make up the external toolchain (gcc 12, glibc 2.36, Linux 6.1 headers). */
export const TOOLCHAIN_DEBS = [
  "gcc-12", "cpp-12", "g++-12", "gcc-12-base", "libgcc-12-dev", "libstdc++-12-dev", "libc6", "libc6-dev", "linux-libc-dev",
  "libgcc-s1", "libstdc++6", "libcrypt1", "libcrypt-dev", "libgomp1", "libatomic1", "libitm1", "libquadmath0",
  "libasan8", "liblsan0", "libtsan2", "libubsan1", "libcc1-0",
];

/** Bumped when prepareToolchain() lays the directory out differently. */
const TOOLCHAIN_LAYOUT = 2;

/** Host programs Buildroot itself needs (it checks for them before building). */
const HOST_PACKAGES = ["genimage", "dosfstools", "mtools", "build-essential", "rsync", "bc", "cpio", "unzip", "file", "wget", "perl", "fakeroot", "dpkg-dev", "util-linux"];

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

function run(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): string {
  const r = Bun.spawnSync(cmd, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdout: "pipe", stderr: "pipe" });
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

function installHostPackages(): void {
  const missing = HOST_PACKAGES.filter((p) => Bun.spawnSync(["dpkg-query", "-W", "-f=${Status}", p], { stdout: "pipe", stderr: "pipe" }).stdout.toString() !== "install ok installed");
  if (missing.length === 0) return;
  say(`      installing host packages: ${missing.join(" ")}`);
  run(["apt-get", "install", "-y", "--no-install-recommends", ...missing], { env: { DEBIAN_FRONTEND: "noninteractive" } });
}

/**
 * apt with a private state directory and deb-src entries of its own, so that
 * source packages can be fetched without touching the system's apt sources.
 */
function aptOptions(): string[] {
  const dir = join(CACHE, "apt");
  const lists = join(dir, "lists");
  mkdirSync(join(lists, "partial"), { recursive: true });
  mkdirSync(join(dir, "archives", "partial"), { recursive: true });
  const sources = join(dir, "sources.list");
  const system = readFileSync("/etc/apt/sources.list.d/debian.sources", "utf8");
  const entries: string[] = [];
  for (const block of system.split(/\n\s*\n/)) {
    const uris = /^URIs:\s*(.+)$/m.exec(block)?.[1]?.trim();
    const suites = /^Suites:\s*(.+)$/m.exec(block)?.[1]?.trim().split(/\s+/) ?? [];
    const comps = /^Components:\s*(.+)$/m.exec(block)?.[1]?.trim() ?? "main";
    if (!uris) continue;
    for (const suite of suites) entries.push(`deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${uris} ${suite} ${comps}`);
  }
  writeFileSync(sources, entries.join("\n") + "\n");
  return [
    "-o", `Dir::Etc::SourceList=${sources}`, "-o", "Dir::Etc::SourceParts=/nonexistent",
    "-o", `Dir::State::Lists=${lists}`, "-o", `Dir::Cache::Archives=${join(dir, "archives")}`,
    "-o", "Debug::NoLocking=1",
  ];
}

function installedVersion(pkg: string): string {
  const r = Bun.spawnSync(["dpkg-query", "-W", "-f=${Version}", pkg], { stdout: "pipe", stderr: "pipe" });
  return r.exitCode === 0 ? r.stdout.toString() : "";
}

/** Step 1: Debian's compiler and C library, relocated into one directory. */
function prepareToolchain(): string {
  // The path stays the same across versions (Buildroot's wrappers have it
  // built in); its .done file says which packages it holds.
  const dest = join(CACHE, "toolchain");
  const want = TOOLCHAIN_DEBS.map((p) => `${p}=${installedVersion(p)}`).join("\n") + `\nlayout=${TOOLCHAIN_LAYOUT}\n`;
  if (existsSync(join(dest, ".done")) && readFileSync(join(dest, ".done"), "utf8") === want) {
    say("[1/5] toolchain: cached");
    return dest;
  }
  say(`[1/5] toolchain: fetching ${TOOLCHAIN_DEBS.length} Debian packages (gcc 12, glibc 2.36)`);
  const debs = join(CACHE, "debs");
  mkdirSync(debs, { recursive: true });
  run(["apt-get", "download", ...TOOLCHAIN_DEBS], { cwd: debs });
  const tmp = `${dest}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const pkg of TOOLCHAIN_DEBS) {
    const file = readdirSync(debs).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb")).sort().pop();
    if (!file) fail(`apt-get download left no ${pkg}_*.deb in ${debs}`);
    run(["dpkg-deb", "-x", join(debs, file), tmp]);
  }
  const bin = join(tmp, "usr/bin");
  // The names Buildroot asks for, pointing at the versioned programs.
  for (const tool of ["gcc", "g++", "cpp", "gcc-ar", "gcc-nm", "gcc-ranlib"]) {
    rmSync(join(bin, `x86_64-linux-gnu-${tool}`), { force: true });
    symlinkSync(`x86_64-linux-gnu-${tool}-12`, join(bin, `x86_64-linux-gnu-${tool}`));
  }
  // Binutils are the host's (same Debian release).
  for (const tool of ["as", "ld", "ld.bfd", "ar", "nm", "objcopy", "objdump", "ranlib", "readelf", "strip", "addr2line", "size", "strings", "c++filt", "elfedit", "gprof"]) {
    const host = `/usr/bin/x86_64-linux-gnu-${tool}`;
    if (existsSync(host) && !existsSync(join(bin, `x86_64-linux-gnu-${tool}`))) symlinkSync(host, join(bin, `x86_64-linux-gnu-${tool}`));
  }
  // Buildroot copies every ld*.so.* it finds: this directory would match.
  rmSync(join(tmp, "etc/ld.so.conf.d"), { recursive: true, force: true });
  writeFileSync(join(tmp, ".done"), want);
  rmSync(dest, { recursive: true, force: true });
  renameSync(tmp, dest);
  say(`      toolchain ready (${elapsed()})`);
  return dest;
}

/** Step 2: Debian's source packages, unpacked, one directory per Buildroot package. */
function prepareSources(apt: string[]): Map<string, string> {
  const srcRoot = join(CACHE, "src");
  mkdirSync(srcRoot, { recursive: true });
  const wanted = [...new Set(Object.values(BR_SOURCES).filter((s) => s !== null))] as string[];
  const missing = wanted.filter((s) => !existsSync(join(srcRoot, s, ".done")));
  if (missing.length) {
    say(`[2/5] sources: fetching ${missing.length} Debian source packages: ${missing.join(" ")}`);
    run(["apt-get", ...apt, "update", "-q"]);
    const dl = join(CACHE, "debian-src");
    mkdirSync(dl, { recursive: true });
    for (const src of missing) {
      run(["apt-get", ...apt, "source", "--download-only", "-q", src], { cwd: dl });
      const orig = readdirSync(dl).filter((f) => f.startsWith(`${src}_`) && /\.orig\.tar\.|\.tar\.(gz|xz|bz2)$/.test(f) && !/\.debian\.tar|\.asc$/.test(f)).sort();
      const tarball = orig.find((f) => f.includes(".orig.tar.")) ?? orig[0];
      if (!tarball) fail(`no source tarball for ${src} in ${dl}`);
      const dir = join(srcRoot, src);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      run(["tar", "-xf", join(dl, tarball), "-C", dir, "--strip-components=1"]);
      for (const fix of SOURCE_FIXUPS[src] ?? []) run(fix, { cwd: dir });
      writeFileSync(join(dir, ".done"), tarball + "\n");
      say(`      ${src}: ${tarball}`);
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

/** Step 3: the committed defconfig with the offline settings replacing its toolchain and kernel source. */
function offlineDefconfig(toolchain: string): string {
  const settings: Record<string, string> = {
    BR2_TOOLCHAIN_EXTERNAL_BOOTLIN: "n",
    BR2_TOOLCHAIN_EXTERNAL_BOOTLIN_X86_64_GLIBC_STABLE: "n",
    BR2_TOOLCHAIN_EXTERNAL_CUSTOM: "y",
    BR2_TOOLCHAIN_EXTERNAL_PREINSTALLED: "y",
    BR2_TOOLCHAIN_EXTERNAL_PATH: `"${toolchain}/usr"`,
    BR2_TOOLCHAIN_EXTERNAL_CUSTOM_PREFIX: `"x86_64-linux-gnu"`,
    BR2_TOOLCHAIN_EXTERNAL_GCC_12: "y",
    BR2_TOOLCHAIN_EXTERNAL_HEADERS_6_1: "y",
    BR2_TOOLCHAIN_EXTERNAL_CUSTOM_GLIBC: "y",
    BR2_TOOLCHAIN_EXTERNAL_CXX: "y",
    BR2_TOOLCHAIN_EXTERNAL_OPENMP: "y",
    BR2_TOOLCHAIN_EXTERNAL_INET_RPC: "n",
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
    BR2_PACKAGE_OVERRIDE_FILE: `"${join(CACHE, "override.mk")}"`,
    BR2_PRIMARY_SITE: `""`,
    BR2_BACKUP_SITE: `""`,
    BR2_JLEVEL: JOBS,
  };
  const base = readFileSync(join(DISTRO, "configs", DEFCONFIG), "utf8").split("\n");
  const kept = base.filter((l) => {
    const name = /^(BR2_\w+)=/.exec(l)?.[1] ?? /^# (BR2_\w+) is not set$/.exec(l)?.[1];
    return !(name && name in settings);
  });
  const extra = Object.entries(settings).map(([k, v]) => (v === "n" ? `# ${k} is not set` : `${k}=${v}`));
  const file = join(CACHE, `${DEFCONFIG.replace("_defconfig", "_offline_defconfig")}`);
  writeFileSync(file, [...kept.filter((l) => l.trim()), "# offline: Debian's toolchain, sources and kernel (distro/offline/build.ts)", ...extra].join("\n") + "\n");
  return file;
}

/** Step 4: make, with no network, printing Buildroot's step lines with the time. */
async function buildrootMake(br: string, output: string, args: string[]): Promise<void> {
  const netns = Bun.spawnSync(["unshare", "--net", "true"], { stdout: "pipe", stderr: "pipe" }).exitCode === 0;
  if (!netns) say("      (no network namespace available: building without the no-network guarantee)");
  const cmd = [...(netns ? ["unshare", "--net"] : []), "make", "-C", br, `O=${output}`, `BR2_EXTERNAL=${DISTRO}`, ...OFFLINE_MAKE_VARS, ...args];
  const log: string[] = [];
  const proc = Bun.spawn(cmd, { env: { ...process.env, FORCE_UNSAFE_CONFIGURE: "1", BR2_DL_DIR: join(CACHE, "dl") }, stdout: "pipe", stderr: "pipe" });
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
  if (exit !== 0) fail(`make ${args.join(" ")} failed (exit ${exit}); the last lines (all of them: out/buildroot/build.log):\n${log.slice(-40).join("\n")}`);
}

async function main(): Promise<void> {
  const { dir: br, version } = buildrootDir();
  if (!existsSync(LINUX_TARBALL)) fail(`${LINUX_TARBALL} is missing: run 'make deps' (it installs Debian's linux-source-6.1), or set PAIO_LINUX_SOURCE`);
  for (const f of ["out/build/agent.js", "out/models/manifest.json"]) {
    if (!existsSync(join(REPO, f))) fail(`${f} is missing: 'make buildroot' builds it first; run 'make build models'`);
  }
  say(`Buildroot ${version}, ${DEFCONFIG}, cache ~/.cache/paio/buildroot`);
  mkdirSync(CACHE, { recursive: true });
  installHostPackages();
  const toolchain = prepareToolchain();
  const sources = prepareSources(aptOptions());
  writeFileSync(join(CACHE, "override.mk"), overrideFile(sources));
  mkdirSync(join(CACHE, "dl"), { recursive: true });

  const defconfig = offlineDefconfig(toolchain);
  const output = join(CACHE, "output");
  say(`[3/5] configure (${elapsed()})`);
  await buildrootMake(br, output, [`BR2_DEFCONFIG=${defconfig}`, "defconfig"]);
  say(`[4/5] build, no network (${elapsed()})`);
  // PAIO's own packages come from this tree, which Buildroot does not watch:
  // they are redone on every run (seconds), everything else only when needed.
  await buildrootMake(br, output, ["paio-pid1-dirclean", "paio-app-dirclean"]);
  await buildrootMake(br, output, []);

  say(`[5/5] outputs (${elapsed()})`);
  mkdirSync(OUT, { recursive: true });
  const img = join(output, "images", "paio-x86_64.img");
  if (!existsSync(img)) fail(`the build finished without ${img}; see out/buildroot/build.log`);
  // Sparse: the blank data partition takes no room.
  run(["cp", "--sparse=always", img, join(OUT, "paio-x86_64.img")]);
  // The manifest of what the image really holds: the squashfs, unpacked.
  const unpacked = join(OUT, ".rootfs");
  rmSync(unpacked, { recursive: true, force: true });
  run(["unsquashfs", "-q", "-n", "-d", unpacked, join(output, "images", "rootfs.squashfs")]);
  const manifest = rootManifest(unpacked);
  rmSync(unpacked, { recursive: true, force: true });
  writeFileSync(join(OUT, "manifest.tsv"), manifest);
  const assembler = join(REPO, "out", "manifest.tsv");
  if (existsSync(assembler)) {
    const diff = compareManifests(readFileSync(assembler, "utf8"), manifest);
    writeFileSync(join(OUT, "manifest-diff.txt"), diff.report);
    say(`      PAIO's parts: ${diff.paioSame} same, ${diff.paioDiffer.length} differ; differences: out/buildroot/manifest-diff.txt`);
  }
  const size = (p: string) => `${(statSync(p).size / 1048576).toFixed(1)} MiB`;
  say(`built out/buildroot/paio-x86_64.img in ${elapsed()} (rootfs.squashfs ${size(join(output, "images", "rootfs.squashfs"))})`);
  say(`boot it: bin/paio qemu exec --image out/buildroot/paio-x86_64.img SCRIPT`);
}

if (import.meta.main) await main();

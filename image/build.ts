#!/usr/bin/env bun
// PAIO offline image assembler. Builds, from Debian's packages and our own
// parts, for the architecture PAIO_ARCH (make's ARCH=, default x86_64), under
// out/ (x86_64) or out/arm64/:
//   rootfs.squashfs   read-only root file system (byte-identical for identical inputs)
//   paio-x86_64.img   x86_64: GPT disk: EFI system partition (systemd-boot), root, blank data partition
//   paio-arm64.img    arm64: the same layout for arm64 UEFI machines and QEMU virt
//   paio-rpi.img      arm64: Raspberry Pi 3/4 SD card: MBR, FAT boot partition (the Pi's
//                     firmware, config.txt, kernel, device trees), root, blank data partition
//   vmlinuz, initrd.img, cmdline.txt   for direct kernel boot
//   manifest.tsv      every file in the root with its origin and sha256
// Nothing needs root privileges or loop mounts. A rebuild whose inputs are
// unchanged (a hash of all of them) does nothing.

import { existsSync, linkSync, truncateSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { basename, join, relative } from "node:path";
import {
  A, ARCH, ARCH_PACKAGES, DEBIAN_PACKAGES, DISK_IMAGES, E2FSPROGS_FILES, NETWORK_FILES, UPDATE_FILES, RT_TESTS_FILES, MODELS_DIR, ONNXRUNTIME_JS, OUT, OUTPUTS, OWN_PARTS, REPO,
  RPI_DTBS, RPI_FIRMWARE_FILES, RPI_IMAGE_BYTES, SOURCE_DATE_EPOCH, WIFI_FIRMWARE, type DiskImage,
} from "./config.ts";
import { fetchDebs, hostDebArch, type Deb } from "./debs.ts";
import { interpreter, libraryClosure } from "./elf.ts";
import { BuildError, requireTools, run } from "./errors.ts";
import { moduleLoadOrder, resolveKernel, type Kernel } from "./kernel.ts";
import { privateKeysIn, Stage } from "./stage.ts";
import { appFiles, bunBinary, onnxLibrary } from "./app.ts";
import { cpioArchive, type CpioEntry } from "./cpio.ts";
import { signingKeys, type SigningKeys } from "./keys.ts";
import { compatibleFor } from "./bundle.ts";
import { firstEntryText } from "../init/update/boot-entries.ts";

const STEPS = ["inputs", "Debian packages", "initramfs", "root tree", "boot partitions", "squashfs", "disk images", "release files"];
const started = Date.now();
let stepNo = 0;
function step(name: string): void {
  stepNo = STEPS.indexOf(name) + 1;
  console.log(`image [${stepNo}/${STEPS.length}] ${name} (${ARCH}, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
function log(msg: string): void {
  console.log(`image        ${msg}`);
}

function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function npmVersion(pkgDir: string): string {
  try {
    return JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
  } catch {
    return "unknown";
  }
}

/** Everything the image is made from, checked before any work starts. */
interface Inputs {
  bun: { path: string; origin: string };
  onnxLib: { path: string; origin: string };
  kernel: Kernel;
  modules: string[];
  debs: Map<string, Deb>;
  /** The update keys: the image trusts keys.caCert (docs/updates.md). */
  keys: SigningKeys;
}

function checkOwnParts(): void {
  for (const [what, path] of Object.entries(OWN_PARTS)) {
    if (!existsSync(path)) throw new BuildError(`${relative(REPO, path)} (${what}) is missing; run 'make build' (or 'make image', which builds it)`);
  }
  for (const f of ["manifest.json", "model-signing.pub"]) {
    if (!existsSync(join(MODELS_DIR, f))) throw new BuildError(`${relative(REPO, join(MODELS_DIR, f))} is missing; run 'make models' (or 'make image', which trains them)`);
  }
}

function resolveInputs(): Inputs {
  requireTools(["mksquashfs", "genimage", "mkdosfs", "mcopy", "readelf", "apt-get", "dpkg-deb", "bmaptool", "xz"]);
  checkOwnParts();
  const bun = bunBinary(ARCH, log);
  const onnxLib = onnxLibrary(ARCH);

  step("Debian packages");
  const kernel = resolveKernel(log);
  log(`kernel ${kernel.release} (${kernel.origin})`);
  const debs = fetchDebs([...DEBIAN_PACKAGES, ...ARCH_PACKAGES[ARCH]], log);
  const wanted = readFileSync(join(REPO, "image/modules.list"), "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  const modules = moduleLoadOrder(kernel, wanted, log);
  log(`${debs.size} packages, ${modules.length} kernel modules`);
  const keys = signingKeys(log);
  return { bun, onnxLib, kernel, modules, debs, keys };
}

/** A hash over every input: if it matches the last build's, there is nothing to do. */
function inputHash(inp: Inputs): string {
  const h = createHash("sha256");
  const addFile = (label: string, path: string) => h.update(`${label}\0${sha256File(path)}\n`);
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else addFile(relative(REPO, p), p);
    }
  };
  walk(join(REPO, "image"));
  for (const [what, path] of Object.entries(OWN_PARTS)) addFile(what, path);
  for (const f of readdirSync(MODELS_DIR).sort()) if (!f.startsWith(".")) addFile(`models/${f}`, join(MODELS_DIR, f));
  for (const pkg of Object.keys(ONNXRUNTIME_JS)) h.update(`${pkg}@${npmVersion(join(REPO, "node_modules", pkg))}\n`);
  addFile("bun", inp.bun.path);
  addFile("onnxruntime", inp.onnxLib.path);
  addFile("vmlinuz", inp.kernel.vmlinuz);
  addFile("update CA", inp.keys.caCert);
  for (const d of inp.kernel.dtbs ?? []) addFile(`dtb ${d}`, d);
  for (const m of inp.modules) addFile(m, join(inp.kernel.modulesDir!, m));
  for (const deb of inp.debs.values()) h.update(`${deb.origin}\n`);
  h.update(`arch=${ARCH}\nepoch=${SOURCE_DATE_EPOCH}\nkernel=${inp.kernel.origin}\n`);
  for (const img of DISK_IMAGES[ARCH]) h.update(`${img.file} cmdline=${img.cmdline.join(" ")}\n`);
  return h.digest("hex");
}

/** Each disk image comes with IMAGE.bmap and IMAGE.xz; SHA256SUMS covers them all. */
function imageFiles(img: DiskImage): string[] {
  return [img.file, `${img.file}.bmap`, `${img.file}.xz`];
}

function upToDate(hash: string): boolean {
  if (!Object.values(OUTPUTS).every((p) => existsSync(p))) return false;
  if (!DISK_IMAGES[ARCH].every((img) => imageFiles(img).every((f) => existsSync(join(OUT, f))))) return false;
  if (!existsSync(join(OUT, "SHA256SUMS"))) return false;
  return readFileSync(OUTPUTS.stamp, "utf8").trim() === hash;
}

function deb(inp: Inputs, name: string): Deb {
  const d = inp.debs.get(name);
  if (!d) throw new BuildError(`internal: package ${name} not fetched`);
  return d;
}

function stageRoot(inp: Inputs, dir: string, initrd: string): Stage {
  const s = new Stage(dir);
  for (const d of ["proc", "sys", "dev", "run", "var/lib/paio", "etc", "mnt", "usr/lib/paio"]) s.dir(d);
  s.dir("tmp", 0o1777);
  s.dir("root", 0o700);
  s.symlink("var/tmp", "/tmp", "paio:image/build.ts");
  s.symlink("var/log", "/run/log", "paio:image/build.ts");
  // Where D-Bus clients (RAUC) look for the system bus by default.
  s.symlink("var/run", "/run", "paio:image/build.ts");

  // busybox and its applets; our PID 1 takes /sbin/init.
  const bb = deb(inp, "busybox-static");
  s.fromPackage(bb.root, "bin/busybox", bb.origin);
  const applets = busyboxApplets(bb);
  for (const applet of applets) {
    if (applet === "sbin/init" || applet === "linuxrc" || applet === "bin/busybox") continue;
    s.symlink(applet, "/usr/bin/busybox", bb.origin);
  }

  // Our own parts.
  s.file("sbin/init", OWN_PARTS.pid1, "paio:init/pid1.c", 0o755);
  s.file("usr/libexec/paio/qemu-exec", OWN_PARTS.qemuExec, "paio:qemu/guest/qemu-exec.c", 0o755);
  // The app (bundles, models, Bun, onnxruntime): the list the Buildroot package uses too.
  for (const f of appFiles(ARCH, undefined, log)) s.file(f.dest, f.src, f.origin, f.mode);

  // e2fsprogs, for the data partition (PID 1 formats and checks it).
  const e2 = deb(inp, "e2fsprogs");
  for (const f of E2FSPROGS_FILES) s.fromPackage(e2.root, f, e2.origin);
  const rt = deb(inp, "rt-tests");
  for (const f of RT_TESTS_FILES) s.fromPackage(rt.root, f, rt.origin);
  const networkPrograms: string[] = [];
  for (const [pkg, files] of Object.entries({ ...NETWORK_FILES, ...UPDATE_FILES })) {
    const d = deb(inp, pkg);
    for (const f of files) {
      s.fromPackage(d.root, f, d.origin);
      networkPrograms.push(join(d.root, f));
    }
  }
  // Read-only root, writable answers: the name servers and root's SSH keys live elsewhere.
  s.symlink("etc/resolv.conf", "/run/paio/net/resolv.conf", "paio:image/build.ts");
  s.symlink("root/.ssh", "/var/lib/paio/ssh", "paio:image/build.ts");

  // Shared libraries: exactly what the dynamic programs need.
  const dynamic = [
    inp.bun.path, inp.onnxLib.path, ...E2FSPROGS_FILES.filter((f) => f.startsWith("sbin/")).map((f) => join(e2.root, f)), ...RT_TESTS_FILES.map((f) => join(rt.root, f)),
    ...networkPrograms,
  ];
  const libDebs = [...inp.debs.values()];
  const libs = libraryClosure(dynamic, libDebs, new Map([["libonnxruntime.so.1", inp.onnxLib.path]]), A.multiarch);
  for (const lib of libs) s.fromPackage(lib.deb.root, lib.path, lib.deb.origin);
  const interp = interpreter(inp.bun.path);
  if (!interp) throw new BuildError(`${inp.bun.path} has no ELF interpreter; is it a Linux ${ARCH} Bun binary?`);
  s.fromPackage(deb(inp, "libc6").root, interp.slice(1), deb(inp, "libc6").origin);
  log(`${libs.length} shared libraries`);

  // Kernel modules: the same set the initramfs loads, for modprobe at run time.
  if (inp.kernel.modulesDir) {
    const base = `usr/lib/modules/${inp.kernel.release}`;
    for (const m of inp.modules) s.file(`${base}/${m}`, join(inp.kernel.modulesDir, m), inp.kernel.origin, 0o644);
    const dep = readFileSync(join(inp.kernel.modulesDir, "modules.dep"), "utf8").split("\n").filter((l) => inp.modules.includes(l.split(":")[0]!));
    s.write(`${base}/modules.dep`, dep.join("\n") + "\n", "paio:image/build.ts(subset of the kernel's modules.dep)");
  }

  // The root overlay: /etc/paio, hostname, units, helper scripts.
  const overlay = join(REPO, "image/overlay");
  const walk = (rel: string) => {
    for (const name of readdirSync(join(overlay, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(join(overlay, r)).isDirectory()) walk(r);
      else s.file(r, join(overlay, r), `paio:image/overlay/${r}`);
    }
  };
  walk("");
  // A/B updates (docs/updates.md): the root carries its own kernel and initramfs, which
  // the bootloader backend copies to the EFI system partition when it installs the slot.
  s.file("boot/vmlinuz", inp.kernel.vmlinuz, inp.kernel.origin, 0o644);
  s.file("boot/initrd.img", initrd, "paio:image/build.ts", 0o644);
  s.file("etc/rauc/keyring.pem", inp.keys.caCert, "paio:update CA (image/keys.ts)", 0o644);
  s.write("etc/rauc/system.conf", raucSystemConf(), "paio:image/build.ts");
  const version = npmVersion(REPO);
  s.write("etc/paio/release", `PAIO_VERSION=${version}\nKERNEL=${inp.kernel.release}\nBUILD_EPOCH=${SOURCE_DATE_EPOCH}\n`, "paio:image/build.ts");
  return s;
}

/** RAUC's configuration: slots A and B, verity bundles only, PAIO's bootloader backend. */
function raucSystemConf(): string {
  const slot = (n: number, s: string) => [`[slot.rootfs.${n}]`, `device=/dev/disk/by-partlabel/paio-root-${s.toLowerCase()}`, "type=raw", `bootname=${s}`, ""];
  return [
    "# RAUC's configuration (docs/updates.md): two system slots, A and B, each a",
    "# squashfs root with its kernel in /boot; PAIO's backend keeps systemd-boot's entries.",
    "[system]",
    `compatible=${compatibleFor(ARCH)}`,
    "bootloader=custom",
    "bundle-formats=-plain",
    "data-directory=/var/lib/paio/rauc",
    "mountprefix=/run/rauc",
    "",
    "[handlers]",
    "bootloader-custom-backend=/usr/libexec/paio/rauc-backend",
    "",
    "[keyring]",
    "path=/etc/rauc/keyring.pem",
    "# Devices without a battery-backed clock: certificates are checked at the bundle's signing time.",
    "use-bundle-signing-time=true",
    "",
    ...slot(0, "A"),
    ...slot(1, "B"),
  ].join("\n");
}

/**
 * The applets busybox provides, from `busybox --list-full`. Another
 * architecture's binary cannot run here; Debian builds busybox-static with one
 * configuration for every architecture, so the host's build of the same
 * package lists the same applets.
 */
function busyboxApplets(bb: Deb): string[] {
  let binary = join(bb.root, "bin/busybox");
  if (A.debArch !== hostDebArch()) {
    const host = fetchDebs(["busybox-static"], log, hostDebArch()).get("busybox-static")!;
    const upstream = (v: string) => v.replace(/\+b\d+$/, ""); // a binary-only rebuild (+bN) changes nothing
    if (upstream(host.version) !== upstream(bb.version)) {
      throw new BuildError(`busybox-static is ${bb.version} for ${A.debArch} but ${host.version} for this machine; the applet list is taken from this machine's build, so both must be the same version (update the apt lists)`);
    }
    binary = join(host.root, "bin/busybox");
  }
  return run([binary, "--list-full"]).split("\n").filter(Boolean);
}

function buildSquashfs(stageDir: string, out: string): void {
  const e = String(SOURCE_DATE_EPOCH);
  run([
    "mksquashfs", stageDir, out, "-noappend", "-no-progress", "-quiet",
    "-comp", "zstd", "-Xcompression-level", "15", "-no-xattrs", "-all-root",
    "-mkfs-time", e, "-all-time", e,
  ], { env: { SOURCE_DATE_EPOCH: undefined } }); // the options above set the times; mksquashfs refuses both
}

function buildInitramfs(inp: Inputs): Uint8Array {
  const bb = deb(inp, "busybox-static");
  const entries: CpioEntry[] = [];
  for (const d of ["bin", "dev", "etc", "lib", "lib/modules", "newroot", "proc", "sys", "tmp"]) entries.push({ path: d, type: "dir", mode: 0o755 });
  entries.push({ path: "dev/console", type: "char", mode: 0o600, major: 5, minor: 1 });
  entries.push({ path: "dev/null", type: "char", mode: 0o666, major: 1, minor: 3 });
  entries.push({ path: "bin/busybox", type: "file", mode: 0o755, data: readFileSync(join(bb.root, "bin/busybox")) });
  entries.push({ path: "init", type: "file", mode: 0o755, data: readFileSync(join(REPO, "image/initramfs-init.sh")) });
  const dirs = new Set<string>();
  for (const m of inp.modules) {
    const parts = m.split("/");
    for (let i = 1; i < parts.length; i++) {
      const d = "lib/modules/" + parts.slice(0, i).join("/");
      if (!dirs.has(d)) {
        dirs.add(d);
        entries.push({ path: d, type: "dir", mode: 0o755 });
      }
    }
    entries.push({ path: `lib/modules/${m}`, type: "file", mode: 0o644, data: readFileSync(join(inp.kernel.modulesDir!, m)) });
  }
  entries.push({ path: "etc/modules-load.order", type: "file", mode: 0o644, data: new TextEncoder().encode(inp.modules.join("\n") + "\n") });
  // Firmware that built-in drivers ask for while they probe, before the root is mounted (the Pi's Wi-Fi).
  const fw = WIFI_FIRMWARE[ARCH];
  if (fw.length) {
    for (const d of ["lib/firmware", "lib/firmware/brcm"]) entries.push({ path: d, type: "dir", mode: 0o755 });
    for (const f of fw) {
      const d = deb(inp, f.pkg);
      entries.push({ path: `lib/firmware/${f.dest}`, type: "file", mode: 0o644, data: readFileSync(join(d.root, f.src)) });
    }
  }
  return Bun.gzipSync(cpioArchive(entries, SOURCE_DATE_EPOCH), { level: 9 });
}

/** The EFI system partition's files: systemd-boot for the architecture, its entry, kernel and initramfs. */
function stageEsp(inp: Inputs, img: DiskImage, dir: string, initrd: string): void {
  const sdboot = deb(inp, "systemd-boot-efi");
  const esp = new Stage(dir, false);
  esp.file(`EFI/BOOT/${img.efiBoot}`, join(sdboot.root, "usr/lib/systemd/boot/efi", img.sdboot!), sdboot.origin);
  // No `default`: systemd-boot boots the first entry in its order, which the update
  // system controls (init/update/boot-entries.ts). Slot A holds this build; B is empty.
  esp.write("loader/loader.conf", "timeout 0\neditor yes\n", "paio:image/build.ts");
  esp.write("loader/entries/paio-a.conf", firstEntryText(npmVersion(REPO), img.cmdline.join(" ")), "paio:image/build.ts");
  esp.file("paio/a/vmlinuz", inp.kernel.vmlinuz, inp.kernel.origin, 0o644);
  esp.file("paio/a/initrd.img", initrd, "paio:image/build.ts", 0o644);
}

/**
 * The Raspberry Pi's boot partition, as its firmware reads it: bootcode.bin
 * (Pi 3), start*.elf and fixup*.dat, config.txt naming the kernel, the
 * initramfs and the command line; the device trees of the kernel build
 * (upstream_kernel=1 makes the firmware pick them by their upstream names).
 */
function stageRpiBoot(inp: Inputs, img: DiskImage, dir: string, initrd: string): void {
  const fw = deb(inp, "raspi-firmware");
  const boot = new Stage(dir, false);
  for (const f of RPI_FIRMWARE_FILES) boot.file(f, join(fw.root, "usr/lib/raspi-firmware", f), fw.origin, 0o644);
  boot.file("config.txt", join(REPO, "image/rpi/config.txt"), "paio:image/rpi/config.txt", 0o644);
  boot.write("cmdline.txt", img.cmdline.join(" ") + "\n", "paio:image/build.ts");
  boot.file("vmlinuz", inp.kernel.vmlinuz, inp.kernel.origin, 0o644);
  boot.file("initrd.img", initrd, "paio:image/build.ts", 0o644);
  const dtbs = new Map((inp.kernel.dtbs ?? []).map((p) => [basename(p), p]));
  for (const name of RPI_DTBS) {
    const src = dtbs.get(name);
    if (!src) throw new BuildError(`the kernel (${inp.kernel.origin}) has no device tree ${name}; build it with 'make kernel ARCH=arm64' (it leaves dtbs/ beside vmlinuz)`);
    boot.file(name, src, inp.kernel.origin, 0o644);
  }
}

/**
 * What a person flashing the image needs beside it: IMAGE.bmap (bmaptool's
 * map of the ranges that hold data, with a sha256 for each, so a flasher
 * writes only those and can verify them) and IMAGE.xz (the download; the
 * sparse zeros compress to nothing). The root inside is already zstd-compressed,
 * so xz's fastest level gives nearly the smallest file (82.5 against 82.3 MB at
 * -6 for the x86_64 image) in a third of the time.
 */
function releaseFiles(dir: string, img: DiskImage): void {
  run(["bmaptool", "-q", "create", "-o", `${img.file}.bmap`, img.file], { cwd: dir });
  run(["sh", "-c", `xz -T0 -1 --stdout "$1" > "$1.xz"`, "sh", img.file], { cwd: dir });
  log(`${img.file}.bmap, ${img.file}.xz ${(statSync(join(dir, `${img.file}.xz`)).size / 1048576).toFixed(1)} MiB`);
}

function main(): void {
  step("inputs");
  const inp = resolveInputs();
  const hash = inputHash(inp);
  if (upToDate(hash)) {
    console.log(`image: up to date (${relative(REPO, OUTPUTS.disk)}); inputs unchanged`);
    return;
  }

  const tmp = join(OUT, ".image-tmp");
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });

  step("initramfs");
  writeFileSync(join(tmp, "initrd.img"), buildInitramfs(inp));
  log(`initrd.img ${(statSync(join(tmp, "initrd.img")).size / 1048576).toFixed(1)} MiB`);

  step("root tree");
  const root = stageRoot(inp, join(tmp, "rootfs"), join(tmp, "initrd.img"));
  // The build's signing keys never ship; a device makes its own at first boot.
  const keys = privateKeysIn(root.root);
  if (keys.length) throw new BuildError(`the root tree holds private keys: ${keys.join(", ")}; remove them from what the image is made of (only public keys and certificates belong in an image)`);
  writeFileSync(join(tmp, "manifest.tsv"), root.manifest());

  step("boot partitions");
  const images = DISK_IMAGES[ARCH];
  const inputDir = (img: DiskImage) => join(tmp, `genimage-input-${img.kind}`);
  for (const img of images) {
    if (img.kind === "uefi") stageEsp(inp, img, inputDir(img), join(tmp, "initrd.img"));
    else stageRpiBoot(inp, img, inputDir(img), join(tmp, "initrd.img"));
    log(`${img.file}: ${img.kind === "uefi" ? `EFI system partition (systemd-boot, EFI/BOOT/${img.efiBoot})` : "Raspberry Pi boot partition (firmware, config.txt, device trees)"}`);
  }

  step("squashfs");
  buildSquashfs(root.root, join(tmp, "rootfs.squashfs"));
  log(`rootfs.squashfs ${(statSync(join(tmp, "rootfs.squashfs")).size / 1048576).toFixed(1)} MiB`);

  step("disk images");
  mkdirSync(join(tmp, "empty-root"));
  for (const img of images) {
    const gi = inputDir(img);
    linkSync(join(tmp, "rootfs.squashfs"), join(gi, "rootfs.squashfs"));
    // Run in image/ so that the configuration's include("genimage-disk.cfg") resolves.
    // The UEFI layout is the same for every architecture (genimage-x86_64.cfg names its
    // output paio-x86_64.img); only the EFI partition's contents differ.
    const [config, produced] = img.kind === "uefi" ? ["genimage-x86_64.cfg", "paio-x86_64.img"] : ["genimage-rpi.cfg", "paio-rpi.img"];
    run([
      "genimage", "--config", config,
      "--inputpath", gi, "--outputpath", join(tmp, `genimage-out-${img.kind}`),
      "--tmppath", join(tmp, `genimage-tmp-${img.kind}`), "--rootpath", join(tmp, "empty-root"),
    ], { cwd: join(REPO, "image") });
    renameSync(join(tmp, `genimage-out-${img.kind}`, produced), join(tmp, img.file));
    // genimage stops writing after the last partition with contents; the blank data
    // partition's end is made part of the file (sparse), so the card is the size it says.
    if (img.kind === "rpi") truncateSync(join(tmp, img.file), RPI_IMAGE_BYTES);
    log(`${img.file} ${(statSync(join(tmp, img.file)).size / 1048576).toFixed(0)} MiB`);
  }

  step("release files");
  for (const img of images) releaseFiles(tmp, img);

  // Move the finished outputs into place only now, so a failed build never
  // leaves a half-written image behind the stamp of a good one.
  rmSync(OUTPUTS.stamp, { force: true });
  renameSync(join(tmp, "rootfs.squashfs"), OUTPUTS.rootfs);
  for (const img of images) for (const f of imageFiles(img)) renameSync(join(tmp, f), join(OUT, f));
  run(["sh", "-c", `sha256sum ${images.flatMap(imageFiles).join(" ")} > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS`], { cwd: OUT });
  renameSync(join(tmp, "initrd.img"), OUTPUTS.initrd);
  renameSync(join(tmp, "manifest.tsv"), OUTPUTS.manifest);
  writeFileSync(OUTPUTS.kernel, readFileSync(inp.kernel.vmlinuz));
  // For direct kernel boot: the first image's command line (x86_64 PC, arm64 virt).
  writeFileSync(join(OUT, "cmdline.txt"), images[0]!.cmdline.join(" ") + "\n");
  writeFileSync(OUTPUTS.stamp, hash + "\n");
  rmSync(tmp, { recursive: true, force: true });
  console.log(`image: built ${images.map((i) => relative(REPO, join(OUT, i.file))).join(", ")} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

try {
  main();
} catch (e) {
  if (e instanceof BuildError) {
    console.error(`image: error: ${e.message}`);
    process.exit(1);
  }
  throw e;
}

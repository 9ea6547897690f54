// `paio qemu ...`: boot the built image on this machine.
//   paio qemu run  [--arch x86_64|arm64] [--board pc|virt|rpi3] [--snapshot|--keep-disk FILE] [--direct] [--image FILE]
//                  [--memory MB] [--cpus N] [--cpu MODEL] [--ssh-port N]
//   paio qemu exec [--arch x86_64|arm64] [--board pc|virt|rpi3] [--snapshot|--keep-disk FILE] [--uefi|--direct] [--image FILE]
//                  [--put HOSTFILE:GUESTPATH]... [--timeout S] [--boot-timeout S] [--reboot] [--console]
//                  [--console-log FILE] [--append ARG] [--memory MB] [--cpus N] [--cpu MODEL] [--ssh-port N] SCRIPT|-
//   paio qemu probe [--arch x86_64|arm64] [--board pc|virt|rpi3]
//   paio qemu help
// exec boots headless, waits for the supervisor's readiness, copies the
// --put files in, runs SCRIPT (a /bin/sh script; '-' reads it from stdin) in
// the guest as root, prints its output, powers the guest off and exits with
// the script's exit status. Its own failures (no image, boot time-out, panic,
// a file that could not be put) exit 125 with the last console lines.
// --put HOSTFILE:GUESTPATH (repeatable) copies a file over the exec channel
// (any size; SHA-256 checked; in place whole or not at all; mode kept;
// missing directories made; GUESTPATH ending in / takes the file's name).
// --keep-disk FILE boots FILE, made on first use as a sparse copy of the
// built image (or of --image), so that later runs find what earlier ones
// left (state.ts says why a copy); its UEFI variables are kept beside it.
// --image FILE boots another disk image (e.g. the Buildroot
// tree's) through UEFI firmware unless --direct asks for out/'s kernel; what
// the image (or an existing --keep-disk FILE) is (x86_64 UEFI, arm64 UEFI,
// Raspberry Pi) picks the architecture and board when --arch/--board do not,
// and a disk for another one is refused, naming the option to use.
// Architectures and boards (the built files: out/ for x86_64, out/arm64/ for arm64):
//   --arch x86_64 (default)   q35, out/paio-x86_64.img
//   --arch arm64              virt (AAVMF firmware or direct boot), out/arm64/paio-arm64.img
//   --board rpi3              a Raspberry Pi 3 B (raspi3b), out/arm64/paio-rpi.img: the runner reads
//                             config.txt from the SD card as the Pi firmware would; exactly 1024 MB and
//                             4 CPUs; no network (no SSH); the exec protocol uses the first UART.
// The guest's SSH server is forwarded to 127.0.0.1:--ssh-port (run: 2222, or
// a free port when that is taken); `paio ssh` logs in with the project's key.

import { fileURLToPath } from "node:url";
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { chooseAccel } from "./accel.ts";
import { badGuestPath, Guest, GuestError, PutError } from "./guest.ts";
import { checkImageFor, checkSdSize, detectImage, displayPath, rpiBootFiles, targetOf } from "./image-info.ts";
import { ensureVars, imageCmdline, qemuArgs, RPI_QEMU_CMDLINE, type MachineOptions } from "./machine.ts";
import { keptDisk, persistentDisk } from "./state.ts";
import { freePort, guestKey, readSshPort, sshArgv, sshPortFile } from "./net.ts";
import {
  artifactDir, buildHint, defaultBootTimeoutS, describeTarget, imagePath, parseArch, parseBoard, resolveTarget,
  RPI3_CPUS, RPI3_MEMORY_MB, TargetError, type Arch, type Board, type Target,
} from "./target.ts";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const OUT = process.env.PAIO_OUT ?? join(REPO, "out");
export const HARNESS_FAILURE = 125;

export const QEMU_USAGE = `usage: paio qemu run|exec|probe|help [options]
  run  [options]             boot the image with the serial console here (Ctrl-A x quits)
  exec [options] SCRIPT|-    boot headless, copy the --put files in, run SCRIPT in the guest as root,
                             print its output, power off; exit with its status (125: the harness failed)
  probe                      say which accelerator QEMU will use for --arch/--board
options:
  --arch x86_64|arm64        the guest's architecture (default x86_64; arm64 boots QEMU virt)
  --board pc|virt|rpi3       pc: x86_64 q35; virt: arm64; rpi3: a Raspberry Pi 3 B (arm64, raspi3b),
                             booted from its SD card image as the Pi firmware would: exactly 1024 MB,
                             4 CPUs, no network (no SSH), exec over its first UART
  --image FILE               another disk image; its kind (x86_64 UEFI, arm64 UEFI, Raspberry Pi)
                             picks --arch/--board when they are not given
  --snapshot                 throw the guest's writes away (otherwise out/state/, out/arm64/state/
                             or out/arm64/state-rpi3/ keep its data)
  --keep-disk FILE           boot FILE and keep what the guest writes there: made on first use as a
                             sparse copy of the built image (or of --image), booted as it is by later
                             runs (an update, then the boot after it); its kind picks --arch/--board
                             when they are not given, and one for another board is refused
  --uefi | --direct          firmware (OVMF, AAVMF) and the image's boot loader, or QEMU loads
                             the built kernel (run: uefi, exec: direct; not for rpi3)
  --memory MB  --cpus N      default 1024 MB and 2 CPUs (rpi3: 1024 MB and 4, nothing else)
  --cpu MODEL                QEMU's CPU model (default: host under KVM, else max on x86_64,
                             cortex-a72 on virt, cortex-a53 on rpi3)
  --ssh-port N               forward the guest's SSH server to 127.0.0.1:N (not on rpi3)
  exec only: --put HOSTFILE:GUESTPATH  copy a file into the guest before SCRIPT runs (repeatable):
               any size its file system holds, SHA-256 checked, at GUESTPATH (absolute) whole or not
               at all, mode kept, missing directories made; GUESTPATH ending in / takes the file's name
             --timeout S (600)  --boot-timeout S (x86_64 300, virt 600, rpi3 900; or PAIO_BOOT_TIMEOUT)
             --reboot  --console  --console-log FILE  --append ARG (kernel command line; not under uefi)
environment: PAIO_ACCEL=kvm|tcg forces the accelerator; PAIO_BOOT_TIMEOUT (seconds)`;

interface Flags {
  snapshot: boolean;
  boot: "uefi" | "direct";
  /** --uefi or --direct was given. */
  bootChosen: boolean;
  image?: string;
  arch?: Arch;
  board?: Board;
  timeoutS: number;
  bootTimeoutS?: number;
  reboot: boolean;
  console: boolean;
  consoleLog?: string;
  append: string[];
  memoryMb?: number;
  cpus?: number;
  cpu?: string;
  sshPort?: number;
  /** --put HOSTFILE:GUESTPATH, in order. */
  puts: { arg: string; host: string; guest: string }[];
  keepDisk?: string;
  rest: string[];
}

class UsageError extends Error {}

function parseFlags(args: string[], defaultBoot: "uefi" | "direct"): Flags {
  const f: Flags = {
    snapshot: false, boot: defaultBoot, bootChosen: false, timeoutS: 600,
    reboot: false, console: false, append: [], puts: [], rest: [],
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    const num = (): number => {
      const v = value();
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${a} needs a positive number, not '${v}'`);
      return n;
    };
    switch (a) {
      case "--snapshot": f.snapshot = true; break;
      case "--uefi": f.boot = "uefi"; f.bootChosen = true; break;
      case "--direct": f.boot = "direct"; f.bootChosen = true; break;
      case "--image": f.image = value(); break;
      case "--arch": f.arch = parseArch(value()); break;
      case "--board": f.board = parseBoard(value()); break;
      case "--timeout": f.timeoutS = num(); break;
      case "--boot-timeout": f.bootTimeoutS = num(); break;
      case "--reboot": f.reboot = true; break;
      case "--console": f.console = true; break;
      case "--console-log": f.consoleLog = value(); break;
      case "--append": f.append.push(value()); break;
      case "--put": f.puts.push(parsePut(value())); break;
      case "--keep-disk": f.keepDisk = value(); break;
      case "--memory": f.memoryMb = num(); break;
      case "--cpus": f.cpus = num(); break;
      case "--cpu": f.cpu = value(); break;
      case "--ssh-port": {
        const n = num();
        if (!Number.isInteger(n) || n > 65535) throw new UsageError(`--ssh-port needs a port from 1 to 65535, not '${n}'`);
        f.sshPort = n;
        break;
      }
      default:
        if (a.startsWith("--")) throw new UsageError(`unknown option ${a} (paio qemu help lists them)`);
        f.rest.push(a);
    }
  }
  if (f.keepDisk !== undefined && f.snapshot) throw new UsageError("--keep-disk keeps the guest's writes and --snapshot throws them away: give one of them");
  // Another image (e.g. Buildroot's) brings its own boot path: firmware,
  // then whatever its EFI partition holds. Direct boot would use out/'s kernel.
  if (f.image && !f.bootChosen) f.boot = "uefi";
  return f;
}

/**
 * HOSTFILE:GUESTPATH. The guest path is absolute, so the first ':' followed
 * by '/' ends the host file (whose name may hold a ':'); a guest path ending
 * in '/' is a directory that takes the host file's name.
 */
function parsePut(arg: string): Flags["puts"][number] {
  const at = arg.indexOf(":/") > 0 ? arg.indexOf(":/") : arg.indexOf(":");
  if (at <= 0 || at === arg.length - 1) throw new UsageError(`--put ${arg}: HOSTFILE:GUESTPATH expected (e.g. --put app.bin:/var/lib/paio/app.bin)`);
  const host = arg.slice(0, at);
  let guest = arg.slice(at + 1);
  if (guest.endsWith("/")) guest += basename(host);
  const bad = badGuestPath(guest);
  if (bad) throw new UsageError(`--put ${arg}: ${bad}, not '${guest}'`);
  return { arg, host, guest };
}

/** The --put host files exist and can be read: said before a guest boots for them. */
function checkPuts(f: Flags): void {
  for (const p of f.puts) {
    if (!existsSync(p.host)) throw new UsageError(`--put ${p.arg}: ${p.host}: no such file`);
    if (!statSync(p.host).isFile()) throw new UsageError(`--put ${p.arg}: ${p.host} is not a regular file`);
    try {
      accessSync(p.host, constants.R_OK);
    } catch {
      throw new UsageError(`--put ${p.arg}: ${p.host} cannot be read`);
    }
  }
}

/** Files from this size on show their progress on stderr. */
const PROGRESS_MIN = 8 * 1024 * 1024;

/** Progress of one --put on stderr: a line rewritten on a terminal, a line per tenth otherwise. */
function putProgress(label: string): { update: (sent: number, total: number) => void; done: (total: number) => void } {
  const tty = process.stderr.isTTY === true;
  const start = Date.now();
  let lastAt = 0;
  let lastTenth = 0;
  const mib = (n: number) => (n / 1048576).toFixed(1);
  const show = (text: string, final: boolean) => process.stderr.write(tty ? `\r${text}\x1b[K${final ? "\n" : ""}` : `${text}\n`);
  return {
    update(sent, total) {
      if (total < PROGRESS_MIN || sent >= total) return;
      const now = Date.now();
      const tenth = Math.floor((sent * 10) / total);
      if (tty ? now - lastAt < 250 : tenth === lastTenth) return;
      lastAt = now;
      lastTenth = tenth;
      const rate = sent / 1048576 / Math.max(0.001, (now - start) / 1000);
      show(`paio: --put ${label}: ${mib(sent)} of ${mib(total)} MiB (${Math.floor((sent * 100) / total)}%), ${rate.toFixed(1)} MiB/s`, false);
    },
    done(total) {
      if (total < PROGRESS_MIN) return;
      show(`paio: --put ${label}: ${mib(total)} MiB in ${((Date.now() - start) / 1000).toFixed(1)} s, SHA-256 checked in the guest`, true);
    },
  };
}

/**
 * The architecture and board: --arch/--board, else what --image is, else
 * x86_64. Checks the options that the Pi board does not have.
 */
function chooseTarget(f: Flags): Target {
  let t: Target;
  if (f.arch || f.board) {
    t = resolveTarget({ arch: f.arch, board: f.board });
  } else if (f.keepDisk && existsSync(f.keepDisk)) {
    t = targetOf(detectImage(f.keepDisk)) ?? resolveTarget({});
  } else if (f.image && existsSync(f.image)) {
    t = targetOf(detectImage(f.image)) ?? resolveTarget({});
  } else {
    t = resolveTarget({});
  }
  // A kept disk of another board is refused before anything else is looked for.
  if (f.keepDisk && existsSync(f.keepDisk)) checkImageFor(detectImage(f.keepDisk), t, `--keep-disk ${f.keepDisk}`);
  if (t.board === "rpi3") {
    if (f.bootChosen) throw new UsageError("--board rpi3 boots what the SD card's config.txt names, as the Pi firmware does: --uefi and --direct do not apply");
    if (f.memoryMb !== undefined && f.memoryMb !== RPI3_MEMORY_MB) throw new UsageError(`--board rpi3 has exactly ${RPI3_MEMORY_MB} MB of memory (QEMU's raspi3b takes no other size), not ${f.memoryMb}`);
    if (f.cpus !== undefined && f.cpus !== RPI3_CPUS) throw new UsageError(`--board rpi3 has exactly ${RPI3_CPUS} CPUs (QEMU's raspi3b takes no other count), not ${f.cpus}`);
    if (f.sshPort !== undefined) throw new UsageError("--board rpi3 has no network under QEMU: no SSH port to forward");
    f.boot = "direct";
  }
  if (f.cpus !== undefined && !Number.isInteger(f.cpus)) throw new UsageError(`--cpus needs a whole number, not ${f.cpus}`);
  return t;
}

function requireImage(f: Flags, t: Target): void {
  // A given image (or a kept disk made before) booted through its firmware (or the Pi's SD card) needs nothing from out/.
  const given = f.image !== undefined || (f.keepDisk !== undefined && existsSync(f.keepDisk));
  if (given && (f.boot === "uefi" || t.board === "rpi3")) return;
  const dir = artifactDir(OUT, t.arch);
  const files = [...(given ? [] : [imagePath(OUT, t)]), ...(t.board === "rpi3" ? [] : ["vmlinuz", "initrd.img", "cmdline.txt"].map((n) => join(dir, n)))];
  for (const file of files) {
    if (!existsSync(file)) throw new UsageError(`${displayPath(file)} is missing; build the ${describeTarget(t)} image first with '${buildHint(t)}'`);
  }
}

/** The disk to boot: a kept disk, a given file, the built image (snapshot), or the persistent overlay. */
function chooseDisk(f: Flags, t: Target): { disk: string; varsFile?: string } {
  let chosen: { disk: string; varsFile?: string };
  if (f.keepDisk !== undefined) {
    if (f.image && !existsSync(f.image)) throw new UsageError(`--image ${f.image}: no such file`);
    const existed = existsSync(f.keepDisk);
    const k = keptDisk(f.keepDisk, f.image ?? imagePath(OUT, t), t);
    if (k.note) console.error(`paio: ${k.note}`);
    if (existed && f.image) console.error(`paio: --keep-disk ${f.keepDisk} exists: booting it as it is (--image is copied only into a new one)`);
    // Its variable store matters only to the firmware.
    return { disk: k.disk, varsFile: f.boot === "uefi" ? k.varsFile : undefined };
  } else if (f.image) {
    if (!existsSync(f.image)) throw new UsageError(`--image ${f.image}: no such file`);
    chosen = { disk: f.image };
  } else if (f.snapshot) {
    chosen = { disk: imagePath(OUT, t) };
  } else {
    // The built image is checked before an overlay is made on top of it.
    checkImageFor(detectImage(imagePath(OUT, t)), t);
    const p = persistentDisk(OUT, t);
    if (p.note) console.error(`paio: ${p.note}`);
    chosen = { disk: p.disk, varsFile: p.varsFile };
  }
  checkImageFor(detectImage(chosen.disk), t, f.image ?? displayPath(chosen.disk));
  if (t.board === "rpi3") checkSdSize(chosen.disk, f.image ?? displayPath(chosen.disk));
  return chosen;
}

async function execCommand(args: string[]): Promise<number> {
  const f = parseFlags(args, "direct");
  if (f.rest.length !== 1) throw new UsageError("usage: paio qemu exec [--snapshot|--keep-disk FILE] [--put HOSTFILE:GUESTPATH]... [options] SCRIPT|-");
  checkPuts(f);
  const t = chooseTarget(f);
  const scriptPath = f.rest[0]!;
  let script: Uint8Array;
  if (scriptPath === "-") script = new Uint8Array(await new Response(Bun.stdin.stream()).arrayBuffer());
  else if (!existsSync(scriptPath)) throw new UsageError(`script ${scriptPath}: no such file`);
  else script = readFileSync(scriptPath);
  requireImage(f, t);
  const { disk, varsFile } = chooseDisk(f, t);
  const bootTimeoutS = f.bootTimeoutS ?? defaultBootTimeoutS(t);

  const guest = await Guest.start({
    outDir: artifactDir(OUT, t.arch), keyDir: OUT, arch: t.arch, board: t.board, cpu: f.cpu,
    disk, varsFile, boot: f.boot, snapshot: f.snapshot, append: f.append, memoryMb: f.memoryMb, cpus: f.cpus,
    consoleLog: f.consoleLog, sshPort: f.sshPort, echo: f.console ? (l) => process.stderr.write(`console| ${l}\n`) : undefined,
    lifetimeS: bootTimeoutS + f.timeoutS + 300,
  });
  try {
    await guest.waitReady(bootTimeoutS * 1000);
    for (const p of f.puts) {
      const progress = putProgress(`${p.host} -> ${p.guest}`);
      try {
        const { size } = await guest.put(p.host, p.guest, progress.update);
        progress.done(size);
      } catch (e) {
        if (!(e instanceof PutError)) throw e;
        if (process.stderr.isTTY) process.stderr.write("\n");
        console.error(`paio qemu exec: --put ${p.arg}: ${e.reason}`);
        // The script does not run without its files; the guest still powers off cleanly.
        await guest.shutdown("POWEROFF").catch(() => undefined);
        return HARNESS_FAILURE;
      }
    }
    const code = await guest.exec(script, (d) => process.stdout.write(d), f.timeoutS * 1000);
    const qemuCode = await guest.shutdown(f.reboot ? "REBOOT" : "POWEROFF");
    if (qemuCode !== 0) {
      console.error(`paio qemu exec: QEMU exited with status ${qemuCode} after ${f.reboot ? "reboot" : "poweroff"}`);
      return HARNESS_FAILURE;
    }
    return code;
  } finally {
    guest.kill();
  }
}

async function runCommand(args: string[]): Promise<number> {
  const f = parseFlags(args, "uefi");
  if (f.rest.length) throw new UsageError(`unexpected argument ${f.rest[0]}`);
  if (f.puts.length) throw new UsageError("--put is for exec (with run, copy files in over SSH: bin/paio ssh)");
  const t = chooseTarget(f);
  requireImage(f, t);
  const { disk, varsFile: persistentVars } = chooseDisk(f, t);
  const accel = await chooseAccel((m) => console.error(`paio: ${m}`), t);
  const dir = artifactDir(OUT, t.arch);
  const rpi = t.board === "rpi3";
  const tmp = mkdtempSync(join(tmpdir(), "paio-qemu-run-"));
  const sshPort = rpi ? undefined : f.sshPort ?? (portFree(2222) ? 2222 : freePort());
  const machine: MachineOptions = {
    target: t, accel, cpuModel: f.cpu, disk, boot: f.boot, snapshot: f.snapshot,
    memoryMb: f.memoryMb ?? 1024, cpus: f.cpus ?? (rpi ? RPI3_CPUS : 2),
    console: "stdio", noReboot: false,
  };
  let how: string;
  if (rpi) {
    const files = rpiBootFiles(detectImage(disk), tmp);
    for (const w of files.config.warnings) console.error(`paio: ${w}`);
    Object.assign(machine, { kernel: files.kernel, dtb: files.dtb, initrd: files.initrd, cmdline: [files.cmdline, ...RPI_QEMU_CMDLINE, ...f.append].join(" ") });
    how = `${files.config.kernel}, ${files.config.deviceTree}${files.config.initramfs ? `, ${files.config.initramfs}` : ""} from its config.txt`;
  } else {
    const varsFile = persistentVars ?? join(dir, t.arch === "x86_64" ? "OVMF_VARS.snapshot.fd" : "AAVMF_VARS.snapshot.fd");
    if (f.boot === "uefi") ensureVars(varsFile, t.arch);
    Object.assign(machine, {
      varsFile, forwards: [{ hostPort: sshPort!, guestPort: 22, proto: "tcp" }], sshKeyFile: guestKey(OUT).publicKey,
    });
    if (f.boot === "direct") {
      Object.assign(machine, { kernel: join(dir, "vmlinuz"), initrd: join(dir, "initrd.img"), cmdline: [imageCmdline(dir), ...f.append].join(" ") });
    }
    how = f.boot === "uefi" ? `UEFI firmware (${t.arch === "x86_64" ? "OVMF" : "AAVMF"}) + the image's boot loader` : "direct kernel boot";
  }
  const argv = qemuArgs(machine);
  console.error(
    `paio: booting ${displayPath(disk)} on ${describeTarget(t)}: ${how}, ${accel}` +
      `${f.snapshot ? ", snapshot: nothing is kept" : ", persistent data"}. Quit QEMU with Ctrl-A x.\n` +
      (sshPort ? `paio: SSH on 127.0.0.1:${sshPort}; from another terminal: bin/paio ssh` : "paio: no network on this board (no SSH)"),
  );
  if (sshPort) writeFileSync(sshPortFile(OUT), `${sshPort}\n`);
  const proc = Bun.spawn(argv, { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
  try {
    return await proc.exited;
  } finally {
    if (sshPort) rmSync(sshPortFile(OUT), { force: true });
    rmSync(tmp, { recursive: true, force: true });
  }
}

function portFree(port: number): boolean {
  try {
    Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
}

/** `paio ssh [--port N] [COMMAND...]`: a shell (or one command) in the guest that `paio qemu run` started. */
export async function sshMain(args: string[]): Promise<number> {
  let port = readSshPort(OUT);
  if (args[0] === "--port") {
    port = Number(args[1]);
    args = args.slice(2);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      console.error("paio ssh: --port needs a port number");
      return 2;
    }
  }
  if (!port) {
    console.error("paio ssh: no guest is running here (start one with 'make run' or 'bin/paio qemu run'), or give --port N");
    return 2;
  }
  const argv = sshArgv(OUT, port, args);
  // An interactive shell needs a terminal: ssh without BatchMode's "no questions" is fine then.
  const proc = Bun.spawn(args.length ? argv : ["ssh", "-t", ...argv.slice(1)], { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
  return await proc.exited;
}

export async function qemuMain(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  try {
    switch (sub) {
      case "exec":
        return await execCommand(rest);
      case "run":
        return await runCommand(rest);
      case "probe": {
        const f = parseFlags(rest, "direct");
        if (f.rest.length) throw new UsageError(`unexpected argument ${f.rest[0]}`);
        if (f.puts.length || f.keepDisk !== undefined) throw new UsageError("--put and --keep-disk are for exec and run");
        console.log(await chooseAccel((m) => console.error(`paio: ${m}`), chooseTarget(f)));
        return 0;
      }
      case "help":
      case "--help":
      case "-h":
        console.log(QEMU_USAGE);
        return 0;
      default:
        throw new UsageError(QEMU_USAGE);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof TargetError) {
      console.error(`paio qemu: ${e.message}`);
      return 2;
    }
    if (e instanceof GuestError) {
      console.error(`paio qemu ${sub}: ${e.message}`);
      if (e.consoleTail.length) console.error("last console lines:\n" + e.consoleTail.map((l) => `  | ${l}`).join("\n"));
      return HARNESS_FAILURE;
    }
    throw e;
  }
}

// `paio qemu ...`: boot the built image on this machine.
//   paio qemu run  [--snapshot] [--direct] [--image FILE] [--memory MB] [--cpus N] [--ssh-port N]
//   paio qemu exec [--snapshot] [--uefi|--direct] [--image FILE] [--timeout S] [--boot-timeout S]
//                  [--reboot] [--console] [--console-log FILE] [--append ARG] [--ssh-port N] SCRIPT|-
// exec boots headless, waits for the supervisor's readiness, runs SCRIPT (a
// /bin/sh script; '-' reads it from stdin) in the guest as root, prints its
// output, powers the guest off and exits with the script's exit status.
// Its own failures (no image, boot time-out, panic) exit 125 with the last
// console lines. --image FILE boots another disk image (e.g. the Buildroot
// tree's) through UEFI firmware unless --direct asks for out/'s kernel.
// The guest's SSH server is forwarded to 127.0.0.1:--ssh-port (run: 2222, or
// a free port when that is taken); `paio ssh` logs in with the project's key.

import { fileURLToPath } from "node:url";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chooseAccel } from "./accel.ts";
import { Guest, GuestError } from "./guest.ts";
import { ensureVars, imageCmdline, qemuArgs } from "./machine.ts";
import { persistentDisk } from "./state.ts";
import { freePort, guestKey, readSshPort, sshArgv, sshPortFile } from "./net.ts";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const OUT = process.env.PAIO_OUT ?? join(REPO, "out");
export const HARNESS_FAILURE = 125;

interface Flags {
  snapshot: boolean;
  boot: "uefi" | "direct";
  /** --uefi or --direct was given. */
  bootChosen: boolean;
  image?: string;
  timeoutS: number;
  bootTimeoutS: number;
  reboot: boolean;
  console: boolean;
  consoleLog?: string;
  append: string[];
  memoryMb: number;
  cpus: number;
  sshPort?: number;
  rest: string[];
}

class UsageError extends Error {}

function parseFlags(args: string[], defaultBoot: "uefi" | "direct"): Flags {
  const f: Flags = {
    snapshot: false, boot: defaultBoot, bootChosen: false, timeoutS: 600, bootTimeoutS: Number(process.env.PAIO_BOOT_TIMEOUT ?? 300),
    reboot: false, console: false, append: [], memoryMb: 1024, cpus: 2, rest: [],
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
      case "--timeout": f.timeoutS = num(); break;
      case "--boot-timeout": f.bootTimeoutS = num(); break;
      case "--reboot": f.reboot = true; break;
      case "--console": f.console = true; break;
      case "--console-log": f.consoleLog = value(); break;
      case "--append": f.append.push(value()); break;
      case "--memory": f.memoryMb = num(); break;
      case "--cpus": f.cpus = num(); break;
      case "--ssh-port": {
        const n = num();
        if (!Number.isInteger(n) || n > 65535) throw new UsageError(`--ssh-port needs a port from 1 to 65535, not '${n}'`);
        f.sshPort = n;
        break;
      }
      default:
        if (a.startsWith("--")) throw new UsageError(`unknown option ${a}`);
        f.rest.push(a);
    }
  }
  // Another image (e.g. Buildroot's) brings its own boot path: firmware,
  // then whatever its EFI partition holds. Direct boot would use out/'s kernel.
  if (f.image && !f.bootChosen) f.boot = "uefi";
  return f;
}

function requireImage(f: Flags): void {
  // A given image booted through its firmware needs nothing from out/.
  if (f.image && f.boot === "uefi") return;
  for (const file of ["paio-x86_64.img", "vmlinuz", "initrd.img", "cmdline.txt"]) {
    if (!existsSync(join(OUT, file))) throw new UsageError(`${join(OUT, file)} is missing; build the image first with 'make image'`);
  }
}

/** The disk to boot: a given file, the built image (snapshot), or the persistent overlay. */
function chooseDisk(f: Flags): { disk: string; varsFile?: string } {
  if (f.image) {
    if (!existsSync(f.image)) throw new UsageError(`--image ${f.image}: no such file`);
    return { disk: f.image };
  }
  if (f.snapshot) return { disk: join(OUT, "paio-x86_64.img") };
  const p = persistentDisk(OUT);
  if (p.note) console.error(`paio: ${p.note}`);
  return { disk: p.disk, varsFile: p.varsFile };
}

async function execCommand(args: string[]): Promise<number> {
  const f = parseFlags(args, "direct");
  if (f.rest.length !== 1) throw new UsageError("usage: paio qemu exec [--snapshot] [options] SCRIPT|-");
  const scriptPath = f.rest[0]!;
  let script: Uint8Array;
  if (scriptPath === "-") script = new Uint8Array(await new Response(Bun.stdin.stream()).arrayBuffer());
  else if (!existsSync(scriptPath)) throw new UsageError(`script ${scriptPath}: no such file`);
  else script = readFileSync(scriptPath);
  requireImage(f);
  const { disk, varsFile } = chooseDisk(f);

  const guest = await Guest.start({
    outDir: OUT, disk, varsFile, boot: f.boot, snapshot: f.snapshot, append: f.append, memoryMb: f.memoryMb, cpus: f.cpus,
    consoleLog: f.consoleLog, sshPort: f.sshPort, echo: f.console ? (l) => process.stderr.write(`console| ${l}\n`) : undefined,
    lifetimeS: f.bootTimeoutS + f.timeoutS + 300,
  });
  try {
    await guest.waitReady(f.bootTimeoutS * 1000);
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
  requireImage(f);
  const { disk, varsFile: persistentVars } = chooseDisk(f);
  const accel = await chooseAccel((m) => console.error(`paio: ${m}`));
  const varsFile = persistentVars ?? join(OUT, "OVMF_VARS.snapshot.fd");
  if (f.boot === "uefi") ensureVars(varsFile);
  const sshPort = f.sshPort ?? (portFree(2222) ? 2222 : freePort());
  const argv = qemuArgs({
    accel, disk, boot: f.boot, snapshot: f.snapshot, memoryMb: f.memoryMb, cpus: f.cpus, varsFile,
    kernel: join(OUT, "vmlinuz"), initrd: join(OUT, "initrd.img"), cmdline: [imageCmdline(OUT), ...f.append].join(" "),
    console: "stdio", noReboot: false,
    forwards: [{ hostPort: sshPort, guestPort: 22, proto: "tcp" }], sshKeyFile: guestKey(OUT).publicKey,
  });
  console.error(
    `paio: booting ${disk} (${f.boot === "uefi" ? "UEFI firmware + systemd-boot" : "direct kernel boot"}, ${accel}` +
      `${f.snapshot ? ", snapshot: nothing is kept" : ", persistent data"}). Quit QEMU with Ctrl-A x.\n` +
      `paio: SSH on 127.0.0.1:${sshPort}; from another terminal: bin/paio ssh`,
  );
  writeFileSync(sshPortFile(OUT), `${sshPort}\n`);
  const proc = Bun.spawn(argv, { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
  try {
    return await proc.exited;
  } finally {
    rmSync(sshPortFile(OUT), { force: true });
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
      case "probe":
        console.log(await chooseAccel((m) => console.error(`paio: ${m}`)));
        return 0;
      default:
        throw new UsageError("usage: paio qemu run|exec|probe ...");
    }
  } catch (e) {
    if (e instanceof UsageError) {
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

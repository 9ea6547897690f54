// One booted PAIO guest under QEMU, driven by the host: boot, wait for the
// supervisor's readiness line, copy files in and run scripts through the exec
// port, power off.
// The same for every board (x86_64 q35, arm64 virt, the Raspberry Pi 3 on
// raspi3b), except that the Pi has no network and speaks the exec protocol on
// its first UART instead of a virtio port.
// QEMU never outlives the host process: it is killed on exit and on signals,
// and runs under `timeout` as a last resort.

import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { chooseAccel, type Accel } from "./accel.ts";
import { ConsoleWatcher } from "./console.ts";
import { ExecClient, PUT_VERSION, type PutSource } from "./exec-client.ts";
import { checkImageFor, checkSdSize, detectImage, rpiBootFiles } from "./image-info.ts";
import { ensureVars, FIRMWARE, imageCmdline, qemuArgs, RPI_EXEC_TTY, RPI_QEMU_CMDLINE, type MachineOptions } from "./machine.ts";
import { freePort, guestKey, sshArgv, type Forward, type GuestForward } from "./net.ts";
import { describeTarget, resolveTarget, RPI3_CPUS, RPI3_MEMORY_MB, TargetError, targetFromEnv, type Arch, type Board, type Target } from "./target.ts";

export const READY_RE = /paio: supervisor ready/;
const PANIC_RE = /Kernel panic|end Kernel panic|BUG: kernel NULL pointer/;

export class GuestError extends Error {
  constructor(message: string, readonly consoleTail: string[] = []) {
    super(message);
  }
}

/** A file could not be put into the guest: names both ends and says why. */
export class PutError extends Error {
  constructor(readonly hostFile: string, readonly guestPath: string, readonly reason: string) {
    super(`cannot put ${hostFile} at ${guestPath} in the guest: ${reason}`);
  }
}

/** Why a guest path cannot take a PUT, or undefined when it can. */
export function badGuestPath(path: string): string | undefined {
  if (!path.startsWith("/")) return "the guest path must be absolute (start with /)";
  if (/[\n\r\0]/.test(path)) return "the guest path holds a line break or a NUL";
  if (Buffer.byteLength(path) >= 4096) return "the guest path is too long";
  if (/\/(\.\.?)?$/.test(path)) return "the guest path names a directory, not a file";
  return undefined;
}

/** A host file's size, mode and SHA-256, read piece by piece (it may be hundreds of MB). */
export function putSource(file: string): PutSource {
  const st = statSync(file);
  if (!st.isFile()) throw new Error("not a regular file");
  const hash = createHash("sha256");
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return { file, size: st.size, mode: st.mode & 0o7777, sha256: hash.digest("hex") };
}

export interface GuestOptions {
  /** The directory with the architecture's built files for direct boot (vmlinuz, initrd.img, cmdline.txt): out/ or out/arm64/. */
  outDir: string;
  disk: string;
  /**
   * x86_64 or arm64; with board, what QEMU emulates. When the caller sets
   * neither, PAIO_TEST_ARCH and PAIO_TEST_BOARD decide (so the end-to-end
   * suite can run on arm64), else x86_64. A board implies its architecture.
   */
  arch?: Arch;
  /** pc (x86_64 q35), virt (arm64) or rpi3 (arm64 raspi3b: no network, exactly 1024 MB and 4 CPUs). */
  board?: Board;
  /** uefi: firmware and boot loader from the disk; direct: outDir's kernel. The Pi always boots what its SD card's config.txt names. */
  boot: "uefi" | "direct";
  snapshot: boolean;
  memoryMb?: number;
  /** 2 by default; the Pi has 4. */
  cpus?: number;
  accel?: Accel;
  /** QEMU's -cpu model; by default host under KVM, else max (x86_64), cortex-a72 (virt), cortex-a53 (Pi). */
  cpu?: string;
  /** UEFI variable store; a temporary copy when omitted. */
  varsFile?: string;
  /** Extra kernel command-line arguments (direct boot only). */
  append?: string[];
  /** Exit QEMU when the guest reboots. */
  noReboot?: boolean;
  /** Add an i6300esb hardware watchdog. */
  watchdog?: boolean;
  /** Hard limit for the whole QEMU run, seconds. */
  lifetimeS?: number;
  echo?: (line: string) => void;
  consoleLog?: string;
  /** Guest TCP ports (besides SSH's 22, always forwarded) reachable from the host: see hostPort(). */
  ports?: number[];
  /** Host services on 127.0.0.1 the guest reaches at an address of its user network (net.ts GuestForward). */
  guestForwards?: GuestForward[];
  /** The host port for the guest's SSH server; a free one when omitted. */
  sshPort?: number;
  /** The directory whose ssh/ holds the project's key for guests; outDir when omitted. */
  keyDir?: string;
}

const live = new Set<Guest>();
let hooksInstalled = false;
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", () => {
    for (const g of live) g.kill();
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      for (const g of live) g.kill();
      process.exit(130);
    });
  }
}

export class Guest {
  readonly console: ConsoleWatcher;
  private exitCode: number | null = null;
  private client: ExecClient | undefined;

  private constructor(
    private proc: Subprocess<"pipe", "pipe", "pipe">,
    private tmp: string,
    private execSocket: string,
    readonly accel: Accel,
    readonly target: Target,
    private opts: GuestOptions,
    private forwards: Forward[],
    private monitorSocket: string,
  ) {
    this.console = new ConsoleWatcher(proc.stdout, { echo: opts.echo, logFile: opts.consoleLog, keep: 60 });
    void proc.exited.then((code) => {
      this.exitCode = code;
      live.delete(this);
    });
  }

  /** The architecture and board a guest gets: the caller's, else PAIO_TEST_ARCH/PAIO_TEST_BOARD, else x86_64. */
  static targetFor(opts: Pick<GuestOptions, "arch" | "board">): Target {
    if (opts.arch || opts.board) {
      const env = targetFromEnv();
      // The environment's board still applies to a caller that named only the architecture.
      const envBoard = !opts.board && env.board && resolveTarget({ board: env.board }).arch === (opts.arch ?? "x86_64") ? env.board : undefined;
      return resolveTarget({ arch: opts.arch, board: opts.board ?? envBoard });
    }
    return resolveTarget(targetFromEnv());
  }

  static async start(opts: GuestOptions): Promise<Guest> {
    installHooks();
    const target = Guest.targetFor(opts);
    const rpi = target.board === "rpi3";
    const memoryMb = opts.memoryMb ?? 1024;
    const cpus = opts.cpus ?? (rpi ? RPI3_CPUS : 2);
    if (rpi) {
      if (memoryMb !== RPI3_MEMORY_MB) throw new TargetError(`the Raspberry Pi 3 has exactly ${RPI3_MEMORY_MB} MB of memory (QEMU's raspi3b takes no other size), not ${memoryMb}`);
      if (cpus !== RPI3_CPUS) throw new TargetError(`the Raspberry Pi 3 has exactly ${RPI3_CPUS} CPUs (QEMU's raspi3b takes no other count), not ${cpus}`);
      if (opts.ports?.length) throw new TargetError("the Raspberry Pi board has no network under QEMU: no guest port can be forwarded");
      if (opts.watchdog) throw new TargetError("the Raspberry Pi board has no PCI for an i6300esb watchdog (its SoC's own watchdog, bcm2835-wdt, is always there)");
      checkSdSize(opts.disk);
    }
    const info = detectImage(opts.disk);
    checkImageFor(info, target);
    const accel = opts.accel ?? (await chooseAccel(() => {}, target));
    const tmp = mkdtempSync(join(tmpdir(), "paio-qemu-"));
    try {
      const execSocket = join(tmp, "exec.sock");
      const monitorSocket = join(tmp, "monitor.sock");
      const forwards: Forward[] = rpi ? [] : [22, ...(opts.ports ?? [])].map((guestPort) => ({
        guestPort, hostPort: guestPort === 22 && opts.sshPort ? opts.sshPort : freePort(), proto: "tcp" as const,
      }));
      const machine: MachineOptions = {
        target,
        accel,
        cpuModel: opts.cpu,
        disk: opts.disk,
        boot: opts.boot,
        snapshot: opts.snapshot,
        memoryMb,
        cpus,
        execSocket,
        console: "pipe",
        noReboot: opts.noReboot ?? true,
        watchdog: opts.watchdog,
        forwards,
        guestForwards: rpi ? undefined : opts.guestForwards,
        sshKeyFile: rpi ? undefined : guestKey(opts.keyDir ?? opts.outDir).publicKey,
        monitorSocket,
      };
      if (rpi) {
        // What the Pi firmware would do: config.txt names the kernel, device tree, initramfs and command line.
        const files = rpiBootFiles(info, tmp);
        machine.boot = "direct";
        machine.kernel = files.kernel;
        machine.dtb = files.dtb;
        machine.initrd = files.initrd;
        machine.cmdline = [files.cmdline, "panic=-1", `paio.exec_port=${RPI_EXEC_TTY}`, ...RPI_QEMU_CMDLINE, ...(opts.append ?? [])].join(" ");
      } else {
        let varsFile = opts.varsFile;
        if (opts.boot === "uefi" && !varsFile) varsFile = join(tmp, FIRMWARE[target.arch].varsName);
        if (varsFile) ensureVars(varsFile, target.arch);
        machine.varsFile = varsFile;
        // Only direct boot takes a command line from here; under UEFI the image's own loader has it.
        if (opts.boot === "direct") {
          machine.kernel = join(opts.outDir, "vmlinuz");
          machine.initrd = join(opts.outDir, "initrd.img");
          machine.cmdline = [imageCmdline(opts.outDir), "panic=-1", ...(opts.append ?? [])].join(" ");
        }
      }
      const args = qemuArgs(machine);
      const lifetime = String(opts.lifetimeS ?? 1800);
      // stdin reaches the guest's serial console: what a person types there (type()).
      const proc = Bun.spawn(["timeout", "-k", "5", lifetime, ...args], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
      const guest = new Guest(proc, tmp, execSocket, accel, target, opts, forwards, monitorSocket);
      live.add(guest);
      void guest.collectStderr(proc.stderr);
      return guest;
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /** Types on the guest's serial console, as a person at the device would (send "\r" for Enter). */
  type(text: string): void {
    this.proc.stdin.write(text);
    this.proc.stdin.flush();
  }

  private stderrLines: string[] = [];
  private async collectStderr(stream: ReadableStream<Uint8Array>): Promise<void> {
    const text = await new Response(stream).text();
    // QEMU warns about every CPU feature TCG lacks for "-cpu max"; keep the rest.
    this.stderrLines = text.split("\n").filter((l) => l && !/warning: TCG doesn't support|host doesn't support requested feature/.test(l));
  }

  get exited(): boolean {
    return this.exitCode !== null;
  }

  private fail(message: string): never {
    const qemuErr = this.stderrLines.length ? [`qemu: ${this.stderrLines.slice(-5).join(" | ")}`] : [];
    throw new GuestError(message, [...this.console.lastLines(25), ...qemuErr]);
  }

  /** Waits for the supervisor's readiness line; fails on panic, QEMU exit or time-out. */
  async waitReady(timeoutMs: number): Promise<string> {
    let timer: Timer | undefined;
    const outcome = await Promise.race([
      this.console.waitFor(READY_RE).then((line) => ({ kind: "ready" as const, line })),
      this.console.waitFor(PANIC_RE).then((line) => ({ kind: "panic" as const, line })),
      this.proc.exited.then((code) => ({ kind: "exit" as const, line: String(code) })),
      new Promise<{ kind: "timeout"; line: string }>((resolve) => {
        timer = setTimeout(() => resolve({ kind: "timeout", line: "" }), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    switch (outcome.kind) {
      case "ready":
        return outcome.line;
      case "panic":
        this.kill();
        return this.fail(`the guest kernel panicked during boot: ${outcome.line.trim()}`);
      case "exit":
        await this.console.ended();
        return this.fail(`QEMU exited (status ${outcome.line}) before the supervisor was ready`);
      case "timeout":
        this.kill();
        return this.fail(`no 'paio: supervisor ready' within ${Math.round(timeoutMs / 1000)} s (${describeTarget(this.target)}, accelerator ${this.accel})`);
    }
  }

  /**
   * Asks PID 1 to reboot and returns at once with the console mark to give
   * waitNextReady(); QEMU keeps running (unless noReboot) and boots again.
   */
  async requestReboot(): Promise<number> {
    const mark = this.consoleMark();
    const client = await this.execClient(30_000);
    await client.power("REBOOT");
    return mark;
  }

  /** How many console lines the guest has printed so far: a mark for waitNextReady(). */
  consoleMark(): number {
    return this.console.lines().length;
  }

  /**
   * Waits for the supervisor of a later boot: its ready line after console line
   * `mark` (from consoleMark()). Kernel panics and reboots on the way are part
   * of what is being tested (an update that falls back), so they do not fail
   * it; QEMU exiting does. The exec connection of the earlier boot is dropped.
   * Resolves with the console lines printed since the mark.
   */
  async waitNextReady(mark: number, timeoutMs: number): Promise<string[]> {
    this.client?.close();
    this.client = undefined;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const since = this.console.lines().slice(mark);
      if (since.some((l) => READY_RE.test(l))) return since;
      if (this.exited) {
        await this.console.ended();
        return this.fail(`QEMU exited (status ${this.exitCode}) before the supervisor of the next boot was ready`);
      }
      await Bun.sleep(250);
    }
    this.kill();
    return this.fail(`no 'paio: supervisor ready' of a later boot within ${Math.round(timeoutMs / 1000)} s (${describeTarget(this.target)}, accelerator ${this.accel})`);
  }

  private async execClient(timeoutMs: number): Promise<ExecClient> {
    if (this.client) return this.client;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exited) this.fail("QEMU exited before the exec port answered");
      try {
        const client = await ExecClient.connect(this.execSocket);
        if (await client.handshake(Math.min(5000, deadline - Date.now()))) {
          this.client = client;
          return client;
        }
        client.close();
      } catch {
        // QEMU has not created the socket yet
      }
      await Bun.sleep(200);
    }
    return this.fail(`the guest's exec helper (unit qemu-exec) did not answer within ${Math.round(timeoutMs / 1000)} s`);
  }

  /** Runs a /bin/sh script in the guest as root; resolves with its exit code. */
  async exec(script: string | Uint8Array, onOutput: (data: Uint8Array) => void, timeoutMs = 600_000): Promise<number> {
    const client = await this.execClient(60_000);
    const bytes = typeof script === "string" ? new TextEncoder().encode(script) : script;
    const code = await client.run(bytes, onOutput, timeoutMs);
    if (code === undefined) {
      // The connection may have closed because QEMU is on its way out: give it a moment to say so.
      const qemuCode = this.exited ? this.exitCode : await this.exitWithin(1000);
      if (qemuCode !== null) return this.fail(`QEMU exited (status ${qemuCode}) while the script ran`);
      client.kill();
      return this.fail(`the script did not finish within ${Math.round(timeoutMs / 1000)} s`);
    }
    return code;
  }

  /**
   * Copies a host file into the guest at guestPath (absolute; missing
   * directories are made), with its mode, before scripts need it. Any size
   * the guest's file system holds: it is read and sent piece by piece. It
   * appears at guestPath whole or not at all (the guest renames a temporary
   * file once the SHA-256 matches). Throws PutError when the guest refuses.
   */
  async put(hostFile: string, guestPath: string, onProgress?: (sent: number, total: number) => void): Promise<{ sha256: string; size: number }> {
    const bad = badGuestPath(guestPath);
    if (bad) throw new PutError(hostFile, guestPath, bad);
    let src: PutSource;
    try {
      src = putSource(hostFile);
    } catch (e) {
      throw new PutError(hostFile, guestPath, `cannot read it on the host: ${(e as Error).message}`);
    }
    const client = await this.execClient(60_000);
    if (client.version < PUT_VERSION) {
      throw new PutError(hostFile, guestPath, `the image's exec helper speaks protocol ${client.version}, from before file transfers (PUT, protocol ${PUT_VERSION}): rebuild the image ('make image')`);
    }
    const result = await client.put(src, guestPath, onProgress);
    if (!result) {
      const qemuCode = this.exited ? this.exitCode : await this.exitWithin(1000);
      if (qemuCode !== null) return this.fail(`QEMU exited (status ${qemuCode}) while ${hostFile} was copied into the guest`);
      return this.fail(`the guest stopped taking ${hostFile} (for ${guestPath}): nothing asked for in 300 s`);
    }
    if (!result.ok) {
      const reason = result.reason.startsWith(`${guestPath}: `) ? result.reason.slice(guestPath.length + 2) : result.reason;
      throw new PutError(hostFile, guestPath, result.changed ? `it changed on the host while it was sent (${reason})` : reason);
    }
    return { sha256: result.sha256, size: src.size };
  }

  /** Runs a script and returns its output as text. */
  async sh(script: string, timeoutMs?: number): Promise<{ code: number; output: string }> {
    const chunks: Uint8Array[] = [];
    const code = await this.exec(script, (d) => chunks.push(d), timeoutMs);
    return { code, output: Buffer.concat(chunks).toString("utf8") };
  }

  /** Resolves with QEMU's exit status when it exits by itself, or null after timeoutMs. */
  async exitWithin(timeoutMs: number): Promise<number | null> {
    let timer: Timer | undefined;
    const code = await Promise.race([
      this.proc.exited,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (code !== null) await this.console.ended();
    return code;
  }

  /**
   * Asks PID 1 to power off (or reboot: with noReboot QEMU then exits) and
   * waits for QEMU to exit. Resolves with QEMU's exit status.
   */
  async shutdown(how: "POWEROFF" | "REBOOT" = "POWEROFF", timeoutMs = 90_000): Promise<number> {
    if (!this.exited) {
      const client = await this.execClient(30_000);
      await client.power(how);
    }
    const code = await this.exitWithin(timeoutMs);
    this.cleanup();
    if (code === null) {
      this.kill();
      return this.fail(`the guest did not power off within ${Math.round(timeoutMs / 1000)} s`);
    }
    return code;
  }

  /** The host port on 127.0.0.1 that reaches a forwarded guest port. */
  hostPort(guestPort: number): number {
    if (this.target.board === "rpi3") throw new Error(`the Raspberry Pi board has no network under QEMU: guest port ${guestPort} cannot be reached from the host (use exec)`);
    const f = this.forwards.find((x) => x.guestPort === guestPort);
    if (!f) throw new Error(`guest port ${guestPort} is not forwarded; pass it in GuestOptions.ports`);
    return f.hostPort;
  }

  /** Runs a command in the guest over SSH with the project's key (the guest's ssh unit must be up). */
  ssh(command: string[], extraOptions: string[] = [], timeoutMs = 60_000): { code: number; output: string } {
    const argv = sshArgv(this.opts.keyDir ?? this.opts.outDir, this.hostPort(22), command);
    argv.splice(1, 0, ...extraOptions);
    const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
    return { code: r.exitCode ?? -1, output: r.stdout.toString() + r.stderr.toString() };
  }

  /** One command to QEMU's human monitor (e.g. "set_link net0 off"); resolves with its answer. */
  async monitor(command: string): Promise<string> {
    let text = "";
    let done: () => void = () => {};
    const finished = new Promise<void>((r) => (done = r));
    const sock = await Bun.connect({
      unix: this.monitorSocket,
      socket: {
        data(_s, chunk) {
          text += Buffer.from(chunk).toString("utf8");
          // The monitor prints a prompt after its banner and after each answer.
          if ((text.match(/\(qemu\) /g) ?? []).length >= 2) done();
        },
        close() {
          done();
        },
      },
    });
    sock.write(`${command}\n`);
    await Promise.race([finished, Bun.sleep(10_000)]);
    sock.end();
    return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
  }

  /** Kills QEMU at once (no clean shutdown). */
  kill(): void {
    if (this.exitCode === null) {
      // `timeout` leads its own process group with QEMU in it: kill both.
      try {
        process.kill(-this.proc.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    this.cleanup();
  }

  private cleanup(): void {
    this.client?.close();
    this.client = undefined;
    live.delete(this);
    rmSync(this.tmp, { recursive: true, force: true });
  }
}


// Which accelerator QEMU may use. KVM is used only after a probe shows that a
// guest really runs under it: on some hosts /dev/kvm exists but a guest hangs.
// x86_64: the probe boots a 512-byte boot sector that writes to QEMU's
// debug-exit port; a working accelerator makes QEMU exit with code 99 well
// within a second. It uses the machine, CPU model and CPU count of a real PAIO
// guest: on some hosts a bare "-M pc" guest runs under KVM while q35 with
// "-cpu host" aborts at start ("failed to set MSR ...").
// arm64: on an arm64 host the probe is forty bytes of code run as virt's
// firmware under "-cpu host": it prints "PK" on the PL011 and powers off
// through PSCI, so QEMU exits 0 with that on its serial line.
// KVM runs only guests of the host's own architecture: an arm64 guest on an
// x86_64 host (and the reverse) is always TCG, and so is the Raspberry Pi
// board, which QEMU emulates only under TCG.
// The answer is cached per host boot (it cannot change before a reboot) and
// per guest architecture.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { resolveTarget, type Arch, type Target } from "./target.ts";

export type Accel = "kvm" | "tcg";

const PROBE_TIMEOUT_S = 3;

function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "unknown";
  }
}

function probeSector(): Uint8Array {
  // mov al,0x31; out 0xf4,al; hlt; jmp $-1   -> QEMU exits with (0x31 << 1) | 1 = 99
  const code = [0xb0, 0x31, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd];
  const sector = new Uint8Array(512);
  sector.set(code);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

// movz x1,#0x0900,lsl #16; mov w2,#'P'; strb w2,[x1]; mov w2,#'K'; strb w2,[x1];
// movz w0,#8; movk w0,#0x8400,lsl #16 (PSCI SYSTEM_OFF); hvc #0; 1: wfi; b 1b
const ARM64_PROBE = [0xd2a12001, 0x52800a02, 0x39000022, 0x52800962, 0x39000022, 0x52800100, 0x72b08000, 0xd4000002, 0xd503207f, 0x17ffffff];

function probeFirmware(): Uint8Array {
  const code = new Uint8Array(ARM64_PROBE.length * 4);
  const view = new DataView(code.buffer);
  ARM64_PROBE.forEach((word, i) => view.setUint32(i * 4, word, true));
  return code;
}

/** The host's architecture in the guests' terms. */
export function hostArch(): Arch | "other" {
  return process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "arm64" : "other";
}

async function runProbe(argv: string[], file: string, bytes: Uint8Array, passed: (code: number, stdout: string) => boolean): Promise<{ ok: boolean; why: string }> {
  writeFileSync(file, bytes);
  const proc = Bun.spawn(["timeout", "-k", "1", String(PROBE_TIMEOUT_S), ...argv], { stdout: "pipe", stderr: "pipe" });
  const code = await proc.exited;
  const stdout = await new Response(proc.stdout).text();
  const err = (await new Response(proc.stderr).text()).trim().split("\n").filter((l) => !l.includes("warning")).pop() ?? "";
  Bun.spawnSync(["rm", "-f", file]);
  if (passed(code, stdout)) return { ok: true, why: "probe guest ran" };
  if (code === 124 || code === 137) return { ok: false, why: `probe guest hung for ${PROBE_TIMEOUT_S} s` };
  return { ok: false, why: `probe failed (exit ${code}${err ? `: ${err}` : ""})` };
}

async function probeKvmNow(arch: Arch): Promise<{ ok: boolean; why: string }> {
  if (!existsSync("/dev/kvm")) return { ok: false, why: "no /dev/kvm" };
  const file = join(tmpdir(), `paio-kvm-probe-${process.pid}.img`);
  if (arch === "x86_64") {
    return runProbe(
      [
        "qemu-system-x86_64", "-accel", "kvm", "-M", "q35", "-cpu", "host", "-smp", "2", "-nodefaults",
        "-display", "none", "-m", "64", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-drive", `file=${file},format=raw,if=ide`,
      ],
      file, probeSector(), (code) => code === 99,
    );
  }
  return runProbe(
    [
      "qemu-system-aarch64", "-accel", "kvm", "-M", "virt,gic-version=max", "-cpu", "host", "-smp", "2", "-nodefaults",
      "-display", "none", "-m", "64", "-serial", "stdio", "-bios", file,
    ],
    file, probeFirmware(), (code, out) => code === 0 && out.includes("PK"),
  );
}

/** Why a guest cannot use KVM here whatever a probe says; undefined when a probe decides. */
export function kvmImpossible(t: Target, host: Arch | "other" = hostArch()): string | undefined {
  if (t.board === "rpi3") return "QEMU emulates the Raspberry Pi board only under TCG";
  if (host !== t.arch) return `KVM runs only guests of the host's own architecture: ${t.arch} guests on this ${host === "other" ? process.arch : host} host use TCG`;
  return undefined;
}

/**
 * KVM if a probe guest runs under it, else TCG. PAIO_ACCEL=kvm|tcg forces a
 * choice. The target defaults to x86_64 (q35); log hears the reason whenever
 * the answer is not a cached one.
 */
export async function chooseAccel(log: (msg: string) => void = () => {}, target: Partial<Target> = {}): Promise<Accel> {
  const forced = process.env.PAIO_ACCEL;
  if (forced === "kvm" || forced === "tcg") return forced;
  const t = resolveTarget(target);
  const impossible = kvmImpossible(t);
  if (impossible) {
    log(`accelerator: tcg (${impossible})`);
    return "tcg";
  }
  const cacheDir = join(process.env.PAIO_CACHE ?? join(homedir(), ".cache", "paio"));
  // Versioned: an answer from an older, weaker probe is not reused.
  const cacheFile = join(cacheDir, t.arch === "x86_64" ? "kvm-probe-q35" : "kvm-probe-arm64-virt");
  const id = bootId();
  try {
    const [cachedId, verdict] = readFileSync(cacheFile, "utf8").trim().split(" ");
    if (cachedId === id && (verdict === "kvm" || verdict === "tcg")) return verdict;
  } catch {
    // no cached answer yet
  }
  const { ok, why } = await probeKvmNow(t.arch);
  const accel: Accel = ok ? "kvm" : "tcg";
  log(`accelerator: ${accel} (${why})`);
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(cacheFile, `${id} ${accel} ${why}\n`);
  return accel;
}

// Which accelerator QEMU may use. KVM is used only after a probe shows that a
// guest really runs under it: on some hosts /dev/kvm exists but a guest hangs.
// The probe boots a 512-byte boot sector that writes to QEMU's debug-exit port;
// a working accelerator makes QEMU exit with code 99 well within a second. It
// uses the machine, CPU model and CPU count of a real PAIO guest: on some
// hosts a bare "-M pc" guest runs under KVM while q35 with "-cpu host" aborts
// at start ("failed to set MSR ...").
// The answer is cached per host boot (it cannot change before a reboot).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

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

async function probeKvmNow(): Promise<{ ok: boolean; why: string }> {
  if (!existsSync("/dev/kvm")) return { ok: false, why: "no /dev/kvm" };
  const img = join(tmpdir(), `paio-kvm-probe-${process.pid}.img`);
  writeFileSync(img, probeSector());
  const proc = Bun.spawn(
    [
      "timeout", "-k", "1", String(PROBE_TIMEOUT_S), "qemu-system-x86_64", "-accel", "kvm", "-M", "q35", "-cpu", "host", "-smp", "2", "-nodefaults",
      "-display", "none", "-m", "64", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
      "-drive", `file=${img},format=raw,if=ide`,
    ],
    { stdout: "ignore", stderr: "pipe" },
  );
  const code = await proc.exited;
  const err = (await new Response(proc.stderr).text()).trim().split("\n").filter((l) => !l.includes("warning")).pop() ?? "";
  Bun.spawnSync(["rm", "-f", img]);
  if (code === 99) return { ok: true, why: "probe guest ran" };
  if (code === 124 || code === 137) return { ok: false, why: `probe guest hung for ${PROBE_TIMEOUT_S} s` };
  return { ok: false, why: `probe failed (exit ${code}${err ? `: ${err}` : ""})` };
}

/** KVM if a probe guest runs under it, else TCG. PAIO_ACCEL=kvm|tcg forces a choice. */
export async function chooseAccel(log: (msg: string) => void = () => {}): Promise<Accel> {
  const forced = process.env.PAIO_ACCEL;
  if (forced === "kvm" || forced === "tcg") return forced;
  const cacheDir = join(process.env.PAIO_CACHE ?? join(homedir(), ".cache", "paio"));
  // Versioned: an answer from an older, weaker probe is not reused.
  const cacheFile = join(cacheDir, "kvm-probe-q35");
  const id = bootId();
  try {
    const [cachedId, verdict] = readFileSync(cacheFile, "utf8").trim().split(" ");
    if (cachedId === id && (verdict === "kvm" || verdict === "tcg")) return verdict;
  } catch {
    // no cached answer yet
  }
  const { ok, why } = await probeKvmNow();
  const accel: Accel = ok ? "kvm" : "tcg";
  log(`accelerator: ${accel} (${why})`);
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(cacheFile, `${id} ${accel} ${why}\n`);
  return accel;
}

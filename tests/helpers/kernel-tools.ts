// The small C programs the kernel tests and the kernel benchmark run in the
// guest (tests/kernel/tools/): compiled static for the guest's architecture
// on the host, then copied into the guest's /tmp.
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Guest } from "../../qemu/guest.ts";

const TOOLS = fileURLToPath(new URL("../kernel/tools/", import.meta.url));
export const KERNEL_TOOLS = ["latency-nice", "wake-probe"] as const;

/** Compiles every tool for `arch` into a fresh folder; throws with the compiler's output. */
export function buildKernelTools(arch: "x86_64" | "arm64" = "x86_64"): string {
  const dir = mkdtempSync(join(tmpdir(), "paio-ktools-"));
  mkdirSync(dir, { recursive: true });
  const cc = arch === "arm64" ? "aarch64-linux-gnu-gcc" : "gcc";
  for (const t of KERNEL_TOOLS) {
    const r = Bun.spawnSync([cc, "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", join(dir, t), join(TOOLS, `${t}.c`)], { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`compiling tests/kernel/tools/${t}.c with ${cc} failed (run 'make deps'):\n${r.stderr}`);
  }
  return dir;
}

/** Copies the tools built in `dir` to /tmp/<tool> in the guest, executable. */
export async function putKernelTools(g: Guest, dir: string): Promise<void> {
  for (const t of KERNEL_TOOLS) await g.put(join(dir, t), `/tmp/${t}`);
  const r = await g.sh(`chmod 755 ${KERNEL_TOOLS.map((t) => `/tmp/${t}`).join(" ")}`);
  if (r.code !== 0) throw new Error(`chmod of the kernel tools in the guest failed: ${r.output}`);
}

#!/usr/bin/env bun
// `make bench`: boot time, image sizes and the supervisor's and agent's
// memory, from one run. Boot times are measured side by side with a baseline
// image made from the same kernel and initramfs with busybox init alone,
// alternating the two so that machine noise hits both alike. Figures are the
// guest's own uptime. `--arch arm64` measures the arm64 image on QEMU virt
// (Cortex-A72) the same way, and also sizes the Raspberry Pi image.

import { fileURLToPath } from "node:url";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync, symlinkSync, readdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Guest } from "../../qemu/guest.ts";
import { chooseAccel } from "../../qemu/accel.ts";
import { PRELUDE } from "../helpers/guest.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const ARCH = process.argv.includes("--arch") ? process.argv[process.argv.indexOf("--arch") + 1] : "x86_64";
if (ARCH !== "x86_64" && ARCH !== "arm64") throw new Error(`--arch ${ARCH}: the architectures are x86_64 and arm64`);
const OUT = ARCH === "arm64" ? join(REPO, "out", "arm64") : join(REPO, "out");
const IMAGE = join(OUT, ARCH === "arm64" ? "paio-arm64.img" : "paio-x86_64.img");
/** Every disk image of the architecture, for the sizes. */
const IMAGES = ARCH === "arm64" ? [IMAGE, join(OUT, "paio-rpi.img")] : [IMAGE];
const DEB_ARCH = ARCH === "arm64" ? "arm64" : "amd64";
const ROUNDS = Number(process.env.PAIO_BENCH_ROUNDS ?? 3);
const CACHE = process.env.PAIO_CACHE ?? join(process.env.HOME ?? "/root", ".cache", "paio");

function busyboxFromCache(): string {
  const debs = join(CACHE, "debs");
  const dir = readdirSync(debs).filter((d) => d.startsWith("busybox-static_") && d.endsWith(`_${DEB_ARCH}`)).sort().at(-1);
  if (!dir) throw new Error(`no unpacked busybox-static in ${debs}; run 'make image' first`);
  return join(debs, dir, "bin/busybox");
}

/** A squashfs root with busybox as init, which prints its uptime and powers off. */
function buildBaseline(dir: string): string {
  const root = join(dir, "root");
  for (const d of ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp"]) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, "bin/busybox"), readFileSync(busyboxFromCache()), { mode: 0o755 });
  for (const a of ["sh", "cat", "mount", "poweroff", "echo"]) symlinkSync("busybox", join(root, "bin", a));
  symlinkSync("../bin/busybox", join(root, "sbin/init"));
  writeFileSync(
    join(root, "etc/inittab"),
    "::sysinit:/bin/mount -t proc proc /proc\n" +
      "::sysinit:/bin/sh -c 'read up idle < /proc/uptime; echo \"baseline: init ready at uptime $up s\" > /dev/console'\n" +
      "::sysinit:/bin/poweroff -f\n",
  );
  const img = join(dir, "baseline.squashfs");
  const r = Bun.spawnSync(["mksquashfs", root, img, "-noappend", "-no-progress", "-quiet", "-comp", "zstd", "-all-root"], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`mksquashfs: ${r.stderr}`);
  return img;
}

async function bootBaseline(img: string, accel: "kvm" | "tcg"): Promise<number> {
  const cmdline = readFileSync(join(OUT, "cmdline.txt"), "utf8").trim().replace(/root=\S+/, "root=/dev/vda");
  // The same machine the PAIO guest gets (qemu/machine.ts), without PAIO's devices.
  const machine = ARCH === "arm64"
    ? ["qemu-system-aarch64", "-machine", `virt,accel=${accel}`, "-cpu", accel === "kvm" ? "host" : "cortex-a72",
      "-drive", `file=${img},format=raw,if=none,id=root,readonly=on`, "-device", "virtio-blk-pci,drive=root"]
    : ["qemu-system-x86_64", "-machine", `q35,accel=${accel}`, "-cpu", accel === "kvm" ? "host" : "max", "-vga", "none",
      "-drive", `file=${img},format=raw,if=virtio,readonly=on`];
  const args = [
    ...machine, "-nodefaults", "-smp", "2", "-m", "1024", "-display", "none", "-serial", "stdio", "-no-reboot",
    "-kernel", join(OUT, "vmlinuz"), "-initrd", join(OUT, "initrd.img"), "-append", `${cmdline} panic=-1`,
  ];
  const proc = Bun.spawn(["timeout", "300", ...args], { stdout: "pipe", stderr: "ignore", stdin: "ignore" });
  const text = await new Response(proc.stdout).text();
  await proc.exited;
  const m = text.match(/baseline: init ready at uptime ([\d.]+) s/);
  if (!m) throw new Error(`baseline boot printed no uptime:\n${text.slice(-2000)}`);
  return Number(m[1]);
}

async function bootPaio(): Promise<{ pid1: number; ready: number; rssKb?: number; agentKb?: number }> {
  const guest = await Guest.start({ outDir: OUT, disk: IMAGE, arch: ARCH as "x86_64" | "arm64", boot: "direct", snapshot: true });
  try {
    const ready = await guest.waitReady(600_000);
    const pid1Line = guest.console.lines().find((l) => l.includes("paio-init: started at uptime")) ?? "";
    const pid1 = Number(pid1Line.match(/uptime ([\d.]+)/)?.[1]);
    const readyAt = Number(ready.match(/uptime ([\d.]+)/)?.[1]);
    // Idle: let start-up settle (the agent loads its models), then read resident memory.
    const { output } = await guest.sh(PRELUDE + `
      for i in $(seq 1 120); do [ -n "$(pgrep /usr/lib/paio/agent.js)" ] && break; sleep 1; done
      sleep 15
      echo "supervisor $(grep VmRSS /proc/$(pgrep /usr/lib/paio/supervisor.js)/status)"
      echo "agent $(grep VmRSS /proc/$(pgrep /usr/lib/paio/agent.js)/status)"`);
    const rssKb = Number(output.match(/supervisor VmRSS:\s*(\d+)\s*kB/)?.[1]);
    const agentKb = Number(output.match(/agent VmRSS:\s*(\d+)\s*kB/)?.[1]);
    await guest.shutdown();
    return { pid1, ready: readyAt, rssKb, agentKb };
  } finally {
    guest.kill();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}

function xzSize(path: string): number {
  const r = Bun.spawnSync(["sh", "-c", `xz -T2 -6 -c "${path}" | wc -c`], { stdout: "pipe" });
  return Number(r.stdout.toString().trim());
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

async function main(): Promise<void> {
  if (!existsSync(IMAGE)) throw new Error(`${IMAGE} is missing; run 'make image${ARCH === "arm64" ? " ARCH=arm64" : ""}'`);
  const accel = await chooseAccel();
  const dir = mkdtempSync(join(tmpdir(), "paio-bench-"));
  try {
    const baselineImg = buildBaseline(dir);
    const base: number[] = [];
    const pid1: number[] = [];
    const ready: number[] = [];
    const rss: number[] = [];
    const agentRss: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      process.stderr.write(`bench: round ${i + 1}/${ROUNDS}\n`);
      base.push(await bootBaseline(baselineImg, accel));
      const p = await bootPaio();
      pid1.push(p.pid1);
      ready.push(p.ready);
      if (p.rssKb) rss.push(p.rssKb);
      if (p.agentKb) agentRss.push(p.agentKb);
    }
    const machine = ARCH === "arm64" ? "arm64, QEMU virt, Cortex-A72" : "x86_64, QEMU q35";
    console.log(`PAIO boot benchmark (${machine}, ${accel.toUpperCase()}, ${ROUNDS} rounds, direct kernel boot, guest uptime; median [min-max])`);
    const row = (label: string, xs: number[]) =>
      console.log(`  ${label.padEnd(44)} ${median(xs).toFixed(2)} s  [${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}]`);
    row("baseline: busybox init runs its first action", base);
    row("paio: PID 1 starts", pid1);
    row("paio: 'paio: supervisor ready'", ready);
    console.log(`  ${"supervisor ready minus baseline init".padEnd(44)} ${(median(ready) - median(base)).toFixed(2)} s`);
    console.log("Image sizes");
    for (const img of IMAGES) {
      const name = img.split("/").pop()!;
      console.log(`  ${`${name} (raw, apparent)`.padEnd(44)} ${mib(statSync(img).size)}`);
      console.log(`  ${`${name} (allocated, sparse)`.padEnd(44)} ${mib(allocatedBytes(img))}`);
      console.log(`  ${`${name} (xz -6)`.padEnd(44)} ${mib(xzSize(img))}`);
    }
    console.log(`  ${"rootfs.squashfs".padEnd(44)} ${mib(statSync(join(OUT, "rootfs.squashfs")).size)}`);
    console.log(`  ${"initrd.img".padEnd(44)} ${mib(statSync(join(OUT, "initrd.img")).size)}`);
    console.log("Memory");
    console.log(`  ${"supervisor resident memory at idle (VmRSS)".padEnd(44)} ${rss.length ? `${(median(rss) / 1024).toFixed(1)} MiB` : "n/a"}`);
    console.log(`  ${"agent resident memory at idle (VmRSS)".padEnd(44)} ${agentRss.length ? `${(median(agentRss) / 1024).toFixed(1)} MiB` : "n/a"}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

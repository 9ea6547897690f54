#!/usr/bin/env bun
// `make bench`: boot time, image sizes and the supervisor's memory, from one
// run. Boot times are measured side by side with a baseline image made from
// the same kernel and initramfs with busybox init alone, alternating the two
// so that machine noise hits both alike. Figures are the guest's own uptime.

import { fileURLToPath } from "node:url";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync, symlinkSync, readdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Guest } from "../../qemu/guest.ts";
import { chooseAccel } from "../../qemu/accel.ts";
import { PRELUDE } from "../helpers/guest.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const OUT = join(REPO, "out");
const ROUNDS = Number(process.env.PAIO_BENCH_ROUNDS ?? 3);
const CACHE = process.env.PAIO_CACHE ?? join(process.env.HOME ?? "/root", ".cache", "paio");

function busyboxFromCache(): string {
  const debs = join(CACHE, "debs");
  const dir = readdirSync(debs).filter((d) => d.startsWith("busybox-static_") && !d.endsWith(".deb")).sort().at(-1);
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
  const args = [
    "qemu-system-x86_64", "-nodefaults", "-machine", `q35,accel=${accel}`, "-cpu", accel === "kvm" ? "host" : "max",
    "-smp", "2", "-m", "1024", "-display", "none", "-vga", "none", "-serial", "stdio", "-no-reboot",
    "-drive", `file=${img},format=raw,if=virtio,readonly=on`,
    "-kernel", join(OUT, "vmlinuz"), "-initrd", join(OUT, "initrd.img"), "-append", `${cmdline} panic=-1`,
  ];
  const proc = Bun.spawn(["timeout", "120", ...args], { stdout: "pipe", stderr: "ignore", stdin: "ignore" });
  const text = await new Response(proc.stdout).text();
  await proc.exited;
  const m = text.match(/baseline: init ready at uptime ([\d.]+) s/);
  if (!m) throw new Error(`baseline boot printed no uptime:\n${text.slice(-2000)}`);
  return Number(m[1]);
}

async function bootPaio(): Promise<{ pid1: number; ready: number; rssKb?: number }> {
  const guest = await Guest.start({ outDir: OUT, disk: join(OUT, "paio-x86_64.img"), boot: "direct", snapshot: true });
  try {
    const ready = await guest.waitReady(300_000);
    const pid1Line = guest.console.lines().find((l) => l.includes("paio-init: started at uptime")) ?? "";
    const pid1 = Number(pid1Line.match(/uptime ([\d.]+)/)?.[1]);
    const readyAt = Number(ready.match(/uptime ([\d.]+)/)?.[1]);
    // Idle: let start-up settle, then read the supervisor's resident memory.
    const { output } = await guest.sh(PRELUDE + "sleep 5; grep VmRSS /proc/$(pgrep /usr/lib/paio/supervisor.js)/status");
    const rssKb = Number(output.match(/(\d+)\s*kB/)?.[1]);
    await guest.shutdown();
    return { pid1, ready: readyAt, rssKb };
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
  if (!existsSync(join(OUT, "paio-x86_64.img"))) throw new Error("out/paio-x86_64.img is missing; run 'make image'");
  const accel = await chooseAccel();
  const dir = mkdtempSync(join(tmpdir(), "paio-bench-"));
  try {
    const baselineImg = buildBaseline(dir);
    const base: number[] = [];
    const pid1: number[] = [];
    const ready: number[] = [];
    const rss: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      process.stderr.write(`bench: round ${i + 1}/${ROUNDS}\n`);
      base.push(await bootBaseline(baselineImg, accel));
      const p = await bootPaio();
      pid1.push(p.pid1);
      ready.push(p.ready);
      if (p.rssKb) rss.push(p.rssKb);
    }
    const img = join(OUT, "paio-x86_64.img");
    console.log(`PAIO boot benchmark (${accel.toUpperCase()}, ${ROUNDS} rounds, direct kernel boot, guest uptime; median [min-max])`);
    const row = (label: string, xs: number[]) =>
      console.log(`  ${label.padEnd(44)} ${median(xs).toFixed(2)} s  [${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}]`);
    row("baseline: busybox init runs its first action", base);
    row("paio: PID 1 starts", pid1);
    row("paio: 'paio: supervisor ready'", ready);
    console.log(`  ${"supervisor ready minus baseline init".padEnd(44)} ${(median(ready) - median(base)).toFixed(2)} s`);
    console.log("Image sizes");
    console.log(`  ${"paio-x86_64.img (raw, apparent)".padEnd(44)} ${mib(statSync(img).size)}`);
    console.log(`  ${"paio-x86_64.img (allocated, sparse)".padEnd(44)} ${mib(allocatedBytes(img))}`);
    console.log(`  ${"paio-x86_64.img (xz -6)".padEnd(44)} ${mib(xzSize(img))}`);
    console.log(`  ${"rootfs.squashfs".padEnd(44)} ${mib(statSync(join(OUT, "rootfs.squashfs")).size)}`);
    console.log(`  ${"initrd.img".padEnd(44)} ${mib(statSync(join(OUT, "initrd.img")).size)}`);
    console.log("Memory");
    console.log(`  ${"supervisor resident memory at idle (VmRSS)".padEnd(44)} ${rss.length ? `${(median(rss) / 1024).toFixed(1)} MiB` : "n/a"}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

#!/usr/bin/env bun
// `make kernel`: Debian's linux-source-6.1 with PAIO's patches, configured
// from tinyconfig plus kernel-patches/paio.config, built for QEMU and UEFI
// PCs with everything built in. The result is cached outside the clone,
// keyed by a hash of its inputs (source version, patches, fragment, this
// script), so it is rebuilt only when one of them changes:
//
//   ~/.cache/paio/kernel/<hash>/{vmlinuz, config, release, build.log}
//
// and out/kernel points at it (what `make image` passes as PAIO_KERNEL).

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, copyFileSync, lstatSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkFragment, parseFragment } from "./fragment.ts";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const PATCHES = join(REPO, "kernel-patches");
const CACHE = join(process.env.PAIO_CACHE ?? join(homedir(), ".cache", "paio"), "kernel");
const TARBALL = process.env.PAIO_LINUX_SOURCE ?? "/usr/src/linux-source-6.1.tar.xz";
const JOBS = process.env.PAIO_KERNEL_JOBS ?? "2";
const t0 = performance.now();

function say(line: string): void {
  console.log(`kernel ${line}`);
}

function fail(msg: string): never {
  console.error(`kernel: error: ${msg}`);
  process.exit(1);
}

function elapsed(): string {
  return `${((performance.now() - t0) / 1000).toFixed(0)} s`;
}

function run(cmd: string[], cwd: string, what: string): string {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString() + r.stderr.toString();
  if (r.exitCode !== 0) fail(`${what} failed (${cmd.join(" ")}):\n${out.split("\n").slice(-30).join("\n")}`);
  return out;
}

export function patchFiles(): string[] {
  return readdirSync(PATCHES).filter((f) => /^\d{4}-.*\.patch$/.test(f)).sort();
}

function sourceVersion(): string {
  const r = Bun.spawnSync(["dpkg-query", "-W", "-f=${Version}", "linux-source-6.1"], { stdout: "pipe", stderr: "pipe" });
  return r.exitCode === 0 ? r.stdout.toString().trim() : "unknown";
}

function inputsHash(): string {
  const h = createHash("sha256");
  h.update(`source ${sourceVersion()}\n`);
  for (const f of [...patchFiles(), "paio.config", "build.ts", "fragment.ts"]) h.update(`${f}\0`).update(readFileSync(join(PATCHES, f)));
  return h.digest("hex").slice(0, 16);
}

function link(target: string): void {
  const out = join(REPO, "out");
  mkdirSync(out, { recursive: true });
  const l = join(out, "kernel");
  if (existsSync(l) || (() => { try { return lstatSync(l).isSymbolicLink(); } catch { return false; } })()) rmSync(l, { recursive: true, force: true });
  symlinkSync(target, l);
}

async function main(): Promise<void> {
  if (!existsSync(TARBALL)) fail(`${TARBALL} is missing: run 'make deps' (it installs Debian's linux-source-6.1), or set PAIO_LINUX_SOURCE to the tarball`);
  const hash = inputsHash();
  const dest = join(CACHE, hash);
  if (existsSync(join(dest, "vmlinuz"))) {
    link(dest);
    say(`up to date: ${readFileSync(join(dest, "release"), "utf8").trim()} (cache ${hash}); out/kernel -> ~/.cache/paio/kernel/${hash}`);
    return;
  }
  const tree = join(CACHE, `build-${hash}`);
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  say(`[1/5] unpacking ${TARBALL} (${sourceVersion()})`);
  run(["tar", "-xf", TARBALL, "-C", tree, "--strip-components=1"], tree, "unpacking the source");
  say(`[2/5] applying ${patchFiles().length} patches (${elapsed()})`);
  for (const p of patchFiles()) {
    run(["patch", "-p1", "--forward", "--batch", "-i", join(PATCHES, p)], tree, `applying ${p}`);
    say(`      ${p}`);
  }
  say(`[3/5] configuring: tinyconfig + kernel-patches/paio.config (${elapsed()})`);
  run(["make", "tinyconfig"], tree, "make tinyconfig");
  run(["scripts/kconfig/merge_config.sh", "-m", ".config", join(PATCHES, "paio.config")], tree, "merging the fragment");
  run(["make", "olddefconfig"], tree, "make olddefconfig");
  const missing = checkFragment(parseFragment(readFileSync(join(PATCHES, "paio.config"), "utf8")), readFileSync(join(tree, ".config"), "utf8"));
  if (missing.length) fail(`options of kernel-patches/paio.config that did not land in the final .config (a dependency is missing):\n  ${missing.join("\n  ")}`);
  say(`      every option of paio.config is in .config`);
  say(`[4/5] building bzImage with -j${JOBS} (${elapsed()})`);
  const logLines: string[] = [];
  const proc = Bun.spawn(["make", `-j${JOBS}`, "bzImage"], { cwd: tree, stdout: "pipe", stderr: "pipe" });
  let objects = 0;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    let partial = "";
    for await (const chunk of stream) {
      const parts = (partial + dec.decode(chunk)).split("\n");
      partial = parts.pop()!;
      for (const l of parts) {
        logLines.push(l);
        if (/^\s+CC\s/.test(l) && ++objects % 100 === 0) say(`      ${objects} files compiled (${elapsed()})`);
      }
    }
  };
  await Promise.all([pump(proc.stdout), pump(proc.stderr)]);
  const exit = await proc.exited;
  writeFileSync(join(tree, "build.log"), logLines.join("\n"));
  if (exit !== 0) fail(`the kernel build failed; the last lines:\n${logLines.slice(-30).join("\n")}`);
  // "Without new warnings": nothing may warn in the files the patches touch.
  const touched = patchFiles().flatMap((p) => [...readFileSync(join(PATCHES, p), "utf8").matchAll(/^\+\+\+ b\/(\S+)/gm)].map((m) => m[1]!));
  const warnings = logLines.filter((l) => /warning:/.test(l) && touched.some((f) => l.includes(f.replace(/\.h$/, ""))));
  if (warnings.length) fail(`the patched files build with warnings:\n${warnings.join("\n")}`);
  say(`      ${objects} files compiled; no warnings in ${[...new Set(touched)].join(", ")}`);
  say(`[5/5] caching (${elapsed()})`);
  const stage = `${dest}.tmp`;
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  copyFileSync(join(tree, "arch/x86/boot/bzImage"), join(stage, "vmlinuz"));
  copyFileSync(join(tree, ".config"), join(stage, "config"));
  writeFileSync(join(stage, "release"), run(["make", "-s", "kernelrelease"], tree, "make kernelrelease").trim() + "\n");
  copyFileSync(join(tree, "build.log"), join(stage, "build.log"));
  renameSync(stage, dest);
  // The build tree is kept only for the newest hash (for quick looks); older ones go.
  for (const d of readdirSync(CACHE)) if (d.startsWith("build-") && d !== `build-${hash}`) rmSync(join(CACHE, d), { recursive: true, force: true });
  link(dest);
  say(`built ${readFileSync(join(dest, "release"), "utf8").trim()} in ${elapsed()}; cached as ~/.cache/paio/kernel/${hash}`);
}

if (import.meta.main) await main();

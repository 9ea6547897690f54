#!/usr/bin/env bun
// The PAIO application as it lands in a root file system: the Bun binary, our
// bundles, the signed models, onnxruntime-node and its library. One list,
// used by the offline assembler (image/build.ts) and by the Buildroot
// package paio-app (distro/package/paio-app), so both images ship the same app.
//
//   bun image/app.ts install DESTDIR   copy the app into DESTDIR (a target root)
//   bun image/app.ts list              print "dest<TAB>source<TAB>origin" rows
//
// PID 1 and the exec helper are not part of the app: they are C programs that
// each build system compiles with its own toolchain.

import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { ARCH, ARCHES, ArchError, MODELS_DIR, onnxLibDir, onnxruntimeJs, OWN_PARTS, REPO, targetArch, type Arch } from "./config.ts";
import { BuildError } from "./errors.ts";
import { foreignPackage } from "./npm.ts";

export interface AppFile {
  /** Path in the root file system, without the leading slash. */
  dest: string;
  src: string;
  origin: string;
  mode: number;
}

function npmVersion(pkgDir: string): string {
  try {
    return JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
  } catch {
    return "unknown";
  }
}

function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(join(dir, rel)).isDirectory()) out.push(...listFiles(dir, rel));
    else out.push(rel);
  }
  return out;
}

/**
 * The Bun binary to ship: PAIO_BUN, or npm's build for the architecture (the
 * host's comes with `npm ci`; another one is fetched as package-lock.json pins it).
 */
export function bunBinary(arch: Arch = ARCH, log: (msg: string) => void = () => {}): { path: string; origin: string } {
  const pkg = ARCHES[arch].bunPackage;
  if (process.env.PAIO_BUN) {
    const path = process.env.PAIO_BUN;
    if (!existsSync(path)) throw new BuildError(`PAIO_BUN=${path}: no such file; point it at a Bun binary for ${arch} Linux, or unset it to use the one from npm`);
    return { path, origin: `file:${path.split("/").pop()}` };
  }
  const installed = join(REPO, "node_modules", pkg);
  if (existsSync(join(installed, "bin/bun"))) return { path: join(installed, "bin/bun"), origin: `npm:${pkg}@${npmVersion(installed)}` };
  if (arch === "x86_64") throw new BuildError(`the Bun binary node_modules/${pkg}/bin/bun is missing; run 'make deps' (npm ci installs ${pkg})`);
  const { dir, version } = foreignPackage(pkg, log);
  return { path: join(dir, "bin/bun"), origin: `npm:${pkg}@${version}` };
}

export function onnxLibrary(arch: Arch = ARCH): { path: string; origin: string } {
  const path = join(onnxLibDir(arch), "libonnxruntime.so.1");
  if (!existsSync(path)) throw new BuildError(`${relative(REPO, path)} is missing; run 'make deps'`);
  return { path, origin: `npm:onnxruntime-node@${npmVersion(join(REPO, "node_modules/onnxruntime-node"))}` };
}

/**
 * Every file of the app for an architecture. `libDir` is where the shared
 * library goes: Debian's multiarch directory in the assembler's image,
 * /usr/lib under Buildroot. The bundles and models are the same for every
 * architecture; Bun and onnxruntime's native parts are the architecture's own.
 */
export function appFiles(arch: Arch = ARCH, libDir = `usr/lib/${ARCHES[arch].multiarch}`, log: (msg: string) => void = () => {}): AppFile[] {
  const bundles: [string, keyof typeof OWN_PARTS, string][] = [
    ["supervisor.js", "supervisor", "paio:init/supervisor"],
    ["network.js", "network", "paio:init/network"],
    ["paio.js", "paioCli", "paio:init/cli"],
    ["agent.js", "agent", "paio:agents/agent"],
    ["console.js", "console", "paio:agents/console"],
  ];
  const files: AppFile[] = [];
  for (const [name, part, origin] of bundles) {
    if (!existsSync(OWN_PARTS[part])) throw new BuildError(`${relative(REPO, OWN_PARTS[part])} is missing; run 'make build' in the PAIO tree`);
    files.push({ dest: `usr/lib/paio/${name}`, src: OWN_PARTS[part], origin, mode: 0o644 });
  }
  for (const f of ["manifest.json", "model-signing.pub"]) {
    if (!existsSync(join(MODELS_DIR, f))) throw new BuildError(`${relative(REPO, join(MODELS_DIR, f))} is missing; run 'make models' in the PAIO tree`);
  }
  // The models, and the public half of the key that signed their manifest (its private half never leaves the build machine).
  for (const f of readdirSync(MODELS_DIR).filter((f) => f === "manifest.json" || f.endsWith(".onnx")).sort()) {
    files.push({ dest: `usr/lib/paio/models/${f}`, src: join(MODELS_DIR, f), origin: "paio:agents/models (make models)", mode: 0o644 });
  }
  files.push({ dest: "usr/share/paio/model-keys/paio.pub", src: join(MODELS_DIR, "model-signing.pub"), origin: "paio:agents/models (make models)", mode: 0o644 });
  // onnxruntime-node's JavaScript and native binding; its library is on the library path.
  for (const [pkg, { keep }] of Object.entries(onnxruntimeJs(arch))) {
    const root = join(REPO, "node_modules", pkg);
    if (!existsSync(root)) throw new BuildError(`node_modules/${pkg} is missing; run 'make deps'`);
    const origin = `npm:${pkg}@${npmVersion(root)}`;
    for (const rel of listFiles(root).filter((f) => keep.test(f))) {
      files.push({ dest: `usr/lib/paio/node_modules/${pkg}/${rel}`, src: join(root, rel), origin, mode: 0o644 });
    }
  }
  const bun = bunBinary(arch, log);
  files.push({ dest: "usr/bin/bun", src: bun.path, origin: bun.origin, mode: 0o755 });
  const onnx = onnxLibrary(arch);
  files.push({ dest: `${libDir}/libonnxruntime.so.1`, src: onnx.path, origin: onnx.origin, mode: 0o644 });
  return files;
}

function install(dest: string, arch: Arch, libDir: string): void {
  if (!existsSync(dest)) throw new BuildError(`${dest}: no such directory`);
  const files = appFiles(arch, libDir, (m) => console.log(`paio-app: ${m}`));
  for (const f of files) {
    const to = join(dest, f.dest);
    mkdirSync(dirname(to), { recursive: true });
    rmSync(to, { force: true });
    copyFileSync(f.src, to);
    chmodSync(to, f.mode);
  }
  console.log(`paio-app: ${files.length} files installed`);
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const option = (name: string): string | undefined => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  try {
    // --arch x86_64|arm64 (default: PAIO_ARCH, else x86_64); --lib-dir DIR (default /usr/lib for install, Debian's multiarch for list)
    const arch = targetArch(option("--arch") ?? process.env.PAIO_ARCH);
    const libOption = option("--lib-dir")?.replace(/^\/+/, "");
    const [cmd, arg] = args;
    const libDir = libOption ?? (cmd === "install" ? "usr/lib" : `usr/lib/${ARCHES[arch].multiarch}`);
    if (cmd === "install" && arg) install(arg, arch, libDir);
    else if (cmd === "list") for (const f of appFiles(arch, libDir)) console.log(`${f.dest}\t${relative(REPO, f.src)}\t${f.origin}`);
    else {
      console.error("usage: bun image/app.ts install DESTDIR [--arch x86_64|arm64] [--lib-dir DIR] | list [--arch ...]");
      process.exit(2);
    }
  } catch (e) {
    if (e instanceof BuildError || e instanceof ArchError) {
      console.error(`paio-app: error: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}

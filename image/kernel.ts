// The kernel is an input of the image: Debian's cloud kernel by default, or a
// kernel directory given by PAIO_KERNEL (what `make kernel` produces):
//   DIR/vmlinuz                  the kernel image (required)
//   DIR/config                   its configuration (optional)
//   DIR/lib/modules/<release>/   its modules (optional: a kernel may build everything in)
//   DIR/dtbs/*.dtb               device trees (arm64: the Raspberry Pi image needs them)

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { DEBIAN_KERNEL_META } from "./config.ts";
import { fetchDebs, metaTarget } from "./debs.ts";
import { BuildError, run } from "./errors.ts";

export interface Kernel {
  vmlinuz: string;
  config?: string;
  /** lib/modules/<release> directory, when the kernel has modules. */
  modulesDir?: string;
  release: string;
  origin: string;
  /** Device tree blobs (arm64). */
  dtbs?: string[];
}

export function resolveKernel(log: (msg: string) => void): Kernel {
  const dir = process.env.PAIO_KERNEL;
  if (dir) return kernelFromDir(dir);
  const pkg = metaTarget(DEBIAN_KERNEL_META, "linux-image-");
  const deb = fetchDebs([pkg], log).get(pkg)!;
  const release = pkg.replace(/^linux-image-/, "");
  const dtbDir = join(deb.root, "usr/lib", `linux-image-${release}`, "broadcom");
  return {
    dtbs: existsSync(dtbDir) ? readdirSync(dtbDir).filter((f) => f.endsWith(".dtb")).sort().map((f) => join(dtbDir, f)) : undefined,
    vmlinuz: join(deb.root, "boot", `vmlinuz-${release}`),
    config: join(deb.root, "boot", `config-${release}`),
    modulesDir: join(deb.root, "lib", "modules", release),
    release,
    origin: deb.origin,
  };
}

export function kernelFromDir(dir: string): Kernel {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new BuildError(`PAIO_KERNEL=${dir}: no such directory; build one with 'make kernel', or unset PAIO_KERNEL to use Debian's ${DEBIAN_KERNEL_META}`);
  }
  const vmlinuz = join(dir, "vmlinuz");
  if (!existsSync(vmlinuz)) {
    throw new BuildError(`PAIO_KERNEL=${dir} has no vmlinuz; the directory must hold vmlinuz (and optionally config, lib/modules/<release>/)`);
  }
  const modRoot = join(dir, "lib", "modules");
  const releases = existsSync(modRoot) ? readdirSync(modRoot) : [];
  const release = releases[0] ?? readFileSync(join(dir, "release"), "utf8").trim();
  const dtbDir = join(dir, "dtbs");
  return {
    dtbs: existsSync(dtbDir) ? readdirSync(dtbDir).filter((f) => f.endsWith(".dtb")).sort().map((f) => join(dtbDir, f)) : undefined,
    vmlinuz,
    config: existsSync(join(dir, "config")) ? join(dir, "config") : undefined,
    modulesDir: releases[0] ? join(modRoot, releases[0]) : undefined,
    release,
    origin: `paio:kernel(${dir.replace(/^.*\/out\//, "out/")})`,
  };
}

/** The order to load the wanted modules in: dependencies first ("kernel/x/y.ko" paths). */
export function moduleLoadOrder(kernel: Kernel, wanted: string[], log: (msg: string) => void): string[] {
  if (!kernel.modulesDir) return [];
  const depFile = join(kernel.modulesDir, "modules.dep");
  if (!existsSync(depFile)) {
    // Debian's packages leave modules.dep to depmod at install time.
    const base = kernel.modulesDir.replace(/\/lib\/modules\/[^/]+$/, "");
    run(["depmod", "-b", base, kernel.release]);
  }
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of readFileSync(depFile, "utf8").split("\n")) {
    const [mod, rest] = line.split(":");
    if (!mod || rest === undefined) continue;
    deps.set(mod, rest.trim() ? rest.trim().split(/\s+/) : []);
    const name = mod.split("/").pop()!.replace(/\.ko(\.\w+)?$/, "").replace(/-/g, "_");
    byName.set(name, mod);
  }
  const order: string[] = [];
  const visit = (mod: string) => {
    if (order.includes(mod)) return;
    for (const dep of deps.get(mod) ?? []) visit(dep);
    order.push(mod);
  };
  for (const name of wanted) {
    const mod = byName.get(name.replace(/-/g, "_"));
    if (mod) visit(mod);
    else log(`module ${name}: not a module of ${kernel.release} (built in, or not configured); skipped`);
  }
  return order;
}

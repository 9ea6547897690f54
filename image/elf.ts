// Shared-library closure of ELF programs: which libraries (by soname) a binary
// needs, found in unpacked Debian packages, so the image carries exactly those.

import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Deb } from "./debs.ts";
import { BuildError, run } from "./errors.ts";

/** Where Debian keeps libraries for an architecture (multiarch name, e.g. aarch64-linux-gnu). */
function libDirs(multiarch: string): string[] {
  return [`lib/${multiarch}`, `usr/lib/${multiarch}`, "lib64", "usr/lib64", "lib", "usr/lib"];
}

/** DT_NEEDED entries of an ELF file ([] for a static binary). */
export function neededLibs(file: string): string[] {
  const out = run(["readelf", "-dW", file]);
  return [...out.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
}

/** The ELF interpreter (e.g. /lib64/ld-linux-x86-64.so.2), if any. */
export function interpreter(file: string): string | undefined {
  const out = run(["readelf", "-lW", file]);
  return out.match(/Requesting program interpreter: ([^\]]+)\]/)?.[1];
}

export interface LibHit {
  deb: Deb;
  /** Path inside the package, e.g. lib/x86_64-linux-gnu/libc.so.6 */
  path: string;
}

/** Finds a soname in the given packages. */
export function findLib(soname: string, debs: Deb[], multiarch = "x86_64-linux-gnu"): LibHit | undefined {
  for (const deb of debs) {
    for (const dir of libDirs(multiarch)) {
      const path = `${dir}/${soname}`;
      if (existsSync(join(deb.root, path))) return { deb, path };
    }
  }
  return undefined;
}

/**
 * All libraries the given binaries need, transitively. `extra` maps sonames
 * provided by files that are not in a package (libonnxruntime.so.1).
 */
export function libraryClosure(binaries: string[], debs: Deb[], extra: Map<string, string> = new Map(), multiarch = "x86_64-linux-gnu"): LibHit[] {
  const seen = new Map<string, LibHit>();
  const queue = binaries.map((b) => ({ file: b, from: b }));
  while (queue.length > 0) {
    const { file, from } = queue.shift()!;
    for (const soname of neededLibs(file)) {
      if (seen.has(soname) || extra.has(soname)) continue;
      const hit = findLib(soname, debs, multiarch);
      if (!hit) {
        throw new BuildError(`${from} needs ${soname}, which none of the image's Debian packages provide (${debs.map((d) => d.name).join(", ")}); add its package to DEBIAN_PACKAGES in image/config.ts`);
      }
      seen.set(soname, hit);
      queue.push({ file: join(hit.deb.root, hit.path), from: soname });
    }
  }
  return [...seen.values()].sort((a, b) => a.path.localeCompare(b.path));
}

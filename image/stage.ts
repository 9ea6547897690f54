// A staging tree for a file system image that remembers where every file came
// from, so the manifest can name each file's origin and checksum.
//
// The root is "merged /usr": /bin, /sbin, /lib and /lib64 are links into /usr,
// and files taken from Debian's /lib or /bin land under /usr.

import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join, posix } from "node:path";
import { BuildError } from "./errors.ts";

const MERGED: Record<string, string> = { bin: "usr/bin", sbin: "usr/sbin", lib: "usr/lib", lib64: "usr/lib64" };

/** Maps a path to where it lives in a merged-/usr tree ("lib/x" -> "usr/lib/x"). */
export function mergedPath(path: string): string {
  const p = path.replace(/^\/+/, "");
  const [head, ...rest] = p.split("/");
  const target = head !== undefined ? MERGED[head] : undefined;
  if (target && rest.length > 0) return [target, ...rest].join("/");
  return p;
}

export class Stage {
  private origins = new Map<string, string>();

  constructor(readonly root: string, merged = true) {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    if (merged) {
      for (const [link, target] of Object.entries(MERGED)) {
        mkdirSync(join(root, target), { recursive: true });
        symlinkSync(target, join(root, link));
        this.origins.set(link, "paio:image/stage.ts");
      }
    }
  }

  private dest(path: string): string {
    const rel = mergedPath(path);
    if (rel.split("/").includes("..")) throw new BuildError(`refusing path outside the image: ${path}`);
    return rel;
  }

  dir(path: string, mode = 0o755): void {
    const rel = this.dest(path);
    mkdirSync(join(this.root, rel), { recursive: true });
    chmodSync(join(this.root, rel), mode);
  }

  /** Copies a file (following symlinks in the source) into the image. */
  file(path: string, src: string, origin: string, mode?: number): void {
    if (!existsSync(src)) throw new BuildError(`missing input file: ${src}`);
    const rel = this.dest(path);
    const dst = join(this.root, rel);
    mkdirSync(dirname(dst), { recursive: true });
    rmSync(dst, { force: true });
    copyFileSync(src, dst);
    chmodSync(dst, mode ?? lstatSync(src).mode & 0o7777);
    this.origins.set(rel, origin);
  }

  write(path: string, content: string | Uint8Array, origin: string, mode = 0o644): void {
    const rel = this.dest(path);
    const dst = join(this.root, rel);
    mkdirSync(dirname(dst), { recursive: true });
    writeFileSync(dst, content);
    chmodSync(dst, mode);
    this.origins.set(rel, origin);
  }

  symlink(path: string, target: string, origin: string): void {
    const rel = this.dest(path);
    const dst = join(this.root, rel);
    mkdirSync(dirname(dst), { recursive: true });
    rmSync(dst, { force: true });
    symlinkSync(target, dst);
    this.origins.set(rel, origin);
  }

  /**
   * Copies a file from an unpacked package, keeping a symlink as a symlink and
   * bringing its target along (libstdc++.so.6 -> libstdc++.so.6.0.30).
   */
  fromPackage(pkgRoot: string, path: string, origin: string): void {
    const src = join(pkgRoot, path);
    let st;
    try {
      st = lstatSync(src);
    } catch {
      throw new BuildError(`${origin} has no file ${path}`);
    }
    if (st.isSymbolicLink()) {
      const target = readlinkSync(src);
      this.symlink(path, target, origin);
      const resolved = target.startsWith("/") ? target.slice(1) : posix.join(posix.dirname(path), target);
      this.fromPackage(pkgRoot, posix.normalize(resolved), origin);
    } else {
      this.file(path, src, origin);
    }
  }

  /** Every entry of the tree with its origin and checksum, sorted by path. */
  manifest(): string {
    return treeManifest(this.root, (p) => {
      const origin = this.origins.get(p);
      if (!origin) throw new BuildError(`internal: no origin recorded for /${p}`);
      return origin;
    });
  }
}

/**
 * A manifest of any tree (also a Buildroot root, see distro/offline): one row
 * per file or link with path, type, mode, size, sha256, link target and the
 * origin `originOf` gives, sorted by path.
 */
export function treeManifest(root: string, originOf: (path: string) => string): string {
  const rows: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const full = join(root, p);
      const st = lstatSync(full);
      const mode = (st.mode & 0o7777).toString(8).padStart(4, "0");
      if (st.isDirectory()) {
        walk(p);
        continue;
      }
      const origin = originOf(p);
      if (st.isSymbolicLink()) {
        rows.push(["/" + p, "link", mode, "-", "-", "-> " + readlinkSync(full), origin].join("\t"));
      } else {
        const sum = createHash("sha256").update(readFileSync(full)).digest("hex");
        rows.push(["/" + p, "file", mode, String(st.size), sum, "-", origin].join("\t"));
      }
    }
  };
  walk("");
  return "# path\ttype\tmode\tsize\tsha256\tlink\torigin\n" + rows.join("\n") + "\n";
}

/** A PEM private key block (PKCS#8, RSA, EC, OpenSSH, encrypted): its header and the start of its base64 body. */
const PRIVATE_KEY_PEM = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----\r?\n[A-Za-z0-9+/=:\-, \r\n]{40}/;

/**
 * Every file in a tree that holds a PEM private key, as "/path (KIND PRIVATE
 * KEY)". An image must hold none: the build's signing keys stay on the build
 * machine, and a device makes its own keys at first boot on its data
 * partition. ELF binaries are not counted: Bun and OpenSSL carry the header
 * as a string, and GnuTLS carries the published test keys of its self-tests.
 */
export function privateKeysIn(root: string): string[] {
  const marker = Buffer.from("PRIVATE KEY-----");
  const found: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p));
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        const bytes = readFileSync(join(root, p));
        if (bytes[0] === 0x7f && bytes.subarray(1, 4).toString("latin1") === "ELF") continue;
        for (let at = bytes.indexOf(marker); at >= 0; at = bytes.indexOf(marker, at + 1)) {
          const m = PRIVATE_KEY_PEM.exec(bytes.subarray(Math.max(0, at - 64), at + 200).toString("latin1"));
          if (m) {
            found.push(`/${p} (${m[1]}PRIVATE KEY)`);
            break;
          }
        }
      }
    }
  };
  walk("");
  return found;
}

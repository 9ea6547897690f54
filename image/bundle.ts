#!/usr/bin/env bun
// `make bundle`: an update bundle of the image just built, for RAUC:
//   out/paio-VERSION-ARCH.raucb   (out/arm64/ for arm64)
// in RAUC's verity format: the root file system, a dm-verity hash tree over the
// bundle's payload and a CMS signature over the manifest (which holds the
// tree's root hash), signed with the keys of image/keys.ts. A device installs it
// with `paio update install FILE|URL` (docs/updates.md).

import { existsSync, linkSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ARCH, OUT, OUTPUTS, REPO, type Arch } from "./config.ts";
import { BuildError, requireTools, run } from "./errors.ts";
import { signingKeys, type SigningKeys } from "./keys.ts";

/** What bundles for `arch` must say they are compatible with (the device's /etc/rauc/system.conf). */
export const compatibleFor = (arch: Arch | string) => `paio-${arch}`;

export interface BundleSpec {
  rootfs: string;
  version: string;
  arch: Arch | string;
  keys: SigningKeys;
  out: string;
}

/** The PAIO version inside a root file system image (its /etc/paio/release). */
export function rootfsVersion(rootfs: string): string {
  const text = run(["unsquashfs", "-cat", rootfs, "etc/paio/release"]);
  const v = /^PAIO_VERSION=(\S+)$/m.exec(text)?.[1];
  if (!v) throw new BuildError(`${rootfs} has no PAIO_VERSION in /etc/paio/release`);
  return v;
}

export function buildBundle(b: BundleSpec): string {
  requireTools(["rauc", "mksquashfs", "unsquashfs"]);
  const content = `${b.out}.content`;
  rmSync(content, { recursive: true, force: true });
  mkdirSync(content, { recursive: true });
  try {
    writeFileSync(join(content, "manifest.raucm"), [
      "[update]",
      `compatible=${compatibleFor(b.arch)}`,
      `version=${b.version}`,
      `description=PAIO ${b.version} for ${b.arch}`,
      "",
      "[bundle]",
      "format=verity",
      "",
      "[image.rootfs]",
      "filename=rootfs.img",
      "",
    ].join("\n"));
    linkSync(b.rootfs, join(content, "rootfs.img"));
    rmSync(b.out, { force: true });
    // The root is already zstd-compressed: the bundle's own squashfs stores it as it is.
    run(["rauc", "bundle", `--cert=${b.keys.signCert}`, `--key=${b.keys.signKey}`, `--keyring=${b.keys.caCert}`,
      "--mksquashfs-args=-noI -noD -noF -noX -no-xattrs", content, b.out]);
  } finally {
    rmSync(content, { recursive: true, force: true });
  }
  return b.out;
}

function main(): void {
  if (!existsSync(OUTPUTS.rootfs)) throw new BuildError(`${relative(REPO, OUTPUTS.rootfs)} is missing; run 'make image${ARCH === "x86_64" ? "" : ` ARCH=${ARCH}`}' first`);
  const started = Date.now();
  const keys = signingKeys((m) => console.log(`bundle       ${m}`));
  const version = rootfsVersion(OUTPUTS.rootfs);
  const out = join(OUT, `paio-${version}-${ARCH}.raucb`);
  console.log(`bundle: PAIO ${version} for ${ARCH}, signed by ${relative(REPO, keys.signCert).startsWith("..") ? keys.signCert : relative(REPO, keys.signCert)}`);
  buildBundle({ rootfs: OUTPUTS.rootfs, version, arch: ARCH, keys, out });
  console.log(`bundle: built ${relative(REPO, out)} (${(statSync(out).size / 1048576).toFixed(1)} MiB) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (import.meta.main) {
  try {
    main();
  } catch (e) {
    if (e instanceof BuildError) {
      console.error(`bundle: error: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}

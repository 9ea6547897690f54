// Update bundles for the update tests: the built root with another version
// number, and broken on purpose in the ways a real update can be broken. Each
// is a real RAUC bundle made by image/bundle.ts from a modified copy of the
// image's root (unsquashfs, change, mksquashfs), signed with the project's
// development keys unless a test asks for others.

import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildBundle } from "../../image/bundle.ts";
import { makeCa, signingKeys, type SigningKeys } from "../../image/keys.ts";

export type Variant =
  /** Works: only the version differs. */
  | "good"
  /** The slot's initramfs exits at once: the kernel panics ("Attempted to kill init!"). */
  | "kernel-panic"
  /** /sbin/init is missing from the root. */
  | "no-init"
  /** The supervisor exits as soon as it starts. */
  | "supervisor-exits"
  /** A unit (camera) whose health check never passes. */
  | "unit-unhealthy"
  /** The agent exits at once, every time it is started. */
  | "agent-crash";

function sh(argv: string[], cwd?: string): string {
  const r = Bun.spawnSync(argv, { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${r.exitCode}): ${r.stderr.toString().trim().split("\n").slice(-5).join("\n")}`);
  return r.stdout.toString();
}

function setVersion(root: string, version: string): void {
  const f = join(root, "etc/paio/release");
  writeFileSync(f, readFileSync(f, "utf8").replace(/^PAIO_VERSION=.*$/m, `PAIO_VERSION=${version}`));
}

/** Replaces the initramfs's /init with one that exits: the kernel then panics. */
function panickingInitrd(root: string, work: string): void {
  const dir = join(work, "initrd");
  mkdirSync(dir, { recursive: true });
  sh(["sh", "-c", `gzip -dc "$1" | cpio -id --quiet`, "sh", join(root, "boot/initrd.img")], dir);
  writeFileSync(join(dir, "init"), "#!/bin/busybox sh\necho 'paio-test: this initramfs exits at once, so the kernel panics'\nexit 1\n");
  chmodSync(join(dir, "init"), 0o755);
  sh(["sh", "-c", `find . | cpio -o -H newc --quiet | gzip -1 > "$1"`, "sh", join(root, "boot/initrd.img")], dir);
}

function breakRoot(root: string, variant: Variant, work: string): void {
  switch (variant) {
    case "good":
      return;
    case "kernel-panic":
      return panickingInitrd(root, work);
    case "no-init":
      rmSync(join(root, "sbin/init"));
      return;
    case "supervisor-exits":
      writeFileSync(join(root, "usr/lib/paio/supervisor.js"), 'console.error("paio-test: this supervisor exits at start");\nprocess.exit(1);\n');
      return;
    case "agent-crash":
      writeFileSync(join(root, "usr/lib/paio/agent.js"), 'console.error("paio-test: this agent exits at start");\nprocess.exit(3);\n');
      return;
    case "unit-unhealthy":
      writeFileSync(join(root, "etc/paio/units/camera.toml"), [
        "# paio-test: a service whose health check never passes",
        'description = "camera (never healthy)"',
        'exec = ["/bin/sleep", "100000"]',
        'restart = "always"',
        "[health]",
        'type = "exec"',
        'target = "exit 1"',
        'interval = "3s"',
        'timeout = "1s"',
        'grace = "2s"',
        "",
      ].join("\n"));
      return;
  }
}

export interface MadeBundle {
  file: string;
  version: string;
}

/**
 * A bundle of `variant` at `version` in `dir`, from the built root `rootfs`.
 * Cached by name in `dir`, so a test file makes each one once.
 */
export function variantBundle(rootfs: string, dir: string, variant: Variant, version: string, arch: string, keys: SigningKeys = signingKeys()): MadeBundle {
  const out = join(dir, `paio-${version}-${variant}.raucb`);
  if (existsSync(out)) return { file: out, version };
  const work = join(dir, `work-${variant}-${version}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const root = join(work, "root");
    sh(["unsquashfs", "-quiet", "-no-progress", "-no-xattrs", "-d", root, rootfs]);
    setVersion(root, version);
    breakRoot(root, variant, work);
    const squash = join(work, "rootfs.squashfs");
    sh(["mksquashfs", root, squash, "-noappend", "-quiet", "-no-progress", "-comp", "zstd", "-Xcompression-level", "3", "-no-xattrs", "-all-root"]);
    buildBundle({ rootfs: squash, version, arch, keys, out });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { file: out, version };
}

/**
 * Bundles that must be refused before anything is written. Their payload is a
 * small squashfs: what is checked is the signature, the manifest and the
 * payload's hash tree, never the root inside.
 */
export function refusedBundles(dir: string, arch: string, otherArch: string, current: string): Record<"tampered" | "otherCa" | "otherArch" | "older", string> {
  const small = join(dir, "small-root");
  const squash = join(dir, "small.squashfs");
  if (!existsSync(squash)) {
    mkdirSync(join(small, "etc/paio"), { recursive: true });
    writeFileSync(join(small, "etc/paio/release"), `PAIO_VERSION=9.9.9\n`);
    writeFileSync(join(small, "filler"), new Uint8Array(2 << 20).map((_, i) => (i * 2654435761) >>> 24));
    sh(["mksquashfs", small, squash, "-noappend", "-quiet", "-no-progress", "-all-root"]);
  }
  const keys = signingKeys();
  const make = (name: string, version: string, a: string, k: SigningKeys) => {
    const out = join(dir, `refused-${name}.raucb`);
    if (!existsSync(out)) buildBundle({ rootfs: squash, version, arch: a, keys: k, out });
    return out;
  };
  const good = make("good", "9.9.9", arch, keys);
  const tampered = join(dir, "refused-tampered.raucb");
  copyFileSync(good, tampered);
  // One byte in the middle of the payload (the squashfs with the root image), not the signature.
  const bytes = readFileSync(tampered);
  const at = Math.floor(bytes.length / 3);
  bytes[at] = bytes[at]! ^ 0x01;
  writeFileSync(tampered, bytes);
  const otherKeys = otherCa(dir);
  return {
    tampered,
    otherCa: make("other-ca", "9.9.9", arch, otherKeys),
    otherArch: make("other-arch", "9.9.9", otherArch, keys),
    older: make("older", olderThan(current), arch, keys),
  };
}

function otherCa(dir: string): SigningKeys {
  const d = join(dir, "other-ca");
  return existsSync(join(d, "ca.cert.pem")) ? { dir: d, caCert: join(d, "ca.cert.pem"), signCert: join(d, "signing.cert.pem"), signKey: join(d, "signing.key.pem") } : makeCa(d, "Someone else");
}

/** A version older than `v` (0.1.0 → 0.0.9). */
export function olderThan(v: string): string {
  const p = v.split(".").map(Number);
  for (let i = p.length - 1; i >= 0; i--) {
    if (p[i]! > 0) {
      p[i]! -= 1;
      for (let j = i + 1; j < p.length; j++) p[j] = 9;
      return p.join(".");
    }
  }
  return "0.0.0";
}

/** Where the guest finds the host's bundle server (a guestfwd inside QEMU's user network). */
export const BUNDLE_HOST = "10.0.2.100";

/**
 * Serves the files of `dir` by name over HTTP on 127.0.0.1 (a free port), for
 * `paio update install http://10.0.2.100/NAME` in a guest started with
 * guestForwards: [{ guestAddr: BUNDLE_HOST, guestPort: 80, hostPort: port }].
 */
export function serveBundles(dir: string): { port: number; url: (file: string) => string; stop: () => void } {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    // A guest under emulation, sharing the host with other work, may read slowly.
    idleTimeout: 0,
    fetch(req) {
      const name = decodeURIComponent(new URL(req.url).pathname.slice(1));
      if (!/^[\w.+-]+$/.test(name) || !existsSync(join(dir, name))) return new Response("no such bundle\n", { status: 404 });
      return new Response(Bun.file(join(dir, name)));
    },
  });
  return {
    port: server.port!,
    url: (file: string) => `http://${BUNDLE_HOST}/${file.slice(file.lastIndexOf("/") + 1)}`,
    stop: () => server.stop(true),
  };
}

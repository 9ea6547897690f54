#!/usr/bin/env bun
// `make bench`: A/B update figures (docs/updates.md), from one guest booted
// from a copy of the built x86_64 image through OVMF and systemd-boot:
//   - the bundle's size (a bundle of the built root, as `make bundle` makes it),
//     against the root file system it carries;
//   - the install time (`paio update install`: signature, payload hash tree,
//     writing the slot, the switch), against copying the same bundle's root
//     image onto the slot with dd in the same guest, side by side;
//   - reboot to committed: from asking for the reboot until the new slot is
//     committed, and the guest's uptime at the commit (the health gate's own clock);
//   - a bad update (the kernel panics) from the reboot into it until the old
//     version's supervisor is ready again, with the kernel's panic=10 and three tries.

import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Guest } from "../../qemu/guest.ts";
import { buildBundle, rootfsVersion } from "../../image/bundle.ts";
import { signingKeys } from "../../image/keys.ts";
import { PRELUDE } from "../helpers/guest.ts";
import { variantBundle } from "../helpers/update-bundles.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const OUT = join(REPO, "out");
const IMAGE = join(OUT, "paio-x86_64.img");
const ROOTFS = join(OUT, "rootfs.squashfs");
const INCOMING = "/var/lib/paio/update/incoming.raucb";
const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

async function sh(g: Guest, script: string): Promise<string> {
  const r = await g.sh(PRELUDE + script, 900_000);
  if (r.code !== 0) throw new Error(`guest script failed (${r.code}): ${script}\n${r.output}`);
  return r.output;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "paio-update-bench-"));
  let guest: Guest | undefined;
  try {
    const version = rootfsVersion(ROOTFS);
    const good = variantBundle(ROOTFS, dir, "good", "9.0.0", "x86_64").file;
    const bad = variantBundle(ROOTFS, dir, "kernel-panic", "9.0.1", "x86_64").file;
    console.log(`update bench: x86_64, PAIO ${version}`);
    // The bundle `make bundle` makes: the image's own root (zstd level 15) as it is.
    const made = buildBundle({ rootfs: ROOTFS, version, arch: "x86_64", keys: signingKeys(), out: join(dir, "made.raucb") });
    console.log(`  bundle (make bundle: verity format, signed): ${mib(statSync(made).size)}, for a root file system of ${mib(statSync(ROOTFS).size)}`);
    console.log(`  the bundles installed below carry a root repacked with another version at zstd level 3: ${mib(statSync(good).size)}`);

    Bun.spawnSync(["cp", "--sparse=always", IMAGE, join(dir, "disk.img")]);
    guest = await Guest.start({ outDir: OUT, keyDir: OUT, disk: join(dir, "disk.img"), arch: "x86_64", boot: "uefi", snapshot: false, noReboot: false, lifetimeS: 7200 });
    await guest.waitReady(300_000);
    // Wait for the RAUC service, then copy the bundle in.
    await sh(guest, "i=0; until rauc status >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 60 ] && exit 1; sleep 1; done");
    await guest.put(good, INCOMING);

    // Baseline: the same bytes copied onto slot B with dd (no checks, no switch).
    const dd = await sh(guest, `mkdir -p /run/bench; t0=$(cut -d' ' -f1 /proc/uptime)
      dd if=${INCOMING} of=/dev/disk/by-partlabel/paio-root-b bs=1M conv=fsync 2>/dev/null
      t1=$(cut -d' ' -f1 /proc/uptime); echo "dd $t0 $t1"; dd if=/dev/zero of=/dev/disk/by-partlabel/paio-root-b bs=1M count=1 conv=fsync 2>/dev/null`);
    const [, d0, d1] = /dd (\S+) (\S+)/.exec(dd)!;
    const install = await sh(guest, `t0=$(cut -d' ' -f1 /proc/uptime); paio update install ${INCOMING} >/dev/null; t1=$(cut -d' ' -f1 /proc/uptime); echo "install $t0 $t1"; rm -f ${INCOMING}`);
    const [, i0, i1] = /install (\S+) (\S+)/.exec(install)!;
    const installS = Number(i1) - Number(i0), ddS = Number(d1) - Number(d0);
    console.log(`  install: ${installS.toFixed(1)} s (paio update install), against ${ddS.toFixed(1)} s for dd of the same bundle onto the slot: ${(installS / ddS).toFixed(1)}x`);

    let t = Date.now();
    let mark = await guest.requestReboot();
    await guest.waitNextReady(mark, 600_000);
    while (Date.now() - t < 600_000) {
      const s = JSON.parse((await sh(guest, "paio update status --json")).trim().split("\n").pop()!);
      if (s.booted === "B" && s.slots[1].state === "good") break;
      await Bun.sleep(1000);
    }
    const wall = (Date.now() - t) / 1000;
    const ev = JSON.parse((await sh(guest, "grep '\"committed\"' /var/lib/paio/update/journal.jsonl | tail -n 1")).trim());
    const committed = ev.seconds as number;
    console.log(`  reboot to committed: ${wall.toFixed(1)} s from the reboot request (host clock); the guest's uptime at the commit: ${committed.toFixed(1)} s`);

    // A bad update: the new slot's kernel panics three times, then the old version runs.
    await guest.put(bad, INCOMING);
    await sh(guest, `paio update install ${INCOMING} >/dev/null; rm -f ${INCOMING}`);
    t = Date.now();
    mark = await guest.requestReboot();
    await guest.waitNextReady(mark, 900_000);
    const back = (Date.now() - t) / 1000;
    const s = JSON.parse((await sh(guest, "paio update status --json")).trim().split("\n").pop()!);
    console.log(`  bad update (kernel panic) to the old version running again: ${back.toFixed(1)} s from the reboot request (3 tries, panic=10); now on slot ${s.booted}, version ${s.version}`);
  } finally {
    guest?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

// The built x86_64 image's A/B layout (docs/updates.md): two root slots and
// the data partition, slot A's systemd-boot entry (committed, no `default` in
// loader.conf, so the update system's entry order decides), the kernel and
// initramfs both on the ESP and inside the root (where an update brings them
// from), RAUC's configuration and the update CA the image trusts.
import { describe, expect, test } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { OUT, requireBuiltImage, IMAGE } from "../helpers/guest.ts";
import { keysIn, KEY_DIR } from "../../image/keys.ts";

function partitions(image: string) {
  const r = Bun.spawnSync(["sfdisk", "--json", image], { stdout: "pipe", stderr: "pipe" });
  const t = JSON.parse(r.stdout.toString()).partitiontable;
  return t.partitions.map((p: any) => ({ start: p.start * 512, size: p.size * 512, name: p.name as string }));
}

function fat(image: string, offset: number, path: string): Buffer {
  const r = Bun.spawnSync(["mtype", "-i", `${image}@@${offset}`, `::${path}`], { stdout: "pipe", stderr: "pipe", env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } });
  if (r.exitCode !== 0) throw new Error(`${path} is not on the ESP: ${r.stderr}`);
  return Buffer.from(r.stdout);
}

function inRoot(path: string): Buffer {
  const r = Bun.spawnSync(["unsquashfs", "-cat", join(OUT, "rootfs.squashfs"), path], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${path} is not in the root: ${r.stderr}`);
  return Buffer.from(r.stdout);
}

describe("A/B image layout", () => {
  test("GPT: ESP, root A with the build, root B blank, data", () => {
    requireBuiltImage();
    const parts = partitions(IMAGE);
    expect(parts.map((p: { name: string }) => p.name)).toEqual(["paio-esp", "paio-root-a", "paio-root-b", "paio-data"]);
    expect(parts[1].size).toBe(parts[2].size);
    const b = Bun.spawnSync(["sh", "-c", `dd if="$1" bs=1M skip=${parts[2].start / 1048576} count=1 status=none | tr -d '\\0' | wc -c`, "sh", IMAGE], { stdout: "pipe" });
    expect(b.stdout.toString().trim()).toBe("0");
  });

  test("the ESP boots slot A through a committed entry; the kernel in the root is the one on the ESP", () => {
    requireBuiltImage();
    const esp = partitions(IMAGE)[0].start;
    const conf = fat(IMAGE, esp, "/loader/loader.conf").toString();
    expect(conf).not.toMatch(/^default/m);
    const entry = fat(IMAGE, esp, "/loader/entries/paio-a.conf").toString();
    expect(entry).toMatch(/^options .*root=PARTLABEL=paio-root-a rauc\.slot=A$/m);
    expect(entry).not.toContain("paio.trial");
    expect(entry).toMatch(/^sort-key paio$/m);
    expect(entry).toMatch(/^version 1$/m);
    expect(entry).toMatch(/^linux \/paio\/a\/vmlinuz$/m);
    expect(fat(IMAGE, esp, "/paio/a/vmlinuz").equals(inRoot("boot/vmlinuz"))).toBe(true);
    expect(fat(IMAGE, esp, "/paio/a/initrd.img").equals(inRoot("boot/initrd.img"))).toBe(true);
  });

  test("RAUC: compatible, slots, the custom backend, and the update CA", () => {
    requireBuiltImage();
    const conf = inRoot("etc/rauc/system.conf").toString();
    expect(conf).toMatch(/^compatible=paio-x86_64$/m);
    expect(conf).toMatch(/^bootloader=custom$/m);
    expect(conf).toMatch(/^bundle-formats=-plain$/m);
    expect(conf).toContain("device=/dev/disk/by-partlabel/paio-root-a");
    expect(conf).toContain("device=/dev/disk/by-partlabel/paio-root-b");
    expect(inRoot("etc/rauc/keyring.pem").equals(readFileSync(keysIn(process.env.PAIO_KEY_DIR ?? KEY_DIR).caCert))).toBe(true);
    for (const p of ["usr/bin/rauc", "usr/bin/dbus-daemon", "usr/libexec/paio/rauc-backend", "etc/paio/units/rauc.toml", "etc/paio/units/dbus.toml"]) expect(inRoot(p).length, p).toBeGreaterThan(0);
  });
});

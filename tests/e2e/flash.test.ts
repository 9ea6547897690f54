// From `paio flash` to a booted device: the built image is flashed to a file
// with first-boot settings (host name, an SSH key, Wi-Fi, a unit, a time
// zone), then that file boots with `bin/paio qemu exec --image FILE` as a
// card would in a board. The device must come up with the host name, the
// unit running, the key accepted over SSH, the Wi-Fi network in its
// network.toml, and neither the passphrase nor its key left on the boot
// partition. The same for the Raspberry Pi image is tests/arm64/flash-rpi.test.ts
// (make test-arm64: it takes minutes on QEMU's Pi 3 model).

import { describe, expect, test } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { guestKey } from "../../qemu/net.ts";
import { requireBuiltImage } from "../helpers/guest.ts";
import { bootAndCheck, dir, flash, SSID, useFlashScratch, X86_IMAGE } from "../helpers/flash-e2e.ts";

useFlashScratch();

describe("flash, then boot", () => {
  test("x86_64: host name, unit, SSH key, Wi-Fi, no secret left on the boot partition", async () => {
    requireBuiltImage(X86_IMAGE);
    const keyDir = join(dir, "key");
    const { publicKey } = guestKey(keyDir);
    writeFileSync(publicKey, readFileSync(publicKey, "utf8").replace(/paio-dev\s*$/, "flash-e2e\n"));
    const disk = join(dir, "disk.img");
    flash(X86_IMAGE, disk, [
      "--hostname", "flash-e2e", "--ssh-key", publicKey, "--wifi", SSID, "--wifi-psk-file", join(dir, "psk"),
      "--units", join(dir, "units"), "--timezone", "Europe/Paris",
    ]);
    const out = await bootAndCheck(disk, keyDir, 600);
    expect(out).toContain("hostname=flash-e2e");
    expect(out).toContain("unit: hello running");
    expect(out).toContain("keys: 1");
    expect(out).toContain("wifi ssid: 1");
    expect(out).toContain("wifi key: 1");
    expect(out).toContain("passphrase on boot partition: 0");
    expect(out).toContain("derived key on boot partition: 0");
    expect(out).toContain("ssh login with the flashed key: yes");
  }, 1_200_000);

});

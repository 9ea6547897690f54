// The Raspberry Pi image through `paio flash`: flashed to a file with first-boot
// settings (host name, a unit, Wi-Fi), booted on QEMU's Pi 3 model as the card
// would boot in a board. Part of `make test-arm64` (minutes under emulation);
// the same test for x86_64 is in make test (tests/e2e/flash.test.ts).

import { describe, expect, test } from "vitest";
import { join } from "node:path";
import { requireBuiltImage } from "../helpers/guest.ts";
import { bootAndCheck, dir, flash, RPI_IMAGE, SSID, useFlashScratch } from "../helpers/flash-e2e.ts";

useFlashScratch();

describe("flash, then boot: Raspberry Pi", () => {
  test("Raspberry Pi image: host name and unit after booting the flashed card", async () => {
    requireBuiltImage(RPI_IMAGE);
    const disk = join(dir, "sd.img");
    flash(RPI_IMAGE, disk, ["--hostname", "flash-pi", "--units", join(dir, "units"), "--wifi", SSID, "--wifi-psk-file", join(dir, "psk")]);
    const out = await bootAndCheck(disk, undefined, 900);
    expect(out).toContain("hostname=flash-pi");
    expect(out).toContain("unit: hello running");
    expect(out).toContain("wifi ssid: 1");
    expect(out).toContain("passphrase on boot partition: 0");
    expect(out).toContain("derived key on boot partition: 0");
  }, 2_400_000);
});

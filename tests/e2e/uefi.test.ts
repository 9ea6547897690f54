// The disk image boots through UEFI firmware (OVMF) and systemd-boot from its
// EFI system partition, as it would on a PC.
import { expect, test } from "vitest";
import { bootGuest, sh } from "../helpers/guest.ts";

test("boots through OVMF and systemd-boot to the supervisor", async () => {
  const guest = await bootGuest({ boot: "uefi" });
  try {
    const out = await sh(guest, "test -d /sys/firmware/efi && echo efi; cat /proc/cmdline");
    expect(out).toContain("efi");
    expect(out).toContain("root=PARTLABEL=paio-root");
    expect(out).not.toContain("panic=-1"); // the command line came from the ESP, not from QEMU
  } finally {
    expect(await guest.shutdown()).toBe(0);
  }
}, 600_000);

// Shared by the flash-and-boot tests (tests/e2e/flash.test.ts for x86_64 in
// make test, tests/arm64/flash-rpi.test.ts for the Pi image in make test-arm64):
// flash an image to a file with first-boot settings, boot it with
// `bin/paio qemu exec --image FILE`, and report what the device shows.

import { afterAll, beforeAll, expect } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, sshArgv } from "../../qemu/net.ts";
import { REPO } from "./guest.ts";

export const X86_IMAGE = join(REPO, "out", "paio-x86_64.img");
export const RPI_IMAGE = join(REPO, "out", "arm64", "paio-rpi.img");
export const PASSPHRASE = "correct horse battery staple";
export const SSID = "PAIO-Flash-Test";

/** The test file's scratch folder: units/hello.toml, the passphrase file, the flashed disks. */
export let dir: string;

/** Call at the top of a test file: makes the scratch folder and removes it afterwards. */
export function useFlashScratch(): void {
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "paio-flash-e2e-"));
  mkdirSync(join(dir, "units"));
  writeFileSync(join(dir, "units", "hello.toml"), 'description = "Installed by paio flash"\nexec = ["/bin/sh", "-c", "while true; do sleep 5; done"]\nrestart = "always"\n');
  writeFileSync(join(dir, "psk"), `${PASSPHRASE}\n`, { mode: 0o600 });
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});
}

/** The image's bmap: beside it once `make image` writes one, else made here. */
function bmapFor(image: string): string {
  if (existsSync(`${image}.bmap`)) return `${image}.bmap`;
  const bmap = join(dir, `${image.split("/").pop()}.bmap`);
  const r = Bun.spawnSync(["bmaptool", "create", "-o", bmap, image], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`bmaptool create ${image}: ${r.stderr.toString()}`);
  return bmap;
}

export function flash(image: string, target: string, extra: string[]): void {
  const r = Bun.spawnSync([join(REPO, "bin/paio"), "flash", "--yes", "--bmap", bmapFor(image), ...extra, image, target], { stdout: "pipe", stderr: "pipe", cwd: REPO });
  const err = r.stderr.toString();
  expect(err).toMatch(/verified: read \d+ ranges? .* every sha256 matches the bmap/);
  expect(err).toMatch(/first-boot settings written to partition 1 of/);
  expect(r.exitCode, err).toBe(0);
}

/** The boot partition, found by the kernel's partition name or as partition 1 of the root's disk, mounted read-only at /run/esp. */
const MOUNT_BOOT = `
esp=""
for u in /sys/class/block/*/uevent; do grep -q '^PARTNAME=paio-esp$' "$u" && esp=$(sed -n 's/^DEVNAME=//p' "$u"); done
[ -n "$esp" ] || for u in /sys/class/block/*/uevent; do grep -q '^PARTN=1$' "$u" && grep -q '^DEVNAME=mmcblk0p1$' "$u" && esp=mmcblk0p1; done
mkdir -p /run/esp && mount -t vfat -o ro,iocharset=ascii,utf8 "/dev/$esp" /run/esp && echo "boot partition: /dev/$esp"
`;

const CHECKS = `
echo "hostname=$(hostname)"
for i in $(seq 1 120); do paio units 2>/dev/null | grep -Eq '^hello +running' && break; sleep 1; done
echo "unit: $(paio units 2>/dev/null | grep -E '^hello ' | awk '{print $1, $2}')"
echo "keys: $(grep -c flash-e2e /var/lib/paio/ssh/authorized_keys 2>/dev/null)"
echo "wifi ssid: $(grep -c '${SSID}' /var/lib/paio/network.toml 2>/dev/null)"
echo "wifi key: $(grep -c 'psk_hex *= *"[0-9a-f]\\{64\\}"' /var/lib/paio/network.toml 2>/dev/null)"
echo "timezone: $(cat /var/lib/paio/timezone /etc/timezone 2>/dev/null | head -n 1)"
${MOUNT_BOOT}
echo "passphrase on boot partition: $(grep -rl '${PASSPHRASE}' /run/esp 2>/dev/null | wc -l)"
echo "derived key on boot partition: $(grep -rl psk_hex /run/esp 2>/dev/null | wc -l)"
umount /run/esp
`;

/** Runs `bin/paio qemu exec --image FILE SCRIPT`; with an SSH port, logs in with the flashed key while the script waits for it. */
export async function bootAndCheck(disk: string, keyDir: string | undefined, timeoutS: number): Promise<string> {
  const script = join(dir, "checks.sh");
  const sshPort = keyDir ? freePort() : undefined;
  const waitSsh = keyDir ? `for i in $(seq 1 240); do [ -e /run/flash-e2e-ssh ] && break; sleep 1; done\necho "ssh login with the flashed key: $([ -e /run/flash-e2e-ssh ] && echo yes || echo no)"\n` : "";
  writeFileSync(script, `${CHECKS}${waitSsh}`);
  const argv = [join(REPO, "bin/paio"), "qemu", "exec", "--image", disk, "--timeout", String(timeoutS), ...(sshPort ? ["--ssh-port", String(sshPort)] : []), script];
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", cwd: REPO });
  let done = false;
  const out = Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]).finally(() => (done = true));
  if (keyDir && sshPort) {
    // The project's own key reaches the guest through QEMU; this one only through the card.
    while (!done) {
      const r = Bun.spawnSync(sshArgv(keyDir, sshPort, ["touch", "/run/flash-e2e-ssh"]), { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
      if (r.exitCode === 0) break;
      await Bun.sleep(3000);
    }
  }
  const [stdout, stderr, code] = await out;
  expect(code, `${stdout}\n${stderr}`).toBe(0);
  return stdout;
}


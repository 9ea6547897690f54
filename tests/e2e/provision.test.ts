// First-boot settings end to end: a copy of the built image gets settings
// written into its boot partition from the host (as `paio flash` does, or as
// Raspberry Pi Imager leaves them), boots in QEMU with persistent data, and
// comes up with its host name, its unit running, the SSH key accepted and the
// Wi-Fi stored as the network unit stores it; after poweroff, not a byte of
// the Wi-Fi key is left on the boot partition, checked from the host.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Guest } from "../../qemu/guest.ts";
import { derivePsk } from "../../lib/config/network.ts";
import { bootPartitionOf, loadFlashSettings, writeBundleToTarget } from "../../lib/provision/flash.ts";
import { bootGuest, IMAGE, requireBuiltImage, sh } from "../helpers/guest.ts";

const ENV = { ...process.env, MTOOLS_SKIP_CHECK: "1" };
const PASSPHRASE = "correct horse battery";

function run(argv: string[]): string {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", env: ENV });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** Polls a guest script until its output matches. */
async function until(guest: Guest, script: string, re: RegExp, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let out = "";
  while (Date.now() < deadline) {
    out = (await guest.sh(script)).output;
    if (re.test(out)) return out;
    await Bun.sleep(1000);
  }
  throw new Error(`no output matching ${re} within ${timeoutMs} ms from:\n${script}\n--- last output ---\n${out}`);
}

/** Logs in over SSH with `key` only (not the project's key QEMU hands over); retries while the ssh unit starts. */
async function sshWith(guest: Guest, key: string, command: string): Promise<{ code: number; output: string }> {
  let last = { code: -1, output: "" };
  for (let i = 0; i < 60; i++) {
    const r = Bun.spawnSync([
      "ssh", "-i", key, "-p", String(guest.hostPort(22)), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
      "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "root@127.0.0.1", command,
    ], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    last = { code: r.exitCode ?? -1, output: r.stdout.toString() + r.stderr.toString() };
    if (last.code === 0) return last;
    await Bun.sleep(2000);
  }
  return last;
}

/** The boot partition's raw bytes, for a secret that might linger in freed clusters. */
function bootBytes(disk: string): Buffer {
  const p = bootPartitionOf(disk);
  const buf = Buffer.alloc(p.size);
  const fd = openSync(disk, "r");
  try {
    readSync(fd, buf, 0, p.size, p.offset);
  } finally {
    closeSync(fd);
  }
  return buf;
}

describe("first-boot settings", () => {
  let dir = "";
  beforeAll(() => {
    requireBuiltImage();
    dir = mkdtempSync(join(tmpdir(), "paio-provision-e2e-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const copy = (name: string) => {
    const disk = join(dir, name);
    run(["cp", "--sparse=always", IMAGE, disk]);
    return disk;
  };

  test("written as paio flash writes them: host name, a unit, Wi-Fi, an SSH key; no key left on the boot partition", async () => {
    const disk = copy("flash.img");
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "provision-e2e", "-f", join(dir, "key")]);
    writeFileSync(join(dir, "psk"), `${PASSPHRASE}\n`);
    mkdirSync(join(dir, "units"));
    writeFileSync(join(dir, "units/hello.toml"), 'description = "Provisioned"\nexec = ["/bin/sh", "-c", "while true; do date > /run/paio/hello.ok; sleep 2; done"]\nrestart = "always"\n');
    const bundle = loadFlashSettings({ hostname: "cam-e2e", sshKeyFile: join(dir, "key.pub"), wifiSsid: "PAIO-TEST", wifiPskFile: join(dir, "psk"), unitsDir: join(dir, "units"), timezone: "Europe/Berlin" });
    const hex = derivePsk("PAIO-TEST", PASSPHRASE);
    expect(writeBundleToTarget(disk, bundle)[0]).toMatch(/written to partition 1 .*paio-config\.toml/);
    expect(bootBytes(disk).includes(hex)).toBe(true);

    const guest = await bootGuest({ disk, snapshot: false });
    try {
      const lines = guest.console.lines().join("\n");
      expect(lines).toMatch(/paio: first-boot settings from paio-config\.toml, paio-units\/hello\.toml: host name cam-e2e; time zone Europe\/Berlin; SSH keys for root: 1 added/);
      expect(lines).toMatch(/removed from the boot partition: paio-config\.toml: the key of Wi-Fi network 'PAIO-TEST'/);
      expect(lines).not.toContain(hex);
      const out = await until(guest, "hostname; paio status hello; cat /run/paio/hello.ok", /^cam-e2e\n[\s\S]*running[\s\S]*\d{2}:\d{2}/);
      expect(out).toMatch(/^cam-e2e\n/);
      const files = await sh(guest, "cat /var/lib/paio/ssh/authorized_keys; echo ---; cat /var/lib/paio/network.toml; echo ---; stat -c %a /var/lib/paio/network.toml; cat /var/lib/paio/timezone; tr '\\0' '\\n' < /proc/$(pgrep /run/paio/hello.ok)/environ | grep ^TZ=");
      expect(files).toContain(readFileSync(join(dir, "key.pub"), "utf8").trim().split(" ").slice(0, 2).join(" "));
      expect(files).toMatch(/\[interface\.wlan0\]\nssid = "PAIO-TEST"\npsk_hex = "([0-9a-f]{64})"/);
      expect(files).toContain(`psk_hex = "${hex}"`);
      expect(files).not.toContain(PASSPHRASE);
      expect(files).toMatch(/---\n600\nEurope\/Berlin\nTZ=Europe\/Berlin/);
      // The provisioned key logs in, on its own.
      const login = await sshWith(guest, join(dir, "key"), "hostname");
      expect(login.output).toBe("cam-e2e\n");
      // The next boot's supervisor finds nothing new (a restarted supervisor does not look again in this boot).
      expect(JSON.parse(await sh(guest, "cat /var/lib/paio/provisioned.json")).imports).toHaveLength(1);
    } finally {
      expect(await guest.shutdown()).toBe(0);
    }
    const config = run(["mtype", "-i", `${disk}@@${bootPartitionOf(disk).offset}`, "::paio-config.toml"]);
    expect(config).toContain('hostname = "cam-e2e"');
    expect(config).toMatch(/# the Wi-Fi key was removed from the boot partition after import/);
    // Not in any file, nor in freed clusters: no byte of the key is left.
    expect(bootBytes(disk).includes(hex)).toBe(false);
    expect(bootBytes(disk).includes(PASSPHRASE)).toBe(false);

    // A second boot imports nothing again.
    const again = await bootGuest({ disk, snapshot: false });
    try {
      expect(again.console.lines().join("\n")).not.toMatch(/first-boot settings from/);
      expect(await sh(again, "hostname")).toBe("cam-e2e\n");
    } finally {
      expect(await again.shutdown()).toBe(0);
    }
  }, 1_200_000);

  test("left by Raspberry Pi Imager (user-data and network-config): applied, the password taken off, a bad value an incident", async () => {
    const disk = copy("imager.img");
    const hex = derivePsk("Imager Net", PASSPHRASE);
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "imager-e2e", "-f", join(dir, "ikey")]);
    const pub = readFileSync(join(dir, "ikey.pub"), "utf8").trim();
    writeFileSync(join(dir, "user-data"), `#cloud-config
hostname: imager-e2e
manage_etc_hosts: true
timezone: Mars/Olympus
enable_ssh: true
users:
- name: pi
  groups: users,adm,dialout,audio,netdev,video,plugdev,cdrom,games,input,gpio,spi,i2c,render,sudo
  shell: /bin/bash
  lock_passwd: true
  ssh_authorized_keys:
    - ${pub}
  sudo: ALL=(ALL) NOPASSWD:ALL
`);
    writeFileSync(join(dir, "network-config"), `network:
  version: 2
  wifis:
    wlan0:
      dhcp4: true
      regulatory-domain: "GB"
      access-points:
        "Imager Net":
          password: "${hex}"
      optional: true
`);
    const img = `${disk}@@${bootPartitionOf(disk).offset}`;
    run(["mcopy", "-o", "-i", img, join(dir, "user-data"), join(dir, "network-config"), "::"]);

    const guest = await bootGuest({ disk, snapshot: false });
    try {
      const lines = guest.console.lines().join("\n");
      expect(lines).toMatch(/first-boot settings from user-data, network-config: host name imager-e2e; SSH keys for root: 1 added .*; network \(wlan0: Wi-Fi 'Imager Net', DHCP\)/);
      expect(lines).toMatch(/first-boot settings: PROBLEM: user-data line 4: 'Mars\/Olympus' is not a time zone/);
      expect(await sh(guest, "hostname")).toBe("imager-e2e\n");
      const net = await sh(guest, "cat /var/lib/paio/network.toml");
      expect(net).toMatch(/\[interface\.wlan0\]\nssid = "Imager Net"\npsk_hex = "[0-9a-f]{64}"\ndhcp = true/);
      expect(net).toContain(hex);
      expect(net).toMatch(/\[wired\]\ndhcp = true/);
      expect((await sshWith(guest, join(dir, "ikey"), "hostname")).output).toBe("imager-e2e\n");
      // The bad value is an incident for a person, once the agent runs.
      await until(guest, "paio incidents", /system \[proposed\] first-boot settings: user-data line 4: 'Mars\/Olympus' is not a time zone/, 240_000);
    } finally {
      expect(await guest.shutdown()).toBe(0);
    }
    const after = run(["mtype", "-i", img, "::network-config"]);
    expect(after).toMatch(/# the Wi-Fi password was removed from the boot partition after import/);
    expect(after).toContain('"Imager Net":');
    expect(bootBytes(disk).includes(hex)).toBe(false);
  }, 1_200_000);
});

// First-boot settings on the host (lib/provision/flash.ts): every setting of
// `paio flash` read and checked up front with the device's own parsers, the
// refusals that name the option, the file and the line, and the files
// written into partition 1 of small real disk images (GPT like
// paio-x86_64.img, MBR like paio-rpi.img) made here with sfdisk, mkdosfs and
// mtools, then read back with mtype.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { derivePsk } from "../../lib/config/network.ts";
import { bootPartitionOf, isEmptyBundle, loadFlashSettings, parseStaticIp, ProvisionError, writeBundleToTarget, type FlashSettingsInput, type ProvisionBundle } from "../../lib/provision/flash.ts";
import { planConfig } from "../../lib/provision/config.ts";

const MiB = 1024 * 1024;
const ENV = { ...process.env, MTOOLS_SKIP_CHECK: "1" };

function sh(argv: string[], input?: string): string {
  const r = Bun.spawnSync(argv, { stdin: input === undefined ? "ignore" : Buffer.from(input), stdout: "pipe", stderr: "pipe", env: ENV });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** A disk image with a FAT partition 1 at `offset` (GPT like the x86_64 and arm64 images, or MBR like the Pi's). */
function disk(path: string, table: "gpt" | "dos"): number {
  sh(["truncate", "-s", "48M", path]);
  if (table === "gpt") sh(["sfdisk", "-q", path], "label: gpt\nsize=20M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=paio-esp\nsize=8M, name=paio-root\nsize=8M, name=paio-data\n");
  else sh(["sfdisk", "-q", path], "label: dos\nlabel-id: 0x50a10001\nstart=4M, size=20M, type=c, bootable\nsize=8M, type=83\ntype=83\n");
  const offset = table === "gpt" ? MiB : 4 * MiB;
  const fat = `${path}.fat`;
  sh(["mkdosfs", "-n", table === "gpt" ? "PAIO-ESP" : "PAIO-BOOT", "-C", fat, String(20 * 1024)]);
  sh(["dd", `if=${fat}`, `of=${path}`, "bs=512", `seek=${offset / 512}`, "conv=notrunc", "status=none"]);
  rmSync(fat);
  return offset;
}

const mtype = (image: string, offset: number, name: string) => sh(["mtype", "-i", `${image}@@${offset}`, `::${name}`]);
const text = (b: ProvisionBundle, name: string) => new TextDecoder().decode(b.files.get(name));

describe("loadFlashSettings", () => {
  let dir = "";
  const f = (name: string) => join(dir, name);
  let pub = "";

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "paio-provision-flash-"));
    sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f", f("id_ed25519")]);
    pub = readFileSync(f("id_ed25519.pub"), "utf8").trim();
    writeFileSync(f("psk"), "correct horse battery\n");
    mkdirSync(f("units"));
    writeFileSync(f("units/camera.toml"), 'description = "Camera"\nexec = ["/bin/sh", "-c", "sleep 1000"]\n[limits]\nmemory_max = "32M"\n');
    writeFileSync(f("units/README.md"), "not a unit\n");
    writeFileSync(f("policy.toml"), 'mode = "advise"\nprotected_units = ["agent", "camera"]\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const refuses = (input: FlashSettingsInput, re: RegExp) => {
    let error: unknown;
    try {
      loadFlashSettings(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProvisionError);
    expect((error as Error).message).toMatch(re);
  };

  test("everything: one paio-config.toml and the files beside it, which the device's own reading accepts", () => {
    const b = loadFlashSettings({
      hostname: "cam-01", sshKeyFile: f("id_ed25519.pub"), wifiSsid: "HOME", wifiPskFile: f("psk"),
      staticIp: "192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.1,dns=9.9.9.9", unitsDir: f("units"), policyFile: f("policy.toml"), timezone: "Europe/Berlin",
    });
    expect([...b.files.keys()].sort()).toEqual(["paio-config.toml", "paio-policy.toml", "paio-units/camera.toml"]);
    const cfg = text(b, "paio-config.toml");
    expect(cfg).toContain('hostname = "cam-01"');
    expect(cfg).toContain('timezone = "Europe/Berlin"');
    expect(cfg).toContain(pub);
    // Only the derived key goes onto the card, never the passphrase.
    expect(cfg).toContain(`psk_hex = "${derivePsk("HOME", "correct horse battery")}"`);
    expect(cfg).not.toContain("correct horse battery");
    expect(cfg).toMatch(/\[network\.wired\]\ndhcp = true/);
    expect(cfg).toMatch(/\[network\.interface\.eth0\]\naddress = "192\.0\.2\.10\/24"\ngateway = "192\.0\.2\.1"\ndns = \["192\.0\.2\.1", "9\.9\.9\.9"\]/);
    expect(cfg).toContain('files = ["paio-units/camera.toml"]');
    expect(text(b, "paio-units/camera.toml")).toContain('description = "Camera"');
    const plan = planConfig(cfg, (n) => (b.files.has(n) ? { ok: true, text: text(b, n) } : undefined));
    expect(plan.problems).toEqual([]);
    expect(plan.settings.map((s) => s.part).sort()).toEqual(["hostname", "network", "policy", "ssh", "timezone", "unit"]);
    expect(b.summary.join("\n")).toMatch(/host name: cam-01/);
    expect(b.summary.join("\n")).not.toContain("correct horse");
    expect(isEmptyBundle(b)).toBe(false);
  });

  test("no settings: an empty bundle that writes nothing", () => {
    const b = loadFlashSettings({});
    expect(isEmptyBundle(b)).toBe(true);
    expect(writeBundleToTarget("/nonexistent", b)).toEqual([]);
  });

  test("a static address on the Wi-Fi interface keeps the network and replaces DHCP", () => {
    const b = loadFlashSettings({ wifiSsid: "HOME", wifiPskFile: f("psk"), staticIp: "10.1.2.3/16,iface=wlan0" });
    expect(text(b, "paio-config.toml")).toMatch(/\[network\.interface\.wlan0\]\nssid = "HOME"\npsk_hex = "[0-9a-f]{64}"\naddress = "10\.1\.2\.3\/16"\n/);
  });

  test("a derived 64-digit key is taken as it is", () => {
    const hex = derivePsk("HOME", "another passphrase");
    writeFileSync(f("hex"), `${hex}\n`);
    expect(text(loadFlashSettings({ wifiSsid: "HOME", wifiPskFile: f("hex") }), "paio-config.toml")).toContain(`psk_hex = "${hex}"`);
  });

  test("a private key as --ssh-key is refused, naming the file and the public one to give", () => {
    refuses({ sshKeyFile: f("id_ed25519") }, new RegExp(`--ssh-key: ${f("id_ed25519")} is a private key.*${f("id_ed25519")}\\.pub`));
  });

  test("a file that is not a public key is refused with its line", () => {
    writeFileSync(f("garbage.pub"), `${pub}\nhello world\n`);
    refuses({ sshKeyFile: f("garbage.pub") }, new RegExp(`${f("garbage.pub")} line 2: not an SSH public key`));
    writeFileSync(f("empty.pub"), "# nothing\n\n");
    refuses({ sshKeyFile: f("empty.pub") }, /holds no SSH public key/);
    writeFileSync(f("bin.pub"), Buffer.from([0xff, 0xfe, 0x00, 0x01]));
    refuses({ sshKeyFile: f("bin.pub") }, /not UTF-8 text/);
  });

  test("unreadable files are named", () => {
    refuses({ sshKeyFile: f("missing.pub") }, new RegExp(`--ssh-key: ${f("missing.pub")}: cannot read: no such file`));
    refuses({ wifiSsid: "HOME", wifiPskFile: f("missing") }, new RegExp(`--wifi-psk-file: ${f("missing")}: cannot read`));
    refuses({ policyFile: f("units") }, new RegExp(`--policy: ${f("units")}: a directory`));
    refuses({ unitsDir: f("nope") }, new RegExp(`--units: ${f("nope")}: cannot read: no such directory`));
    if (process.getuid?.() !== 0) {
      writeFileSync(f("secret.pub"), pub);
      chmodSync(f("secret.pub"), 0);
      refuses({ sshKeyFile: f("secret.pub") }, /permission denied/);
    }
  });

  test("bad host names and time zones", () => {
    for (const h of ["-cam", "cam_01", "a".repeat(64), "cam.local", ""]) refuses({ hostname: h }, /--hostname .*not a host name: letters, digits and '-'/);
    refuses({ timezone: "Mars/Olympus" }, /--timezone: 'Mars\/Olympus' is not a time zone/);
    refuses({ timezone: "../../etc/passwd" }, /--timezone: .* is not a time zone name/);
  });

  test("bad --static-ip values say what is expected", () => {
    refuses({ staticIp: "192.0.2.10" }, /--static-ip '192\.0\.2\.10': the address needs its prefix length.*expected CIDR\[,gw=IP\]/);
    refuses({ staticIp: "192.0.2.300/24" }, /'192\.0\.2\.300' is not an IPv4 address/);
    refuses({ staticIp: "192.0.2.10/24,gw=router" }, /gw=router: not an IPv4 address/);
    refuses({ staticIp: "192.0.2.10/24,via=192.0.2.1" }, /'via=192\.0\.2\.1' is not gw=, dns= or iface=/);
    refuses({ staticIp: "192.0.2.10/24,gw=192.0.2.1,gw=192.0.2.2" }, /more than one gateway/);
    expect(parseStaticIp("10.0.0.5/8,gateway=10.0.0.1,dns=1.1.1.1,iface=enp1s0")).toEqual({ iface: "enp1s0", address: "10.0.0.5/8", gateway: "10.0.0.1", dns: ["1.1.1.1"] });
  });

  test("Wi-Fi settings that do not go together", () => {
    refuses({ wifiSsid: "HOME" }, /--wifi 'HOME' needs its passphrase/);
    refuses({ wifiPskFile: f("psk") }, /without a network: add --wifi SSID/);
    refuses({ wifiSsid: "HOME", wifiPskFile: f("psk"), wifiPskStdin: true }, /not both/);
    refuses({ wifiSsid: "x".repeat(33), wifiPskFile: f("psk") }, /1 to 32 bytes/);
    writeFileSync(f("short"), "short\n");
    refuses({ wifiSsid: "HOME", wifiPskFile: f("short") }, /8 to 63 printable ASCII characters/);
    writeFileSync(f("two"), "first line\nsecond line\n");
    refuses({ wifiSsid: "HOME", wifiPskFile: f("two") }, /2 lines; put only the passphrase/);
  });

  test("a bad unit file is refused with the unit parser's file, line and field", () => {
    mkdirSync(f("badunits"));
    writeFileSync(f("badunits/ok.toml"), 'exec = ["/bin/true"]\n');
    writeFileSync(f("badunits/web.toml"), 'exec = ["/bin/httpd"]\nrestart = "sometimes"\n');
    refuses({ unitsDir: f("badunits") }, new RegExp(`--units: ${f("badunits/web.toml")} line 2 field 'restart'`));
    mkdirSync(f("nounits"));
    refuses({ unitsDir: f("nounits") }, /holds no unit files/);
  });

  test("a bad policy is refused with the policy parser's file, line and field", () => {
    writeFileSync(f("bad-policy.toml"), 'mode = "auto"\n[agent]\nalone = ["low", "reckless"]\n');
    refuses({ policyFile: f("bad-policy.toml") }, new RegExp(`--policy: ${f("bad-policy.toml")} line 3 field 'agent.alone': 'reckless' is not a risk level`));
  });
});

describe("writeBundleToTarget", () => {
  let dir = "";
  let bundle: ProvisionBundle;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "paio-provision-write-"));
    writeFileSync(join(dir, "psk"), "correct horse battery\n");
    sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f", join(dir, "key")]);
    mkdirSync(join(dir, "units"));
    writeFileSync(join(dir, "units/camera.toml"), 'exec = ["/bin/sleep", "1000"]\n');
    bundle = loadFlashSettings({ hostname: "cam-01", wifiSsid: "HOME", wifiPskFile: join(dir, "psk"), sshKeyFile: join(dir, "key.pub"), unitsDir: join(dir, "units") });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const table of ["gpt", "dos"] as const) {
    test(`into partition 1 of a ${table === "gpt" ? "GPT (x86_64/arm64 UEFI)" : "MBR (Raspberry Pi)"} image, read back with mtype`, () => {
      const img = join(dir, `${table}.img`);
      const offset = disk(img, table);
      expect(bootPartitionOf(img)).toMatchObject({ offset, label: table === "gpt" ? "PAIO-ESP" : "PAIO-BOOT" });
      const out = writeBundleToTarget(img, bundle);
      expect(out[0]).toMatch(new RegExp(`written to partition 1 of ${img} \\(FAT "PAIO-(ESP|BOOT)"\\): .*paio-config\\.toml`));
      expect(mtype(img, offset, "paio-config.toml")).toBe(text(bundle, "paio-config.toml"));
      expect(mtype(img, offset, "paio-units/camera.toml")).toBe('exec = ["/bin/sleep", "1000"]\n');
      // Writing again (a second flash of the same card) replaces the files.
      writeBundleToTarget(img, loadFlashSettings({ hostname: "cam-02" }));
      expect(mtype(img, offset, "paio-config.toml")).toContain('hostname = "cam-02"');
      // The other partitions are untouched: the data partition is still blank.
      const data = readFileSync(img).subarray(40 * MiB, 41 * MiB);
      expect(data.every((b) => b === 0)).toBe(true);
    });
  }

  test("targets that are not a PAIO disk are refused before anything is written", () => {
    const blank = join(dir, "blank.img");
    sh(["truncate", "-s", "8M", blank]);
    expect(() => writeBundleToTarget(blank, bundle)).toThrow(/has no partition table.*is a PAIO image written to it/);
    const noFat = join(dir, "nofat.img");
    sh(["truncate", "-s", "16M", noFat]);
    sh(["sfdisk", "-q", noFat], "label: gpt\nsize=8M, name=paio-esp\n");
    expect(() => writeBundleToTarget(noFat, bundle)).toThrow(/partition 1 is not a FAT file system/);
    expect(() => writeBundleToTarget(join(dir, "missing.img"), bundle)).toThrow(ProvisionError);
    expect(() => writeBundleToTarget(dir, bundle)).toThrow(/neither a disk image file nor a block device/);
  });

  test("a full boot partition is an error that says so", () => {
    const img = join(dir, "tiny.img");
    sh(["truncate", "-s", "4M", img]);
    sh(["sfdisk", "-q", img], "label: dos\nstart=1M, size=1M, type=c\n");
    const fat = `${img}.fat`;
    sh(["mkdosfs", "-C", fat, "1024"]);
    sh(["dd", `if=${fat}`, `of=${img}`, "bs=512", "seek=2048", "conv=notrunc", "status=none"]);
    rmSync(fat);
    const big = new Map([["paio-config.toml", new Uint8Array(2 * MiB).fill(0x23)]]);
    expect(() => writeBundleToTarget(img, { files: big, summary: [] })).toThrow(/cannot write paio-config\.toml on the boot partition/);
  });
});

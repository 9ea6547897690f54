// First-boot settings on the device (lib/provision/import.ts), run here on a
// folder standing for the boot partition and one for /var/lib/paio: what is
// installed where, the Wi-Fi key taken off the boot partition, nothing
// imported twice and a changed file imported again, bad parts reported with
// their file and line while the rest applies, a data partition that is not
// persistent; and the boot partition found from sysfs (GPT name or partition
// 1 of the root disk), and problems turned into the agent's incidents.
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { derivePsk, parseNetworkFile } from "../../lib/config/network.ts";
import { findBootPartition } from "../../lib/provision/firstboot.ts";
import { describeReport, importFirstBootSettings, readRecord, type ImportOptions } from "../../lib/provision/import.ts";
import { reportProvisioningProblems, type IncidentSink } from "../../lib/provision/incidents.ts";

const REPO = join(import.meta.dirname, "../..");
const IMAGE_NETWORK = join(REPO, "image/overlay/etc/paio/network.toml");
const ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIUvRAp09cnvoxpPmdlCDBb/oP7f20knh78HDiQcg6/Y me@laptop";
const PASS = "correct horse battery";
const HEX = derivePsk("HOME", PASS);

const CONFIG = `version = 1
[device]
hostname = "cam-01"
timezone = "Europe/Berlin"

[ssh]
authorized_keys = ["${ED}"]

[network]
ntp = ["pool.ntp.org"]
[network.wired]
dhcp = true
[network.interface.wlan0]
ssid = "HOME"
psk = "${PASS}"
dhcp = true

[units]
files = ["paio-units/camera.toml"]

[policy]
file = "paio-policy.toml"
`;

let dir = "";
let boot = "";
let state = "";
let hostnames: string[] = [];
let bootWrites = 0;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "paio-provision-import-"));
  boot = join(dir, "boot");
  state = join(dir, "state");
  mkdirSync(join(boot, "paio-units"), { recursive: true });
  mkdirSync(state);
  hostnames = [];
  bootWrites = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function run(opts: Partial<ImportOptions> = {}) {
  return importFirstBootSettings(
    { boot, state, imageNetwork: IMAGE_NETWORK, imageUnits: join(REPO, "image/overlay/etc/paio/units") },
    { persistent: true, setHostname: (h) => hostnames.push(h), beforeBootWrite: () => bootWrites++, now: () => Date.UTC(2025, 0, 2), ...opts },
  );
}

/** Every byte on the boot partition, for secrets. */
function bootBytes(): string {
  return (readdirSync(boot, { recursive: true }) as string[])
    .map((n) => join(boot, n))
    .filter((p) => statSync(p).isFile())
    .map((p) => readFileSync(p, "utf8"))
    .join("\n");
}

function writeFullConfig(): void {
  writeFileSync(join(boot, "paio-config.toml"), CONFIG);
  writeFileSync(join(boot, "paio-units/camera.toml"), 'description = "Camera"\nexec = ["/bin/sleep", "1000"]\n');
  writeFileSync(join(boot, "paio-policy.toml"), 'mode = "advise"\n');
}

describe("paio-config.toml", () => {
  test("every part is installed where the system reads it; the Wi-Fi key leaves the boot partition", () => {
    writeFullConfig();
    const r = run();
    expect(r.problems).toEqual([]);
    expect(readFileSync(join(state, "hostname"), "utf8")).toBe("cam-01\n");
    expect(hostnames).toEqual(["cam-01"]);
    expect(readFileSync(join(state, "timezone"), "utf8")).toBe("Europe/Berlin\n");
    expect(readFileSync(join(state, "ssh/authorized_keys"), "utf8")).toBe(`${ED}\n`);
    expect(statSync(join(state, "ssh/authorized_keys")).mode & 0o777).toBe(0o600);
    const net = readFileSync(join(state, "network.toml"), "utf8");
    expect(statSync(join(state, "network.toml")).mode & 0o777).toBe(0o600);
    // Stored as the network unit stores it: the derived key, never the passphrase.
    expect(net).toContain(`psk_hex = "${HEX}"`);
    expect(net).not.toContain(PASS);
    const parsed = parseNetworkFile(net, "network.toml");
    expect(parsed.ok && parsed.config.interfaces[0]).toMatchObject({ name: "wlan0", wifi: { ssid: "HOME", pskHex: HEX } });
    expect(parsed.ok && parsed.config.ntp).toEqual(["pool.ntp.org"]);
    expect(readFileSync(join(state, "units/camera.toml"), "utf8")).toContain("Camera");
    expect(readFileSync(join(state, "policy.toml"), "utf8")).toBe('mode = "advise"\n');
    // The boot partition keeps its settings but no key; the device keeps the key for later imports.
    const after = readFileSync(join(boot, "paio-config.toml"), "utf8");
    expect(after).toContain('hostname = "cam-01"');
    expect(after).toMatch(/# the Wi-Fi key was removed from the boot partition after import on 2025-01-02/);
    expect(bootBytes()).not.toContain(PASS);
    expect(bootBytes()).not.toContain(HEX);
    expect(bootBytes()).not.toMatch(/psk/);
    expect(bootWrites).toBe(1);
    expect(JSON.parse(readFileSync(join(state, "provision/wifi-keys.json"), "utf8"))).toEqual({ HOME: HEX });
    expect(statSync(join(state, "provision/wifi-keys.json")).mode & 0o777).toBe(0o600);
    // The record says what happened and holds nothing secret.
    const record = readFileSync(join(state, "provisioned.json"), "utf8");
    expect(record).not.toContain(PASS);
    expect(record).not.toContain(HEX);
    expect(readRecord(state).imports[0]).toMatchObject({ id: 1, source: "paio-config", files: ["paio-config.toml", "paio-units/camera.toml", "paio-policy.toml"], problems: [] });
    expect(r.secretsRemoved).toEqual(["paio-config.toml: the key of Wi-Fi network 'HOME'"]);
    const lines = describeReport(r).join("\n");
    expect(lines).toMatch(/host name cam-01; time zone Europe\/Berlin; SSH keys for root: 1 added .*; network \(wlan0: Wi-Fi 'HOME', DHCP; other wired interfaces: DHCP\); unit camera; policy/);
    expect(lines).not.toContain(HEX);
  });

  test("the same files are not imported twice; a changed file is, and the key kept on the device is put back", () => {
    writeFullConfig();
    run();
    const netBefore = statSync(join(state, "network.toml")).mtimeMs;
    const again = run();
    expect(again.imported).toEqual([]);
    expect(again.unchanged).toEqual(["paio-config"]);
    expect(bootWrites).toBe(1);
    expect(statSync(join(state, "network.toml")).mtimeMs).toBe(netBefore);
    // A person edits the file on the card later (its key is gone): a new import, and the Wi-Fi still has its key.
    const edited = readFileSync(join(boot, "paio-config.toml"), "utf8").replace("cam-01", "cam-02");
    writeFileSync(join(boot, "paio-config.toml"), edited);
    const third = run();
    expect(third.problems).toEqual([]);
    expect(readFileSync(join(state, "hostname"), "utf8")).toBe("cam-02\n");
    expect(readFileSync(join(state, "network.toml"), "utf8")).toContain(`psk_hex = "${HEX}"`);
    expect(readFileSync(join(state, "ssh/authorized_keys"), "utf8")).toBe(`${ED}\n`);
    expect(third.imported[0]!.applied.join(" ")).toMatch(/1 already allowed/);
    expect(readRecord(state).imports.map((i) => i.id)).toEqual([1, 2]);
  });

  test("a bad part is reported with its file and line; the other parts apply", () => {
    writeFileSync(join(boot, "paio-config.toml"), CONFIG.replace('hostname = "cam-01"', 'hostname = "cam_01"').replace(`authorized_keys = ["${ED}"]`, `authorized_keys = ["${ED}", "ssh-rsa nonsense"]`));
    writeFileSync(join(boot, "paio-units/camera.toml"), 'exec = ["/bin/sleep"]\nrestart = "sometimes"\n');
    writeFileSync(join(boot, "paio-policy.toml"), 'mode = "yolo"\n');
    const r = run();
    const messages = r.problems.map((p) => p.message);
    expect(messages).toContainEqual(expect.stringMatching(/^paio-config\.toml line 3 field 'device\.hostname': 'cam_01' is not a host name/));
    expect(messages).toContainEqual(expect.stringMatching(/^paio-config\.toml line 7 field 'ssh\.authorized_keys': key 2: the key data does not hold a ssh-rsa key.*; the other keys were applied/));
    expect(messages).toContainEqual(expect.stringMatching(/^paio-units\/camera\.toml line 2 field 'restart'.*this unit was not installed/));
    expect(messages).toContainEqual(expect.stringMatching(/^paio-policy\.toml line 1 field 'mode'.*the policy was not installed/));
    expect(existsSync(join(state, "hostname"))).toBe(false);
    expect(existsSync(join(state, "units/camera.toml"))).toBe(false);
    expect(existsSync(join(state, "policy.toml"))).toBe(false);
    expect(readFileSync(join(state, "timezone"), "utf8")).toBe("Europe/Berlin\n");
    expect(readFileSync(join(state, "ssh/authorized_keys"), "utf8")).toBe(`${ED}\n`);
    expect(readFileSync(join(state, "network.toml"), "utf8")).toContain(HEX);
    expect(readRecord(state).imports[0]!.problems).toHaveLength(4);
    expect(describeReport(r).filter((l) => l.includes("PROBLEM"))).toHaveLength(4);
  });

  test("a bad network part: its line in paio-config.toml, nothing of it applied, and still no key left on the boot partition", () => {
    writeFileSync(join(boot, "paio-config.toml"), `[device]\nhostname = "cam-01"\n[network.interface.wlan0]\nssid = "HOME"\npsk = "${PASS}"\ngateway = "192.0.2.1"\n`);
    const r = run();
    expect(r.problems.map((p) => p.message)).toEqual([expect.stringMatching(/^paio-config\.toml line 6 field 'network\.interface\.wlan0\.gateway': a gateway needs a static address.*the network settings were not applied/)]);
    expect(existsSync(join(state, "network.toml"))).toBe(false);
    expect(readFileSync(join(state, "hostname"), "utf8")).toBe("cam-01\n");
    expect(bootBytes()).not.toContain(PASS);
    // The key stayed on the device: once the person fixes the gateway line on the card, the import completes.
    writeFileSync(join(boot, "paio-config.toml"), readFileSync(join(boot, "paio-config.toml"), "utf8").replace('gateway = "192.0.2.1"', ""));
    const fixed = run();
    expect(fixed.problems).toEqual([]);
    expect(readFileSync(join(state, "network.toml"), "utf8")).toContain(`psk_hex = "${HEX}"`);
  });

  test("a file that is not valid TOML changes nothing, is left as it is, and its line is named", () => {
    const broken = `[device]\nhostname = "cam-01"\n[network.interface.wlan0]\nssid = "HOME"\npsk = "${PASS}\n`;
    writeFileSync(join(boot, "paio-config.toml"), broken);
    const r = run();
    expect(r.problems.map((p) => p.message)).toContainEqual(expect.stringMatching(/^paio-config\.toml line 5: not valid TOML.*nothing in paio-config\.toml was applied/));
    expect(r.problems.map((p) => p.message)).toContainEqual(expect.stringMatching(/left as it is on the boot partition, and it may hold the Wi-Fi key/));
    expect(readdirSync(state)).toEqual(["provisioned.json"]);
    expect(readFileSync(join(boot, "paio-config.toml"), "utf8")).toBe(broken);
    expect(bootWrites).toBe(0);
    // Reported once: the same broken file at the next boot is not reported again.
    expect(run().unchanged).toEqual(["paio-config"]);
  });

  test("unknown fields, missing files and paths out of the boot partition are refused", () => {
    writeFileSync(join(boot, "paio-config.toml"), '[device]\nhostnme = "x"\n');
    expect(run().problems[0]!.message).toMatch(/line 2 field 'device\.hostnme': unknown field \(did you mean 'device\.hostname'\?\)/);
    writeFileSync(join(boot, "paio-config.toml"), '[units]\nfiles = ["paio-units/../../etc/shadow.toml"]\n');
    expect(run().problems[0]!.message).toMatch(/field 'units\.files': '.*' is not a unit file in paio-units\//);
    writeFileSync(join(boot, "paio-config.toml"), '[units]\nfiles = ["paio-units/gone.toml"]\n[policy]\nfile = "gone.toml"\n');
    const r = run();
    expect(r.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/^paio-units\/gone\.toml: missing \(paio-config\.toml lists it under \[units\] files\)/),
      expect.stringMatching(/^gone\.toml: missing/),
    ]);
  });

  test("files that are not regular files are named and not read", () => {
    mkdirSync(join(boot, "paio-config.toml"));
    const r = run();
    expect(r.problems[0]!.message).toMatch(/^paio-config\.toml: a directory, not a regular file/);
    rmSync(join(boot, "paio-config.toml"), { recursive: true });
    writeFileSync(join(boot, "paio-config.toml"), "#".repeat(300 * 1024));
    expect(run().problems[0]!.message).toMatch(/^paio-config\.toml: too large \(307200 bytes, at most 262144/);
  });

  test("a long file that is not valid TOML is refused at once, without its line", () => {
    writeFileSync(join(boot, "paio-config.toml"), `${Array.from({ length: 20_000 }, (_, i) => `# line ${i}`).join("\n")}\n= broken\n`);
    const t = performance.now();
    const r = run();
    expect(performance.now() - t).toBeLessThan(5000);
    expect(r.problems[0]!.message).toMatch(/^paio-config\.toml: not valid TOML \(.*\); check it with a TOML checker, it is too long for this device to find the line; nothing in paio-config\.toml was applied/);
  });

  test("a data partition that is not persistent: applied for this boot, the boot partition left as it is", () => {
    writeFullConfig();
    const r = run({ persistent: false });
    expect(r.problems).toEqual([]);
    expect(readFileSync(join(state, "network.toml"), "utf8")).toContain(HEX);
    expect(readFileSync(join(boot, "paio-config.toml"), "utf8")).toBe(CONFIG);
    expect(bootWrites).toBe(0);
    expect(r.notes.join(" ")).toMatch(/not persistent.*apply to this boot only/);
  });

  test("a boot partition that cannot be written: the key stays, and that is a problem", () => {
    writeFullConfig();
    const r = run({ beforeBootWrite: () => {
      throw new Error("read-only file system");
    } });
    expect(r.problems.map((p) => p.message)).toEqual([expect.stringMatching(/could not remove the key of Wi-Fi network 'HOME' from paio-config\.toml on the boot partition: read-only file system; delete the file by hand/)]);
    expect(readFileSync(join(state, "network.toml"), "utf8")).toContain(HEX);
  });

  test("a key the scrubbing cannot cut out alone: the file is replaced by a note", () => {
    writeFileSync(join(boot, "paio-config.toml"), `[network.interface.wlan0]\nssid = "HOME"\npsk_hex = """\n${HEX}"""\n`);
    const r = run();
    expect(r.problems).toEqual([]);
    const net = parseNetworkFile(readFileSync(join(state, "network.toml"), "utf8"), "network.toml");
    expect(net.ok && net.config.interfaces[0]!.wifi).toEqual({ ssid: "HOME", pskHex: HEX });
    expect(readFileSync(join(boot, "paio-config.toml"), "utf8")).toMatch(/^# paio-config\.toml was imported by PAIO on 2025-01-02 and removed/);
    expect(bootBytes()).not.toContain(HEX);
  });
});

describe("the boot partition, found from sysfs", () => {
  /** A fake /sys/class/block with disks and partitions as the kernel lists them. */
  function sysfs(root: string, disk: string, parts: { n: number; name?: string; uuid?: string }[], major = "254"): void {
    const devs = join(root, "devices/virtual/block", disk);
    mkdirSync(join(root, "class/block"), { recursive: true });
    mkdirSync(devs, { recursive: true });
    writeFileSync(join(devs, "uevent"), `MAJOR=${major}\nMINOR=0\nDEVNAME=${disk}\nDEVTYPE=disk\n`);
    symlinkSync(devs, join(root, "class/block", disk));
    for (const p of parts) {
      const name = `${disk}${/\d$/.test(disk) ? "p" : ""}${p.n}`;
      mkdirSync(join(devs, name));
      writeFileSync(join(devs, name, "uevent"), `MAJOR=${major}\nMINOR=${p.n}\nDEVNAME=${name}\nDEVTYPE=partition\nPARTN=${p.n}\n${p.name ? `PARTNAME=${p.name}\n` : ""}${p.uuid ? `PARTUUID=${p.uuid}\n` : ""}`);
      symlinkSync(join(devs, name), join(root, "class/block", name));
    }
  }

  test("GPT: the partition named paio-esp", () => {
    const sys = join(dir, "sys");
    sysfs(sys, "vda", [{ n: 1, name: "paio-esp" }, { n: 2, name: "paio-root" }, { n: 3, name: "paio-data" }]);
    mkdirSync(join(dir, "proc"));
    writeFileSync(join(dir, "proc/cmdline"), "console=ttyS0 root=PARTLABEL=paio-root ro\n");
    expect(findBootPartition(sys, join(dir, "proc"))).toEqual({ dev: "/dev/vda1", how: "partition named paio-esp" });
  });

  test("MBR (the Pi): partition 1 of the disk root=PARTUUID= is on", () => {
    const sys = join(dir, "sys");
    sysfs(sys, "sda", [{ n: 1, uuid: "aaaa0001-01" }], "8");
    sysfs(sys, "mmcblk0", [{ n: 1, uuid: "50a10001-01" }, { n: 2, uuid: "50a10001-02" }, { n: 3, uuid: "50a10001-03" }], "179");
    mkdirSync(join(dir, "proc"));
    writeFileSync(join(dir, "proc/cmdline"), "console=ttyS1,115200 root=PARTUUID=50A10001-02 ro paio.data=PARTUUID=50a10001-03\n");
    expect(findBootPartition(sys, join(dir, "proc"))).toEqual({ dev: "/dev/mmcblk0p1", how: "partition 1 of mmcblk0, the root disk" });
  });

  test("without root= the device mounted at /, and paio.boot= chooses", () => {
    const sys = join(dir, "sys");
    sysfs(sys, "vdb", [{ n: 1 }, { n: 2 }], "253");
    mkdirSync(join(dir, "proc/self"), { recursive: true });
    writeFileSync(join(dir, "proc/cmdline"), "console=ttyS0\n");
    writeFileSync(join(dir, "proc/self/mountinfo"), "20 1 253:2 / / ro,relatime - squashfs /dev/root ro\n21 20 0:5 / /dev rw - devtmpfs devtmpfs rw\n");
    expect(findBootPartition(sys, join(dir, "proc"))).toEqual({ dev: "/dev/vdb1", how: "partition 1 of vdb, the root disk" });
    writeFileSync(join(dir, "proc/cmdline"), "paio.boot=/dev/vdb2\n");
    expect(findBootPartition(sys, join(dir, "proc"))).toEqual({ dev: "/dev/vdb2", how: "paio.boot=/dev/vdb2" });
    writeFileSync(join(dir, "proc/cmdline"), "paio.boot=PARTLABEL=nope\n");
    expect(findBootPartition(sys, join(dir, "proc"))).toEqual({ error: "no device PARTLABEL=nope (paio.boot= on the kernel command line)" });
    writeFileSync(join(dir, "proc/self/mountinfo"), "");
    writeFileSync(join(dir, "proc/cmdline"), "root=/dev/nothing\n");
    expect(findBootPartition(sys, join(dir, "proc"))).toEqual({ error: "cannot tell which disk holds the root file system (root=/dev/nothing)" });
  });
});

describe("problems become the agent's incidents", () => {
  function sink(): IncidentSink & { incidents: { summary: string; signature: string; state?: string }[]; audits: Record<string, unknown>[] } {
    const kv = new Map<string, string>();
    const incidents: { summary: string; signature: string; state?: string }[] = [];
    const audits: Record<string, unknown>[] = [];
    return {
      incidents, audits,
      get: (k) => kv.get(k),
      set: (k, v) => void kv.set(k, v),
      openIncident: (i) => {
        incidents.push(i);
        return { id: incidents.length };
      },
      audit: { append: (_kind, _unit, body) => audits.push(body) },
    };
  }

  test("each problem once, with its file and line; a later import's problems too", () => {
    writeFileSync(join(boot, "paio-config.toml"), '[device]\nhostname = "-bad-"\ntimezone = "Nowhere/Town"\n');
    run();
    const k = sink();
    expect(reportProvisioningProblems(k, state)).toBe(2);
    expect(k.incidents.map((i) => i.summary)).toEqual([
      expect.stringMatching(/^first-boot settings: paio-config\.toml line 2 field 'device\.hostname'/),
      expect.stringMatching(/^first-boot settings: paio-config\.toml line 3 field 'device\.timezone'/),
    ]);
    expect(k.incidents[0]).toMatchObject({ signature: "provisioning:hostname:paio-config.toml", state: "proposed" });
    expect(k.audits[0]).toMatchObject({ class: "provisioning", justification: expect.stringMatching(/a person must fix there/) });
    expect(reportProvisioningProblems(k, state)).toBe(0);
    writeFileSync(join(boot, "paio-config.toml"), '[device]\nhostname = "cam-01"\n');
    run();
    expect(reportProvisioningProblems(k, state)).toBe(0);
    writeFileSync(join(boot, "paio-config.toml"), '[device]\nhostname = "cam 01"\n');
    run();
    expect(reportProvisioningProblems(k, state)).toBe(1);
  });
});

// The files Raspberry Pi Imager writes when a person customises the OS
// (cloud-init NoCloud user-data and network-config), as PAIO reads them: the
// host name, time zone, users' SSH keys and the Wi-Fi, applied like
// paio-config.toml's; the password and password hashes taken off the boot
// partition; and hostile YAML (anchors, tags, deep nesting, tabs, broken
// quotes, binary) reported with the file, the line and what to write,
// changing nothing.
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { derivePsk, parseNetworkFile } from "../../lib/config/network.ts";
import { planNetworkConfig, planUserData } from "../../lib/provision/cloud-init.ts";
import { importFirstBootSettings, readRecord } from "../../lib/provision/import.ts";
import { parseYaml, YamlError } from "../../lib/provision/yaml.ts";

const REPO = join(import.meta.dirname, "../..");
const IMAGE_NETWORK = join(REPO, "image/overlay/etc/paio/network.toml");
const ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIUvRAp09cnvoxpPmdlCDBb/oP7f20knh78HDiQcg6/Y me@laptop";
const RSA_BLOB = Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from("ssh-rsa"), Buffer.alloc(40, 1)]).toString("base64");
const RSA = `ssh-rsa ${RSA_BLOB} other@desk`;
const HEX = derivePsk("My Home", "correct horse battery");

/** What Imager 2 writes in user-data for a host name, a user with a key and a password, a time zone and a keyboard. */
const USER_DATA = `#cloud-config
hostname: cam-01
manage_etc_hosts: true
packages:
- avahi-daemon

apt:
  conf: |
    Acquire {
      Check-Date "false";
    };

timezone: Europe/London
keyboard:
  model: pc105
  layout: "gb"
enable_ssh: true
users:
- name: pi
  groups: users,adm,dialout,audio,netdev,video,plugdev,cdrom,games,input,gpio,spi,i2c,render,sudo
  shell: /bin/bash
  lock_passwd: false
  passwd: $5$KtI1s5WkXl$1m5yYyX5lU0M5kY8LQ0v8m6d3b9S6qg6aZk7s3cL0l8
  ssh_authorized_keys:
    - ${ED}
    - ${RSA}
  sudo: ALL=(ALL) NOPASSWD:ALL

ssh_pwauth: true
`;

/** Imager 2's network-config: the key it derived from the passphrase, never the passphrase. */
const NETWORK_CONFIG = `network:
  version: 2
  wifis:
    wlan0:
      dhcp4: true
      regulatory-domain: "GB"
      access-points:
        "My Home":
          password: "${HEX}"
      optional: true
`;

/** Imager 1.x (QML) wrote version 2 at the top and the renderer inside wifis. */
const NETWORK_CONFIG_V1 = `version: 2
wifis:
  renderer: networkd
  wlan0:
    dhcp4: true
    optional: true
    access-points:
      "My Home":
        password: "${HEX}"
        hidden: true
`;

let dir = "";
let boot = "";
let state = "";
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "paio-provision-ci-"));
  boot = join(dir, "boot");
  state = join(dir, "state");
  mkdirSync(boot);
  mkdirSync(state);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const run = (persistent = true) => importFirstBootSettings({ boot, state, imageNetwork: IMAGE_NETWORK }, { persistent, now: () => Date.UTC(2025, 0, 2) });
const bootText = () => readdirSync(boot).map((n) => readFileSync(join(boot, n), "utf8")).join("\n");

describe("Raspberry Pi Imager's files", () => {
  test("user-data and network-config: host name, time zone, every user's keys for root, the Wi-Fi merged into the image's network", () => {
    writeFileSync(join(boot, "user-data"), USER_DATA);
    writeFileSync(join(boot, "network-config"), NETWORK_CONFIG);
    writeFileSync(join(boot, "meta-data"), "instance_id: rpi-imager-1\n");
    const r = run();
    expect(r.problems).toEqual([]);
    expect(readFileSync(join(state, "hostname"), "utf8")).toBe("cam-01\n");
    expect(readFileSync(join(state, "timezone"), "utf8")).toBe("Europe/London\n");
    expect(readFileSync(join(state, "ssh/authorized_keys"), "utf8")).toBe(`${ED}\n${RSA}\n`);
    const net = readFileSync(join(state, "network.toml"), "utf8");
    const parsed = parseNetworkFile(net, "network.toml");
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    // The image's wired DHCP and time servers stay; wlan0 joins the network with the derived key.
    expect(parsed.config.wired).toMatchObject({ dhcp: true });
    expect(parsed.config.ntp.length).toBeGreaterThan(0);
    expect(parsed.config.interfaces).toEqual([expect.objectContaining({ name: "wlan0", dhcp: true, wifi: { ssid: "My Home", pskHex: HEX } })]);
    // Off the boot partition: the Wi-Fi key and the password hash.
    expect(bootText()).not.toContain(HEX);
    expect(bootText()).not.toContain("$5$KtI1s5");
    expect(readFileSync(join(boot, "network-config"), "utf8")).toMatch(/# the Wi-Fi password was removed from the boot partition after import on 2025-01-02/);
    const ud = readFileSync(join(boot, "user-data"), "utf8");
    expect(ud.startsWith("#cloud-config\n")).toBe(true);
    expect(ud).toContain("hostname: cam-01");
    expect(r.secretsRemoved).toEqual(["user-data: the users' password hashes (this device has no password logins)", "network-config: the password of Wi-Fi network 'My Home'"]);
    expect(r.notes.join("\n")).toMatch(/user-data: not used on this device: manage_etc_hosts, packages, apt, keyboard, enable_ssh, ssh_pwauth/);
    expect(r.notes.join("\n")).toMatch(/wlan0: 'regulatory-domain' is not used/);
    expect(JSON.stringify(readRecord(state))).not.toContain(HEX);
    // The next boot: nothing new.
    expect(run().unchanged).toEqual(["cloud-init"]);
  });

  test("Imager 1's network-config and a hidden network", () => {
    writeFileSync(join(boot, "network-config"), NETWORK_CONFIG_V1);
    const r = run();
    expect(r.problems).toEqual([]);
    expect(readFileSync(join(state, "network.toml"), "utf8")).toContain(`psk_hex = "${HEX}"`);
    expect(r.notes.join("\n")).toMatch(/'My Home' is marked hidden/);
    expect(bootText()).not.toContain(HEX);
  });

  test("a passphrase written by hand is stored derived; static addresses, gateway and name servers", () => {
    writeFileSync(join(boot, "network-config"), `version: 2
ethernets:
  eth0:
    dhcp4: false
    addresses: [192.0.2.10/24, "2001:db8::10/64"]
    routes:
      - to: default
        via: 192.0.2.1
    nameservers:
      addresses: [192.0.2.1, 9.9.9.9]
wifis:
  wlan0:
    access-points:
      "My Home":
        auth:
          key-management: psk
          password: 'correct horse battery'
`);
    const r = run();
    expect(r.problems).toEqual([]);
    const net = readFileSync(join(state, "network.toml"), "utf8");
    expect(net).not.toContain("correct horse battery");
    const parsed = parseNetworkFile(net, "network.toml");
    expect(parsed.ok && parsed.config.interfaces).toEqual([
      expect.objectContaining({ name: "eth0", address: "192.0.2.10/24", gateway: "192.0.2.1", dns: ["192.0.2.1", "9.9.9.9"], dhcp: false }),
      expect.objectContaining({ name: "wlan0", wifi: { ssid: "My Home", pskHex: HEX } }),
    ]);
    expect(r.notes.join("\n")).toMatch(/only IPv4 addresses are used/);
    expect(bootText()).not.toContain("correct horse battery");
  });

  test("after the password is gone, an edited network-config still joins with the key the device kept", () => {
    writeFileSync(join(boot, "network-config"), NETWORK_CONFIG);
    run();
    const scrubbed = readFileSync(join(boot, "network-config"), "utf8");
    writeFileSync(join(boot, "network-config"), scrubbed.replace("dhcp4: true", "dhcp4: true\n      addresses: [192.0.2.20/24]"));
    const r = run();
    expect(r.problems).toEqual([]);
    const net = readFileSync(join(state, "network.toml"), "utf8");
    expect(net).toContain(`psk_hex = "${HEX}"`);
    expect(net).toContain('address = "192.0.2.20/24"');
  });

  test("what this device cannot do is refused with the line: open networks, version 1, a script as user-data", () => {
    writeFileSync(join(boot, "network-config"), 'version: 2\nwifis:\n  wlan0:\n    access-points:\n      "Cafe": {}\n');
    expect(run().problems[0]!.message).toMatch(/^network-config line 3: wifis\.wlan0: the network 'Cafe' has no password: open networks are not supported/);
    writeFileSync(join(boot, "network-config"), "version: 1\nconfig:\n  - type: physical\n    name: eth0\n");
    expect(run().problems[0]!.message).toMatch(/^network-config line 1: version '1': this device reads network-config version 2/);
    writeFileSync(join(boot, "user-data"), "#!/bin/sh\nrm -rf /\n");
    expect(run().problems.map((p) => p.message)).toContainEqual(expect.stringMatching(/^user-data line 1: a script; this device reads only cloud-config files/));
    expect(existsSync(join(state, "network.toml"))).toBe(false);
  });

  test("bad values are refused with the line; the rest applies", () => {
    writeFileSync(join(boot, "user-data"), `#cloud-config\nhostname: "cam_01"\ntimezone: Mars/Olympus\nssh_authorized_keys:\n  - ${ED}\n  - not a key\n`);
    const r = run();
    expect(r.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/^user-data line 2: 'cam_01' is not a host name/),
      expect.stringMatching(/^user-data line 3: 'Mars\/Olympus' is not a time zone/),
      expect.stringMatching(/^user-data line 4: ssh_authorized_keys, key 2: not an SSH public key.*the other keys were applied/),
    ]);
    expect(readFileSync(join(state, "ssh/authorized_keys"), "utf8")).toBe(`${ED}\n`);
  });

  test("a domain name as host name: its first label", () => {
    const p = planUserData("#cloud-config\nfqdn: cam-01.example.org\n");
    expect(p.settings).toEqual([{ part: "hostname", file: "user-data", value: "cam-01" }]);
    expect(p.notes[0]).toMatch(/is a domain name; the device takes its first label 'cam-01'/);
  });

  test("network-config merges into the device's own network.toml when it has one", () => {
    const base = '[wired]\ndhcp = false\nenabled = false\n\n[interface.eth1]\naddress = "10.0.0.2/8"\n';
    const p = planNetworkConfig(NETWORK_CONFIG, { baseNetwork: base });
    expect(p.problems).toEqual([]);
    const s = p.settings[0]!;
    expect(s.part === "network" && s.text).toContain('[interface.eth1]\naddress = "10.0.0.2/8"');
    expect(s.part === "network" && s.text).toMatch(/\[interface\.wlan0\]\nssid = "My Home"\npsk_hex = "[0-9a-f]{64}"\ndhcp = true/);
  });
});

describe("hostile YAML changes nothing and says where and what", () => {
  const cases: [string, string, RegExp][] = [
    ["an alias bomb", `version: 2\na: &a ["x","x"]\nb: &b [*a,*a]\nc: [*b,*b]\n`, /line 2: '&' starts an anchor, which is not supported/],
    ["a tag", "version: 2\nwifis: !!python/object:os.system {}\n", /line 2: tags \('!'\) are not supported/],
    ["deep nesting", `version: 2\nwifis:\n${Array.from({ length: 60 }, (_, i) => `${"  ".repeat(i + 1)}k${i}:`).join("\n")}\n`, /nested more than 32 levels deep/],
    ["deep flow nesting", `version: 2\nwifis: ${"[".repeat(5000)}${"]".repeat(5000)}\n`, /nested more than 32 levels deep/],
    ["a tab", "version: 2\nwifis:\n\twlan0: {}\n", /line 3: a tab in the indentation: YAML indents with spaces only/],
    ["an unterminated quote", 'version: 2\nwifis:\n  wlan0:\n    access-points:\n      "Home:\n', /line 5: a double-quoted string does not end on its line/],
    ["a duplicate key", "version: 2\nversion: 2\n", /line 2: the key 'version' appears twice/],
    ["a value continued on the next line", "version: 2\nwifis:\n  wlan0:\n    access-points:\n      Home:\n        password: abc\n          def\n", /line 7: unexpected indentation/],
    ["an unclosed flow list", "version: 2\nwifis: [a, b\n", /line 2: a '\[' without its '\]' on the same line/],
    ["two documents", "version: 2\n---\nversion: 3\n", /line 2: a second YAML document/],
    ["a bad escape", 'version: 2\nx: "\\q"\n', /line 2: an unknown escape/],
    ["control characters", "version: 2\nx: \u0007bell\n", /line 2: a control character/],
    ["not keys at the top", "- version: 2\n", /expected 'version: 2' and 'wifis:' or 'ethernets:' at the top/],
    ["wifis as a string", "version: 2\nwifis: lots\n", /line 2: wifis: expected interfaces by name/],
    ["an interface name that is a path", 'version: 2\nwifis:\n  "../../etc": {access-points: {X: {password: "12345678"}}}\n', /is not an interface name/],
    ["an SSID too long", `version: 2\nwifis:\n  wlan0:\n    access-points:\n      "${"x".repeat(40)}":\n        password: "12345678"\n`, /must be 1 to 32 bytes/],
    ["a password too short", 'version: 2\nwifis:\n  wlan0:\n    access-points:\n      Home:\n        password: "1234"\n', /a WPA passphrase is 8 to 63 printable ASCII characters/],
  ];
  for (const [what, text, re] of cases) {
    test(what, () => {
      writeFileSync(join(boot, "network-config"), text);
      const r = run();
      expect(r.problems[0]!.message).toMatch(re);
      expect(r.problems[0]!.message).toMatch(/(nothing in network-config was applied|the network settings were not applied)$/);
      // A password in a file that cannot be read is pointed out: it stays until a person fixes the file.
      for (const p of r.problems.slice(1)) expect(p.message).toMatch(/^network-config could not be read, so it was left as it is/);
      expect(r.problems.every((p) => p.message.startsWith("network-config"))).toBe(true);
      expect(existsSync(join(state, "network.toml"))).toBe(false);
      expect(existsSync(join(state, "hostname"))).toBe(false);
    });
  }

  test("binary garbage and a huge file are named, not parsed", () => {
    writeFileSync(join(boot, "user-data"), Buffer.from([0x23, 0x63, 0xff, 0xfe, 0x00, 0x80]));
    expect(run().problems[0]!.message).toMatch(/^user-data: not UTF-8 text/);
    rmSync(join(boot, "user-data"));
    writeFileSync(join(boot, "network-config"), `version: 2\n${"x: y\n".repeat(300_000)}`);
    expect(run().problems[0]!.message).toMatch(/^network-config: too large/);
  });

  test("a malformed network-config is left as it is, and its password is pointed out", () => {
    const text = `version: 2\nwifis:\n  wlan0:\n    access-points:\n      Home:\n        password: "12345678"\n\tbad: tab\n`;
    writeFileSync(join(boot, "network-config"), text);
    const r = run();
    expect(readFileSync(join(boot, "network-config"), "utf8")).toBe(text);
    expect(r.problems.map((p) => p.message)).toContainEqual(expect.stringMatching(/left as it is on the boot partition, and it may hold the Wi-Fi password/));
  });
});

describe("the YAML subset", () => {
  test("block scalars, flow collections, quotes and comments", () => {
    expect(parseYaml(`# comment
a: |
  line 1
    indented # not a comment
b: >-
  folded
  text
c: [1, "two, three", {k: v}]
d: 'it''s'
e: "tab\\there \\u00e9"
f: value # comment
g: ~
h:
i: "#not a comment"
`)).toEqual({ a: "line 1\n  indented # not a comment\n", b: "folded text", c: ["1", "two, three", { k: "v" }], d: "it's", e: "tab\there é", f: "value", g: null, h: null, i: "#not a comment" });
  });

  test("lists of maps, lists under keys at the same indentation, nested lists", () => {
    expect(parseYaml("users:\n- name: a\n  keys:\n  - k1\n  - k2\n- default\nx:\n  - - 1\n    - 2\n")).toEqual({ users: [{ name: "a", keys: ["k1", "k2"] }, "default"], x: [["1", "2"]] });
  });

  test("errors carry the line", () => {
    try {
      parseYaml("a: 1\nb:\n  c: 2\n   d: 3\n");
      throw new Error("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(YamlError);
      expect((e as YamlError).line).toBe(4);
    }
  });
});

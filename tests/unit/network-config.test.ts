// network.toml: every field, every error (file, line, field), the Wi-Fi
// passphrase replaced by its derived key; the firewall's rule set loaded into
// a real nftables in a network namespace; SSH keys checked before they count.
import { describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { derivePsk, parseNetworkFile, scrubPassphrases, settingsFor, unknownInterfaces } from "../../lib/config/network.ts";
import { rulesetFor } from "../../init/network/firewall.ts";
import { defaultRoute, nameServers, parseLease, wifiSignals } from "../../init/network/links.ts";
import { addAuthorizedKey, parsePublicKey } from "../../init/cli/net.ts";
import { parseUnitFile } from "../../init/supervisor/unit-file.ts";

const P = "/var/lib/paio/network.toml";
const parse = (text: string) => parseNetworkFile(text, P);
const err = (text: string) => {
  const r = parse(text);
  if (r.ok) throw new Error("expected an error");
  return r.error;
};

describe("network.toml", () => {
  test("the image's default: DHCP on every wired interface, none on Wi-Fi", () => {
    const r = parse(readFileSync(join(import.meta.dirname, "../../image/overlay/etc/paio/network.toml"), "utf8"));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(settingsFor(r.config, "eth0", false)).toMatchObject({ name: "eth0", dhcp: true, enabled: true });
    expect(settingsFor(r.config, "enp0s3", false)?.dhcp).toBe(true);
    expect(settingsFor(r.config, "wlan0", true)).toBeUndefined();
    expect(r.config.ntp.length).toBeGreaterThan(0);
  });

  test("every field: host name, NTP, static address, gateway, DNS, Wi-Fi with DHCP", () => {
    const r = parse(`hostname = "cam-01"
ntp = ["192.0.2.123", "time.example.org"]
[wired]
dhcp = false
enabled = false
[interface.eth0]
address = "192.0.2.10/24"
gateway = "192.0.2.1"
dns = ["192.0.2.1", "9.9.9.9"]
[interface.wlan0]
ssid = "HOME"
psk_hex = "${"ab".repeat(32)}"
`);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.hostname).toBe("cam-01");
    expect(r.config.ntp).toEqual(["192.0.2.123", "time.example.org"]);
    expect(r.config.interfaces[0]).toEqual({ name: "eth0", enabled: true, dhcp: false, address: "192.0.2.10/24", gateway: "192.0.2.1", dns: ["192.0.2.1", "9.9.9.9"], wifi: undefined });
    expect(r.config.interfaces[1]).toMatchObject({ name: "wlan0", dhcp: true, wifi: { ssid: "HOME", pskHex: "ab".repeat(32) } });
    expect(settingsFor(r.config, "eth1", false)).toMatchObject({ enabled: false });
    expect(r.config.plainPsk).toBe(false);
  });

  test("errors name the file, the line and the field, and say what to do", () => {
    expect(err('hostname = "a"\n[interface.eth0]\naddress = "10.0.0.5"\n')).toBe(
      `${P} line 3 field 'interface.eth0.address': expected an IPv4 address with its prefix length, e.g. "192.0.2.10/24", got "10.0.0.5"`,
    );
    expect(err("[interface.eth0]\ndhcp = true\naddres = \"10.0.0.5/24\"\n")).toMatch(/line 3 field 'interface\.eth0\.addres': unknown field \(did you mean 'interface\.eth0\.address'\?\)/);
    expect(err('[interface.wlan0]\nssid = "HOME"\n')).toMatch(/line 2 field 'interface\.wlan0\.ssid': Wi-Fi network 'HOME' has no key: add psk/);
    expect(err('[interface.wlan0]\nssid = "HOME"\npsk = "short"\n')).toMatch(/line 3 field 'interface\.wlan0\.psk': a WPA passphrase is 8 to 63/);
    expect(err('[interface.wlan0]\npsk = "longenough"\n')).toMatch(/field 'interface\.wlan0\.ssid': missing/);
    expect(err('[interface.eth0]\ngateway = "10.0.0.1"\n')).toMatch(/line 2 field 'interface\.eth0\.gateway': a gateway needs a static address/);
    expect(err('[interface.eth0]\ndhcp = true\naddress = "10.0.0.5/24"\n')).toMatch(/field 'interface\.eth0\.dhcp': dhcp = true and a static address exclude each other/);
    expect(err('[interface.eth0]\ndns = ["8.8.8"]\n')).toMatch(/line 2 field 'interface\.eth0\.dns': '8\.8\.8' is not an IPv4 address/);
    expect(err('hostname = "-bad"\n')).toMatch(/^\/var\/lib\/paio\/network\.toml line 1 field 'hostname'/);
    expect(err('ntp = "pool.ntp.org"\n')).toMatch(/line 1 field 'ntp': expected an array of strings/);
    expect(err('[wired]\naddress = "10.0.0.5/24"\n')).toMatch(/line 2 field 'wired\.address': a static address belongs to one interface/);
    expect(err('[interface."bad name"]\ndhcp = true\n')).toMatch(/field 'interface\.bad name': not an interface name/);
    expect(err('hostname = "a"\n[interface.eth0\n')).toMatch(/^\/var\/lib\/paio\/network\.toml line 2: not valid TOML/);
    expect(err('hostnme = "a"\n')).toMatch(/line 1 field 'hostnme': unknown field \(did you mean 'hostname'\?\)/);
  });

  test("an interface this device does not have is named, with the closest one it has", () => {
    const text = '[interface.eht0]\ndhcp = true\n';
    const r = parse(text);
    if (!r.ok) throw new Error(r.error);
    expect(unknownInterfaces(r.config, ["eth0", "wlan0"], text)).toEqual([
      `${P} line 1 field 'interface.eht0': this device has no interface 'eht0' (did you mean 'eth0'?); present: eth0, wlan0`,
    ]);
  });

  test("a Wi-Fi passphrase becomes the derived key (IEEE 802.11i test vector) and is stored nowhere", () => {
    // IEEE 802.11i-2004, annex H.4.1: passphrase "password", SSID "IEEE".
    expect(derivePsk("IEEE", "password")).toBe("f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e");
    const text = 'hostname = "x"\n[interface.wlan0]\nssid = "IEEE"\npsk = "password"\n';
    const r = parse(text);
    if (!r.ok) throw new Error(r.error);
    expect(r.config.plainPsk).toBe(true);
    const scrubbed = scrubPassphrases(text, r.config);
    expect(scrubbed).not.toContain("password");
    expect(scrubbed).toContain('psk_hex = "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"');
    const again = parse(scrubbed);
    expect(again.ok && again.config.interfaces[0]!.wifi?.pskHex).toBe(r.config.interfaces[0]!.wifi!.pskHex);
  });
});

describe("unit files declare ports", () => {
  test("numbers and PORT/PROTO strings; a bad one names the field", () => {
    const ok = parseUnitFile('exec = ["/bin/true"]\nports = [8080, "5683/udp", "443/tcp"]\n', "/etc/paio/units/web.toml");
    expect(ok.ok && ok.unit.ports).toEqual([{ port: 8080, proto: "tcp" }, { port: 5683, proto: "udp" }, { port: 443, proto: "tcp" }]);
    const bad = parseUnitFile('exec = ["/bin/true"]\nports = [80800]\n', "/etc/paio/units/web.toml");
    expect(!bad.ok && bad.error).toBe("/etc/paio/units/web.toml line 2 field 'ports': 80800 is not a port: expected a number from 1 to 65535, or \"PORT/tcp\" or \"PORT/udp\"");
    const twice = parseUnitFile('exec = ["/bin/true"]\nports = [80, "80/tcp"]\n', "/etc/paio/units/web.toml");
    expect(!twice.ok && twice.error).toMatch(/80\/tcp is listed twice/);
  });
});

describe("firewall rules", () => {
  const canNamespace = Bun.spawnSync(["unshare", "-n", "nft", "list", "ruleset"]).exitCode === 0;

  test("the rule set loads into a real nftables (in a namespace of its own) and opens exactly the declared ports", () => {
    if (!canNamespace) {
      console.log("skipped: this machine cannot create a network namespace with nftables (needs root and nf_tables)");
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "paio-nft-"));
    try {
      const file = join(dir, "rules.nft");
      writeFileSync(file, rulesetFor([{ unit: "web", port: 8080, proto: "tcp" }, { unit: "coap", port: 5683, proto: "udp" }, { unit: "web2", port: 8080, proto: "tcp" }]));
      // Loaded twice: the script must also replace a table that is already there.
      const r = Bun.spawnSync(["unshare", "-n", "sh", "-c", `nft -f ${file} && nft -f ${file} && nft list ruleset`], { stdout: "pipe", stderr: "pipe" });
      const out = r.stdout.toString();
      expect(r.exitCode, r.stderr.toString()).toBe(0);
      expect(out).toMatch(/policy drop/);
      expect(out).toMatch(/tcp dport 22 accept/);
      expect(out).toMatch(/tcp dport 8080 accept comment "unit web,web2"/);
      expect(out).toMatch(/udp dport 5683 accept comment "unit coap"/);
      expect(out.match(/dport 8080/g)).toHaveLength(1);
      expect(out).toMatch(/ct state established,related accept/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("with no unit ports only SSH, ICMP echo and DHCP replies come in", () => {
    const rules = rulesetFor([]);
    expect(rules.match(/dport \d+ accept/g)).toEqual(["dport 68 accept", "dport 22 accept"]);
  });
});

describe("link state parsing", () => {
  test("the default route from /proc/net/route, a DHCP lease, name servers, Wi-Fi signal", () => {
    const route = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\neth0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
    expect(defaultRoute(route)).toEqual({ gateway: "10.0.2.2", iface: "eth0" });
    expect(defaultRoute(route.split("\n").slice(0, 2).join("\n"))).toBeUndefined();
    expect(parseLease("ip=10.0.2.15\nmask=24\nrouter=10.0.2.2\ndns=10.0.2.3 10.0.2.4\nlease=86400\nat=12\n")).toEqual({ ip: "10.0.2.15", prefix: 24, router: "10.0.2.2", dns: ["10.0.2.3", "10.0.2.4"], leaseSeconds: 86400, at: 12000 });
    expect(nameServers("# x\nnameserver 10.0.2.3\nsearch lan\nnameserver 9.9.9.9\n")).toEqual(["10.0.2.3", "9.9.9.9"]);
    const wireless = "Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n wlan0: 0000   54.  -56.  -256        0      0      0      0     12        0\n";
    expect(wifiSignals(wireless).get("wlan0")).toBe(-56);
  });
});

describe("SSH keys", () => {
  const ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC5p15iFulYzDQJYrli0EJW30x5rK3ZJ+kA/5TFf9lty dev@laptop";

  test("a real key is accepted; text that is not a key is refused and nothing is written", () => {
    expect(parsePublicKey(ed)).toMatchObject({ ok: true, type: "ssh-ed25519" });
    expect(parsePublicKey("hello world")).toMatchObject({ ok: false });
    expect((parsePublicKey("ssh-ed25519 not-base64!") as { error: string }).error).toMatch(/not base64/);
    // Valid base64, but a different key type inside.
    const rsaBlob = Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from("ssh-rsa"), Buffer.alloc(8)]).toString("base64");
    expect((parsePublicKey(`ssh-ed25519 ${rsaBlob}`) as { error: string }).error).toMatch(/does not hold a ssh-ed25519 key/);
    expect((parsePublicKey(`${ed}\nssh-ed25519 AAAA`) as { error: string }).error).toMatch(/one line/);

    const dir = mkdtempSync(join(tmpdir(), "paio-keys-"));
    try {
      const file = join(dir, "authorized_keys");
      expect(addAuthorizedKey("command=\"sh\" ssh-ed25519 AAAA", file).ok).toBe(false);
      expect(() => readFileSync(file)).toThrow();
      expect(addAuthorizedKey(ed, file)).toEqual({ ok: true, message: `ssh-ed25519 key added to ${file}` });
      expect(addAuthorizedKey(ed, file)).toEqual({ ok: true, message: "ssh-ed25519 key already allowed" });
      expect(readFileSync(file, "utf8")).toBe(`${ed}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The network of a booted guest, through QEMU's restricted user networking
// (nothing leaves QEMU; host ports on 127.0.0.1 only): DHCP, SSH with keys
// only, a firewall that follows the units' declared ports, link events,
// static configuration, and a broken network.toml that changes nothing.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { join } from "node:path";
import type { Guest } from "../../qemu/guest.ts";
import { bootGuest, consoleLine, REPO, scratchDisk, sh } from "../helpers/guest.ts";

/** Polls a guest script until its output matches, or fails with the last output. */
async function until(guest: Guest, script: string, re: RegExp, timeoutMs = 90_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let out = "";
  while (Date.now() < deadline) {
    out = (await guest.sh(script)).output;
    if (re.test(out)) return out;
    await Bun.sleep(1000);
  }
  throw new Error(`no output matching ${re} within ${timeoutMs} ms from:\n${script}\n--- last output ---\n${out}`);
}

async function waitSsh(guest: Guest): Promise<void> {
  for (let i = 0; i < 120; i++) {
    if (guest.ssh(["true"], [], 15_000).code === 0) return;
    await Bun.sleep(1000);
  }
  throw new Error(`no SSH login within 120 s: ${guest.ssh(["true"]).output}`);
}

async function httpGet(port: number): Promise<string> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/index.html`, { signal: AbortSignal.timeout(8000) });
    return `${r.status} ${(await r.text()).trim()}`;
  } catch (e) {
    return `refused: ${(e as Error).name}`;
  }
}

describe("network", () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await bootGuest({ ports: [8080, 8081] });
  }, 400_000);
  afterAll(async () => {
    if (guest && !guest.exited) expect(await guest.shutdown()).toBe(0);
  }, 120_000);

  test("DHCP from QEMU gives the address; paio net shows it, the firewall and the time service", async () => {
    // QEMU's restricted network hands out an address but no gateway or name server (nothing leaves it).
    const out = await until(guest, "paio net", /eth0: up \(dhcp\); address 10\.0\.2\.15\/24, DHCP lease 10\.0\.2\.15\/24/);
    expect(out).not.toContain("sit0"); // tunnels are not interfaces to configure
    expect(out).toMatch(/firewall: on, default deny inbound; open: ssh 22\/tcp\n/);
    // chrony runs (it answers) but no time server can be reached from inside QEMU.
    await until(guest, "paio net", /time: not synchronised \(no time server reachable yet\)/, 60_000);
    const st = JSON.parse(await sh(guest, "paio net --json"));
    expect(st.interfaces.map((i: { name: string }) => i.name)).toEqual(["eth0"]);
    expect(st.interfaces[0].addresses).toEqual(["10.0.2.15/24"]);
    expect(st.interfaces[0].lease).toMatchObject({ ip: "10.0.2.15", prefix: 24 });
  });

  test("SSH: bin/paio ssh runs a command with the project's key; a password login is refused", async () => {
    await waitSsh(guest);
    const r = Bun.spawnSync([join(REPO, "bin/paio"), "ssh", "--port", String(guest.hostPort(22)), "echo", "hello-over-ssh", "$(id -u)"], { stdout: "pipe", stderr: "pipe", timeout: 60_000 });
    expect(r.stdout.toString().trim(), r.stderr.toString()).toBe("hello-over-ssh 0");
    const pw = guest.ssh(["true"], ["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive"]);
    expect(pw.code).not.toBe(0);
    // The server offers public keys and nothing else.
    expect(pw.output).toMatch(/Permission denied \(publickey\)/);
  });

  test("a port a unit declares answers from the host while it runs; an undeclared listener does not, and only it is an incident", async () => {
    // Ports open in the agent's first 30 s (counted from when its detector starts, after the models load) are
    // its baseline: the listeners start well after that, even on a loaded machine.
    await sh(guest, `
      a=$(paio --json status agent | sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p')
      age=$(( $(cut -d. -f1 /proc/uptime) - $(cut -d' ' -f22 /proc/$a/stat) / 100 ))
      [ "$age" -lt 70 ] && sleep $((70 - age)); true`);
    await sh(guest, `
      mkdir -p /tmp/www && echo ok > /tmp/www/index.html
      cat > /var/lib/paio/units/web.toml <<'UNIT'
exec = ["/bin/sh", "-c", "exec httpd -f -p 8080 -h /tmp/www"]
restart = "always"
ports = [8080]
UNIT
      cat > /var/lib/paio/units/sneaky.toml <<'UNIT'
exec = ["/bin/sh", "-c", "exec httpd -f -p 8081 -h /tmp/www"]
restart = "always"
UNIT
      paio reload`);
    await until(guest, "paio net", /open: ssh 22\/tcp, 8080\/tcp \(web\)/, 60_000);
    // Both listen: from inside the guest (loopback) both answer.
    expect(await sh(guest, "wget -q -O - http://127.0.0.1:8080/index.html; wget -q -O - http://127.0.0.1:8081/index.html")).toBe("ok\nok\n");
    expect(await httpGet(guest.hostPort(8080))).toBe("200 ok");
    expect(await httpGet(guest.hostPort(8081))).toMatch(/^refused/);
    const incidents = await until(guest, "paio incidents", /new listening TCP port 8081/, 120_000);
    expect(incidents).not.toMatch(/port 8080/);
    // Stopped, the unit's port closes again.
    await sh(guest, "paio stop web");
    await until(guest, "paio net", /firewall: on, default deny inbound; open: ssh 22\/tcp\n/, 60_000);
    expect(await httpGet(guest.hostPort(8080))).toMatch(/^refused/);
  }, 300_000);

  test("the link taken down in QEMU and brought back: events on the control socket and in paio net; the agent records the outage, tries its ladder and records the recovery", async () => {
    await guest.monitor("set_link net0 off");
    try {
      await consoleLine(guest, /paio: network: eth0: link down \(no carrier\)/, 60_000);
      // Longer than the agent's grace (10 s): an incident, and its first remedy.
      const during = await until(guest, "paio incidents", /network \[(healing|proposed)\] eth0: link down[^\n]* for \d+ s/, 90_000);
      expect(during).toBeTruthy();
    } finally {
      await guest.monitor("set_link net0 on");
    }
    await consoleLine(guest, /paio: network: eth0: link up/, 60_000);
    const out = await until(guest, "paio net", /eth0: link up/, 30_000);
    expect(out).toMatch(/eth0: link down \(no carrier\)[\s\S]*eth0: link up/);
    const after = await until(guest, "paio incidents", /network \[resolved\] eth0: link down/, 90_000);
    expect(after).toBeTruthy();
    const why = await sh(guest, "paio why network");
    expect(why).toMatch(/noticed: eth0: link down[^\n]* for \d+ s/);
    expect(why).toMatch(/acted: eth0: link down.*renew the network's addresses/);
    expect(why).toMatch(/outcome: the outage of eth0 ended: eth0 is back .* after \d+ s without network; the carrier came back by itself/);
  }, 300_000);

  test("a static configuration applies; a broken file or an unknown interface is refused naming the line, and the network stays as it was", async () => {
    const applied = await sh(guest, `
      cat > /var/lib/paio/network.toml <<'NET'
hostname = "cam-01"
[interface.eth0]
address = "10.0.2.50/24"
gateway = "10.0.2.2"
dns = ["10.0.2.3"]
NET
      paio net apply >/dev/null; echo "apply=$?"
      ip -4 addr show dev eth0 | grep -o 'inet [0-9./]*'
      echo "udhcpc=$(pcount 'udhcpc -f')"; hostname; cat /etc/resolv.conf; ip route`);
    expect(applied).toContain("apply=0");
    expect(applied).toContain("inet 10.0.2.50/24");
    expect(applied).not.toContain("10.0.2.15");
    expect(applied).toContain("udhcpc=0");
    expect(applied).toContain("cam-01");
    expect(applied).toContain("nameserver 10.0.2.3");
    expect(applied).toMatch(/default via 10\.0\.2\.2 dev eth0/);
    // QEMU's gateway answers ARP: the network unit sees it reachable.
    await until(guest, "paio net", /eth0: up \(static 10\.0\.2\.50\/24\); address 10\.0\.2\.50\/24, gateway answers\n[\s\S]*default route: via 10\.0\.2\.2 \(eth0\)\nDNS: 10\.0\.2\.3/, 60_000);

    const broken = await guest.sh(`
      printf '[interface.eth0]\\naddress = "10.0.2.60"\\n' > /var/lib/paio/network.toml
      paio net apply; echo "apply=$?"
      ip -4 addr show dev eth0 | grep -o 'inet [0-9./]*'
      # The unit itself refuses it too, when signalled directly.
      kill -HUP $(paio --json status network | sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p'); sleep 3; paio net | grep 'refused'
      printf '[interface.eht0]\\ndhcp = true\\n' > /var/lib/paio/network.toml
      paio net apply; echo "apply=$?"`);
    expect(broken.output).toContain("/var/lib/paio/network.toml line 2 field 'interface.eth0.address': expected an IPv4 address with its prefix length");
    expect(broken.output).toContain("nothing was changed");
    expect(broken.output).toMatch(/apply=1[\s\S]*inet 10\.0\.2\.50\/24/);
    expect(broken.output).toMatch(/last apply refused: .*line 2 field 'interface\.eth0\.address'/);
    expect(broken.output).toContain("this device has no interface 'eht0' (did you mean 'eth0'?)");

    // Back to DHCP: the image's file again.
    const back = await sh(guest, "rm /var/lib/paio/network.toml; paio net apply >/dev/null; echo apply=$?");
    expect(back).toContain("apply=0");
    await until(guest, "paio net", /eth0: up \(dhcp\); address 10\.0\.2\.15\/24/, 60_000);
  }, 240_000);

  test("a configuration that never connects (its gateway is silent) is replaced by the last one that did", async () => {
    // The network unit with a short fallback time: a device unit file replaces the image's.
    await sh(guest, `
      awk '/^\\[limits\\]/ { print "env = { PAIO_NET_FALLBACK_S = \\"15\\" }" } { print }' /etc/paio/units/network.toml > /var/lib/paio/units/network.toml
      grep -q PAIO_NET_FALLBACK_S /var/lib/paio/units/network.toml
      paio reload >/dev/null
      # Until the restarted unit has written its own state.
      for i in $(seq 1 60); do
        p=$(paio --json status network | sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p')
        [ -n "$p" ] && grep -q "\\"pid\\": $p," /run/paio/network.json && break
        sleep 1
      done`);
    await until(guest, "paio net", /eth0: up \(dhcp\); address 10\.0\.2\.15\/24/, 60_000);
    await sh(guest, `
      printf '[interface.eth0]\naddress = "10.0.2.60/24"\ngateway = "10.0.2.99"\n' > /var/lib/paio/network.toml
      paio net apply >/dev/null; echo apply=$?`);
    const fell = await until(guest, "paio net", /did not connect within 15 s; went back to the last configuration that did/, 90_000);
    expect(fell).toMatch(/eth0: up \(dhcp\)/);
    await until(guest, "paio net", /eth0: up \(dhcp\); address 10\.0\.2\.15\/24/, 60_000);
    await sh(guest, "rm /var/lib/paio/network.toml /var/lib/paio/units/network.toml; paio reload >/dev/null");
  }, 240_000);
});

describe("network: what a reboot keeps", () => {
  const scratch = scratchDisk("net");

  test("the SSH host keys are made once and survive a reboot", async () => {
    const disk = scratch();
    const fingerprint = "for i in $(seq 1 60); do [ -s /var/lib/paio/ssh/dropbear_ed25519_host_key ] && break; sleep 1; done; dropbearkey -y -f /var/lib/paio/ssh/dropbear_ed25519_host_key | grep -i fingerprint";
    const g1 = await bootGuest({ disk, snapshot: false });
    const first = await sh(g1, fingerprint);
    expect(await g1.shutdown("REBOOT")).toBe(0);
    const g2 = await bootGuest({ disk, snapshot: false });
    try {
      expect(first).toMatch(/Fingerprint: (sha1|sha256|md5)/i);
      expect(await sh(g2, fingerprint)).toBe(first);
    } finally {
      expect(await g2.shutdown()).toBe(0);
    }
  }, 600_000);
});

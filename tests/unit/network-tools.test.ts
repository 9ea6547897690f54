// The console's network tools: a Wi-Fi name and passphrase taken from a
// person's words (the passphrase never shown, kept or audited), the
// passphrase stored only as its derived key in network.toml, and the agent
// carrying out "connect to wifi ..." for real: file written, network unit
// signalled, audit log free of the secret.
import { describe, expect, test } from "vitest";
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { maskSecrets, wifiWords } from "../../agents/nlu/wifi.ts";
import { saveWifi } from "../../agents/execute/network-tools.ts";
import { derivePsk, parseNetworkFile } from "../../lib/config/network.ts";
import { describeCall, validateCall } from "../../agents/tools/catalog.ts";
import { ControlClient } from "../../init/control/client.ts";
import type { AgentRequest, AgentResponse, CallResult } from "../../agents/protocol.ts";
import { startSupervisor, tempDir, unit } from "../helpers/host-supervisor.ts";

const REPO = join(import.meta.dirname, "../..");

describe("Wi-Fi words", () => {
  test("name and passphrase from several phrasings; the passphrase masked", () => {
    expect(wifiWords('connect to wifi HOME with password "correct horse"')).toMatchObject({ ssid: "HOME", psk: "correct horse", masked: "connect to wifi HOME with password ********" });
    expect(wifiWords("join Office-5G, passphrase: hunter2hunter2")).toMatchObject({ ssid: "Office-5G", psk: "hunter2hunter2" });
    expect(wifiWords("use the network 'Cafe Guest' key latte-1234")).toMatchObject({ ssid: "Cafe Guest", psk: "latte-1234" });
    expect(wifiWords("connect to wifi HOME with password abcdefgh").model).toBe("connect to wifi xssidx with password xpskx");
    // No passphrase: no name either, and nothing is changed.
    expect(wifiWords("switch to auto mode")).toEqual({ ssid: undefined, psk: undefined, masked: "switch to auto mode", model: "switch to auto mode" });
    expect(maskSecrets("my password is swordfish123 ok")).toBe("my password is ******** ok");
    // The word before the passphrase is not taken for it (and the passphrase left in clear).
    expect(wifiWords('join "Barn", the password being "hay bales"')).toMatchObject({ ssid: "Barn", psk: "hay bales", masked: 'join "Barn", the password being ********' });
    expect(maskSecrets("the key will be tractor-42")).toBe("the key will be ********");
  });

  test("the secret slot is validated and never described", () => {
    const v = validateCall("network.wifi", { ssid: "HOME", psk: "correct horse" }, "person");
    expect(v.ok && describeCall(v.call)).toBe("network.wifi ssid=HOME psk=********");
    expect(validateCall("network.wifi", { ssid: "HOME", psk: "short" }, "person").ok).toBe(false);
    expect(validateCall("network.wifi", { ssid: "x".repeat(33), psk: "longenough" }, "person").ok).toBe(false);
    expect(validateCall("network.open_port", { unit: "web", port: 70000 }, "person").ok).toBe(false);
  });
});

describe("saving a Wi-Fi network", () => {
  test("the device file gets the derived key, keeps the rest, replaces an earlier Wi-Fi section", () => {
    const d = tempDir();
    const sys = join(d, "sys");
    mkdirSync(join(sys, "wlan0", "wireless"), { recursive: true });
    mkdirSync(join(sys, "eth0"), { recursive: true });
    const image = join(d, "image.toml");
    writeFileSync(image, 'ntp = ["192.0.2.1"]\n[wired]\ndhcp = true\n');
    const paths = { deviceFile: join(d, "device.toml"), imageFile: image, sysNet: sys };
    expect(saveWifi("HOME", "correct horse", paths)).toMatchObject({ ok: true, iface: "wlan0" });
    const first = readFileSync(paths.deviceFile, "utf8");
    expect(first).not.toContain("correct horse");
    expect(first).toContain(`psk_hex = "${derivePsk("HOME", "correct horse")}"`);
    expect(first).toContain('ntp = ["192.0.2.1"]');
    saveWifi("BARN", "moomoomoo", paths);
    const second = readFileSync(paths.deviceFile, "utf8");
    const parsed = parseNetworkFile(second, paths.deviceFile);
    expect(parsed.ok && parsed.config.interfaces).toEqual([{ name: "wlan0", enabled: true, dhcp: true, address: undefined, gateway: undefined, dns: [], wifi: { ssid: "BARN", pskHex: derivePsk("BARN", "moomoomoo") } }]);
    expect(saveWifi("X", "whatever1", { ...paths, sysNet: join(d, "none") })).toEqual({ ok: false, reply: "this device has no Wi-Fi interface; nothing was changed" });
  });
});

describe("the agent connects to Wi-Fi for a person", () => {
  test("after confirmation: file written, the network unit told (SIGHUP), the passphrase nowhere in the audit log", async () => {
    const d = tempDir();
    const sys = join(d, "sys");
    mkdirSync(join(sys, "wlan0", "wireless"), { recursive: true });
    mkdirSync(join(d, "etc"));
    writeFileSync(join(d, "etc", "network.toml"), "[wired]\ndhcp = true\n");
    const sock = join(d, "run", "control.sock");
    const agentSock = join(d, "run", "agent.sock");
    const e: Record<string, string> = {
      PAIO_STATE_DIR: join(d, "state"), PAIO_ETC_DIR: join(d, "etc"), PAIO_CONTROL_SOCKET: sock, PAIO_AGENT_SOCKET: agentSock,
      PAIO_CGROUP_ROOT: join(d, "no-cgroup"), PAIO_SYS_NET: sys, PAIO_DEVICE_NETWORK_FILE: join(d, "state", "network.toml"), PAIO_IMAGE_NETWORK_FILE: join(d, "etc", "network.toml"),
    };
    const envToml = Object.entries(e).map(([k, v]) => `${k} = "${v}"`).join(", ");
    unit(d, "agent", `exec = ["${process.execPath}", "${join(REPO, "agents/agent/main.ts")}"]\nrestart = "always"\nenv = { ${envToml} }\n`);
    // A stand-in for the network unit that records the signals it gets.
    unit(d, "network", `exec = ["/bin/sh", "-c", "trap 'echo hup >> ${join(d, "hups")}' HUP; while :; do sleep 0.1; done"]\n`);
    const s = startSupervisor(d, { PAIO_CONTROL_SOCKET: sock });
    await s.waitFor(/supervisor ready/);
    let c: ControlClient<AgentRequest, AgentResponse> | undefined;
    for (let i = 0; i < 100 && !c; i++) {
      c = await ControlClient.connect<AgentRequest, AgentResponse>(agentSock).catch(() => undefined);
      if (!c) await Bun.sleep(200);
    }
    const utterance = 'connect to wifi HOME with password "correct horse"';
    const req = { op: "call" as const, tool: "network.wifi" as const, args: { ssid: "HOME", psk: "correct horse" }, utterance, origin: "person" as const };
    const first = (await c!.request(req)) as { ok: true; result: CallResult };
    expect(first.result.status).toBe("needs-confirmation");
    expect(first.result.reply).not.toContain("correct horse");
    const done = (await c!.request({ ...req, confirmed: true })) as { ok: true; result: CallResult };
    expect(done.result.status, done.result.reply).toBe("done");
    expect(done.result.reply).toMatch(/saved Wi-Fi network 'HOME' for wlan0/);
    c!.close();
    const file = readFileSync(join(d, "state", "network.toml"), "utf8");
    expect(file).toContain(derivePsk("HOME", "correct horse"));
    expect(file).not.toContain("correct horse");
    for (let i = 0; i < 50 && !existsSync(join(d, "hups")); i++) await Bun.sleep(100);
    expect(readFileSync(join(d, "hups"), "utf8")).toContain("hup");
    const db = new Database(join(d, "state", "agent", "knowledge.db"), { readonly: true });
    const audit = db.query<{ body: string }, []>("SELECT body FROM audit").all().map((r) => r.body).join("\n");
    db.close();
    expect(audit).toContain("network.wifi");
    expect(audit).toContain("********");
    expect(audit).not.toContain("correct horse");
  }, 60_000);
});

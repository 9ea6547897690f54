// First-boot settings under mutation: the documented paio-config.toml and
// Raspberry Pi Imager's user-data and network-config, each mutated (lines
// dropped, doubled, swapped or cut, characters flipped, junk and control
// bytes inserted). Every mutant is accepted or refused with problems that
// start with the file's name; nothing throws, none takes long; and a whole
// import of a mutant on folders standing for the partitions leaves no Wi-Fi
// key on the boot partition unless the file could not be read at all.
import { afterAll, describe, expect, test } from "vitest";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rng } from "../../agents/models/train.ts";
import { mutate as mutateLines } from "../fuzz/mutate.ts";
import { planNetworkConfig, planUserData } from "../../lib/provision/cloud-init.ts";
import { planConfig } from "../../lib/provision/config.ts";
import { importFirstBootSettings } from "../../lib/provision/import.ts";
import type { Plan } from "../../lib/provision/plan.ts";
import { missed, writeFuzzResult, type FuzzResult } from "../fuzz/results.ts";

const REPO = join(import.meta.dirname, "../..");
const MUTANTS = Number(process.env.PAIO_FUZZ_MUTANTS ?? 1000);
const SEED = Number(process.env.PAIO_FUZZ_SEED ?? 20261130);

const doc = readFileSync(join(REPO, "docs/provisioning.md"), "utf8");
/** The documented example, with a whole key where the document shortens it. */
const CONFIG = /```toml\n([\s\S]*?)```/.exec(doc)![1]!.replace(/"ssh-ed25519 AAAA[^"]*"/, '"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIUvRAp09cnvoxpPmdlCDBb/oP7f20knh78HDiQcg6/Y me@laptop"');
const UNIT = 'description = "Camera"\nexec = ["/bin/sleep", "1000"]\n';
const POLICY = 'mode = "advise"\n';
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
users:
- name: pi
  groups: users,adm,sudo
  lock_passwd: false
  passwd: $5$abcdefgh$ijklmnopqrstuvwxyz0123456789
  ssh_authorized_keys:
    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIUvRAp09cnvoxpPmdlCDBb/oP7f20knh78HDiQcg6/Y me@laptop
runcmd:
  - [ sh, -c, "echo hi" ]
`;
const NETWORK_CONFIG = `network:
  version: 2
  wifis:
    wlan0:
      dhcp4: true
      regulatory-domain: "GB"
      access-points:
        "My Home":
          password: "0c9d28a5eb4d939167e66d2e112bcae6b12f8e325592d79b337261c4ad3d7a15"
      optional: true
`;

const JUNK = ["=", "[", "]]", '"', "'''", "\u0000", "\u001b[2J", "\u202e", "#", "{", "}", ",", "\n", "\t", "&a ", "*a", "!!str ", "? ", "- ", ": ", "|", ">-", "---", "999999999999999999999", "é", "\ud800", "[network.interface.]", "psk = \"\""];

function mutate(text: string, r: () => number): string {
  return mutateLines(text, r, JUNK);
}

/** The whole run, for the reliability report: every file's mutants and the whole imports together. */
const tally: FuzzResult = { name: "provision", seed: SEED, cases: 0, clients: 1, refused: 0, crashes: 0, hangs: 0, bad: [], ms: 0, notes: {} };
afterAll(() => {
  writeFuzzResult(tally);
});

/** A plan that takes longer than this counts as a hang. */
const HANG_MS = 2000;

function check(name: string, file: string, text: string, plan: (t: string) => Plan, besides: string[] = []): void {
  test(`${MUTANTS} mutants of ${name}: settings or problems that name ${file}, nothing thrown (seed ${SEED})`, () => {
    expect(plan(text).problems).toEqual([]);
    const t0 = Date.now();
    const r = rng(SEED + file.length);
    const bad: string[] = [];
    let refused = 0;
    let slowest = 0;
    for (let k = 0; k < MUTANTS; k++) {
      const m = mutate(text, r);
      const t = performance.now();
      let p: Plan;
      try {
        p = plan(m);
      } catch (e) {
        tally.crashes++;
        bad.push(`${file}, mutant ${k} (seed ${SEED + file.length}): threw ${(e as Error).message.split("\n")[0]} -- mutant: ${JSON.stringify(m).slice(0, 300)}`);
        continue;
      }
      const took = performance.now() - t;
      slowest = Math.max(slowest, took);
      if (took > HANG_MS) {
        tally.hangs++;
        bad.push(`${file}, mutant ${k}: planned in ${took.toFixed(0)} ms`);
      }
      for (const prob of p.problems) {
        const named = prob.message.startsWith(prob.file) && (prob.file === file || besides.some((b) => prob.file.startsWith(b)));
        if (!named) bad.push(`${file}, mutant ${k}: a problem that does not name its file: ${prob.message} -- mutant: ${JSON.stringify(m).slice(0, 300)}`);
      }
      if (p.problems.length) refused++;
    }
    tally.cases += MUTANTS;
    tally.refused += refused;
    tally.bad.push(...bad);
    tally.ms += Date.now() - t0;
    tally.notes![`${file} slowest plan ms`] = +slowest.toFixed(1);
    expect(bad, missed({ ...tally, bad })).toEqual([]);
    expect(refused).toBeGreaterThan(MUTANTS / 10);
  }, 300_000);
}

describe("first-boot settings under mutation", () => {
  const beside = (n: string) => (n === "paio-units/camera.toml" ? { ok: true as const, text: UNIT } : n === "paio-policy.toml" ? { ok: true as const, text: POLICY } : undefined);
  // A mutant may name other files beside it (paio-units/x.toml, another policy file): their problems name them.
  check("the documented paio-config.toml", "paio-config.toml", CONFIG, (t) => planConfig(t, beside), [""]);
  check("Imager's user-data", "user-data", USER_DATA, (t) => planUserData(t));
  check("Imager's network-config", "network-config", NETWORK_CONFIG, (t) => planNetworkConfig(t, { baseNetwork: "[wired]\ndhcp = true\n" }));

  test("whole imports of mutants: no Wi-Fi key is left on a boot partition whose file could be read", () => {
    const r = rng(SEED);
    const dir = mkdtempSync(join(tmpdir(), "paio-provision-fuzz-"));
    const KEY = "0c9d28a5eb4d939167e66d2e112bcae6b12f8e325592d79b337261c4ad3d7a15";
    const t0 = Date.now();
    const bad: string[] = [];
    let imports = 0;
    try {
      for (let k = 0; k < Math.min(MUTANTS, 200); k++) {
        const boot = join(dir, `b${k}`);
        const state = join(dir, `s${k}`);
        mkdirSync(join(boot, "paio-units"), { recursive: true });
        mkdirSync(state);
        const which = k % 2 === 0 ? "paio-config.toml" : "network-config";
        const text = mutate(which === "paio-config.toml" ? CONFIG.replace('psk = "correct horse battery"', `psk_hex = "${KEY}"`) : NETWORK_CONFIG, r);
        writeFileSync(join(boot, which), text);
        writeFileSync(join(boot, "paio-units/camera.toml"), UNIT);
        writeFileSync(join(boot, "paio-policy.toml"), POLICY);
        const report = importFirstBootSettings({ boot, state, imageNetwork: join(REPO, "image/overlay/etc/paio/network.toml") }, { persistent: true });
        const after = readFileSync(join(boot, which), "utf8");
        const unreadable = report.problems.some((p) => /left as it is on the boot partition/.test(p.message));
        if (after.includes(KEY) && !unreadable) bad.push(`whole import ${k} (${which}): the Wi-Fi key stayed on the boot partition -- mutant: ${JSON.stringify(text).slice(0, 300)}`);
        if (!readdirSync(state).every((n) => !n.endsWith(".tmp"))) bad.push(`whole import ${k} (${which}): a .tmp file was left in the state folder`);
        imports++;
      }
    } catch (e) {
      tally.crashes++;
      bad.push(`whole import ${imports}: threw ${(e as Error).message.split("\n")[0]}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    tally.cases += imports;
    tally.bad.push(...bad);
    tally.ms += Date.now() - t0;
    expect(bad, missed({ ...tally, bad })).toEqual([]);
  }, 300_000);
});

describe("mutants the fuzzer found", () => {
  test("network-config whose version holds a section (an indented block under 'version:'): a problem naming the line, not a thrown error", () => {
    const text = 'network:\n  version:  \n    wlan0:\n      dhcp4: true\n      regulatory-domain: "GB"\n      access-points:';
    expect(planNetworkConfig(text, { baseNetwork: "[wired]\ndhcp = true\n" }).problems.map((p) => p.message)).toEqual([
      "network-config line 2: version is a section of keys: this device reads network-config version 2 (netplan); write 'version: 2'",
    ]);
  });

  test("network-config whose dhcp4 holds a section: a problem that says so", () => {
    const text = "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4:\n        on: true\n";
    expect(planNetworkConfig(text, { baseNetwork: "[wired]\ndhcp = true\n" }).problems.map((p) => p.message)).toEqual([
      "network-config line 4: ethernets.eth0: dhcp4: expected true or false, got a section of keys; the network settings were not applied",
    ]);
  });
});

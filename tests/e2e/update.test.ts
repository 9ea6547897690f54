// A/B updates in QEMU (docs/updates.md): real RAUC bundles installed by the
// guest's RAUC service into the other slot, real reboots through OVMF and
// systemd-boot with its boot counting, the supervisor's health gate.
//
// make test runs one disk through: four bundles refused before anything is
// written; one bad update (its kernel panics, so only the boot loader's
// counting can bring the device back), ending on the old version with its
// data; a good update, committed; a second one into the other slot; a
// rollback on request. `make test-updates` (PAIO_UPDATE_CASES=all) adds the
// bad updates the health gate must catch (the supervisor exits at start, a
// unit never gets healthy, /sbin/init missing, the agent crash-looping) and
// power cuts at three points of an install.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Guest, READY_RE, type GuestOptions } from "../../qemu/guest.ts";
import { rootfsVersion } from "../../image/bundle.ts";
import { BOOT_TIMEOUT_MS, IMAGE, OUT, PRELUDE, REPO, requireBuiltImage, TEST_ARCH } from "../helpers/guest.ts";
import { BUNDLE_HOST, refusedBundles, serveBundles, variantBundle, type Variant } from "../helpers/update-bundles.ts";
import type { UpdateStatus } from "../../init/update/api.ts";

const ALL = process.env.PAIO_UPDATE_CASES === "all";
const ROOTFS = join(OUT, "rootfs.squashfs");
const OTHER_ARCH = TEST_ARCH === "arm64" ? "x86_64" : "arm64";
/** How long a trial that fails by itself (tries, reboots, the gate's timeout) may take to end on the old slot. */
const FALLBACK_MS = 12 * 60_000;
const INCOMING = "/var/lib/paio/update/incoming.raucb";
/** The gate's timeout while bad updates are tried: long enough for a good slot under emulation, short enough to wait for. */
const TRIAL_POLICY = `sed 's/^commit_timeout = .*/commit_timeout = "60s"/' /etc/paio/policy.toml > /var/lib/paio/policy.toml`;

let work = "";
let current = "";
let server: ReturnType<typeof serveBundles> | undefined;

async function sh(g: Guest, script: string, timeoutMs = 300_000): Promise<{ code: number; output: string }> {
  return g.sh(PRELUDE + script, timeoutMs);
}

async function status(g: Guest): Promise<UpdateStatus> {
  const r = await sh(g, "paio update status --json");
  return JSON.parse(r.output.trim().split("\n").pop()!) as UpdateStatus;
}

/** Copies a (small) bundle in and installs it from the file; the output of `paio update install`. */
async function install(g: Guest, bundle: string, extra = ""): Promise<{ code: number; output: string }> {
  await g.put(bundle, INCOMING);
  const r = await sh(g, `paio update install ${INCOMING} ${extra}; rc=$?; rm -f ${INCOMING}; exit $rc`, 600_000);
  return r;
}

/** Installs a bundle the way a device in the field gets one: downloaded from a server (the host's, through QEMU). */
async function installFromServer(g: Guest, bundle: string): Promise<{ code: number; output: string }> {
  return sh(g, `paio update install ${server!.url(bundle)}`, 900_000);
}

/** The guest's options for every boot here: reboots stay in QEMU, and the bundle server is reachable. */
function guestOptions(disk: string): GuestOptions {
  return {
    outDir: OUT, keyDir: join(REPO, "out"), disk, arch: TEST_ARCH, boot: "uefi" as const, snapshot: false, noReboot: false,
    lifetimeS: 3 * 3600,
    guestForwards: [{ guestAddr: BUNDLE_HOST, guestPort: 80, hostPort: server!.port }],
    echo: process.env.PAIO_TEST_CONSOLE ? (l: string) => process.stderr.write(`console| ${l}\n`) : undefined,
  };
}

/** Waits until the guest's network unit has an address (DHCP from QEMU), so the bundle server is reachable. */
const WAIT_NET = `i=0; until ip -4 addr show dev eth0 2>/dev/null | grep -q 'inet 10\.0\.2\.'; do i=$((i+1)); [ $i -gt 120 ] && { echo "no network"; exit 1; }; sleep 0.5; done`;

/**
 * Reboots and waits for the supervisor of the boot that ends it all: through
 * boots that never reach the supervisor, and through trial boots whose health
 * gate reboots them (the gate says "is on trial" right after the supervisor is
 * ready). Resolves with the console lines since the reboot.
 */
async function rebootUntilSettled(g: Guest): Promise<string[]> {
  let mark = await g.requestReboot();
  const start = mark;
  for (;;) {
    const lines = await g.waitNextReady(mark, FALLBACK_MS);
    const ready = mark + lines.findIndex((l) => READY_RE.test(l));
    await Bun.sleep(5000);
    const after = g.console.lines().slice(ready + 1);
    if (!after.some((l) => /is on trial;/.test(l))) return g.console.lines().slice(start);
    mark = ready + 1;
  }
}

/** Waits until the booted slot is committed (the gate ran). */
async function waitCommitted(g: Guest, slot: "A" | "B"): Promise<UpdateStatus> {
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    const s = await status(g);
    const me = s.slots.find((x) => x.name === slot);
    if (s.booted === slot && me?.state === "good" && me.primary) return s;
    if (Date.now() > deadline) throw new Error(`slot ${slot} was not committed within 5 minutes: ${JSON.stringify(s)}`);
    await Bun.sleep(3000);
  }
}

const MARKER = "/var/lib/paio/update-test-marker";

async function expectBackOnOld(g: Guest, badVersion: string, reason: RegExp): Promise<void> {
  const s = await status(g);
  expect(s.booted).toBe("A");
  expect(s.version).toBe(current);
  const a = s.slots.find((x) => x.name === "A")!, b = s.slots.find((x) => x.name === "B")!;
  expect(a).toMatchObject({ state: "good", primary: true, version: current });
  expect(b).toMatchObject({ state: "bad", primary: false, version: badVersion });
  expect(s.last?.event.kind).toBe("rolled-back");
  expect(s.last?.text).toMatch(new RegExp(`back on version ${current.replace(/\./g, "\\.")} \\(slot A\\) because version ${badVersion.replace(/\./g, "\\.")} \\(slot B\\) failed`));
  expect(s.last?.text).toMatch(reason);
  // The data partition is the one from before the update, intact.
  const d = await sh(g, `cat ${MARKER}; paio audit verify >/dev/null && echo audit-ok`);
  expect(d.output).toContain("marker-1");
  expect(d.output).toContain("audit-ok");
}

function bundle(variant: Variant, version: string): string {
  return variantBundle(ROOTFS, work, variant, version, TEST_ARCH).file;
}

describe("A/B updates", () => {
  let guest: Guest;
  beforeAll(async () => {
    requireBuiltImage();
    work = mkdtempSync(join(tmpdir(), "paio-update-"));
    server = serveBundles(work);
    current = rootfsVersion(ROOTFS);
    Bun.spawnSync(["cp", "--sparse=always", IMAGE, join(work, "disk.img")]);
    guest = await Guest.start(guestOptions(join(work, "disk.img")));
    await guest.waitReady(BOOT_TIMEOUT_MS);
    const r = await sh(guest, `echo marker-1 > ${MARKER}; sync; cat /proc/cmdline`);
    expect(r.output).toContain("rauc.slot=A");
  }, BOOT_TIMEOUT_MS + 120_000);
  afterAll(() => {
    guest?.kill();
    server?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test("a fresh image runs slot A, committed; slot B is empty", async () => {
    const s = await status(guest);
    expect(s).toMatchObject({ supported: true, booted: "A", version: current });
    expect(s.slots.map((x) => [x.name, x.state, x.primary])).toEqual([["A", "good", true], ["B", "empty", false]]);
    const r = await sh(guest, "paio units | grep -E '^(dbus|rauc) ' ; rauc status --output-format=json");
    expect(r.output).toMatch(/^dbus\s+running/m);
    expect(r.output).toMatch(/^rauc\s+running/m);
    expect(r.output).toContain('"booted":"A"');
  }, 120_000);

  test("refused before anything is written: a changed byte, another CA, another architecture, an older version", async () => {
    const refused = refusedBundles(work, TEST_ARCH, OTHER_ARCH, current);
    const before = await sh(guest, "dd if=/dev/disk/by-partlabel/paio-root-b bs=1M count=4 2>/dev/null | sha256sum");
    const cases: [string, RegExp][] = [
      [refused.tampered, /payload is corrupted|verif|hash/i],
      [refused.otherCa, /signature does not verify/],
      [refused.otherArch, new RegExp(`is for 'paio-${OTHER_ARCH}'.*takes 'paio-${TEST_ARCH}'`)],
      [refused.older, /older than the running .*--allow-downgrade/],
    ];
    for (const [file, why] of cases) {
      const r = await install(guest, file);
      expect(r.code, r.output).toBe(1);
      expect(r.output).toMatch(why);
    }
    const after = await sh(guest, "dd if=/dev/disk/by-partlabel/paio-root-b bs=1M count=4 2>/dev/null | sha256sum");
    expect(after.output).toBe(before.output);
    const s = await status(guest);
    expect(s.slots.map((x) => [x.name, x.state, x.primary])).toEqual([["A", "good", true], ["B", "empty", false]]);
    expect(s.last?.event.kind).toBe("install-failed");
  }, 15 * 60_000);

  const bad: [Variant, string, RegExp][] = [
    ["kernel-panic", "0.1.1", /never got as far as the supervisor/],
    ...(ALL
      ? ([
          ["supervisor-exits", "0.1.2", /supervisor died 5 times|never became ready/],
          ["unit-unhealthy", "0.1.3", /unit camera never became healthy/],
          ["no-init", "0.1.4", /never got as far as the supervisor/],
          ["agent-crash", "0.1.5", /the agent is not running steadily/],
        ] as [Variant, string, RegExp][])
      : []),
  ];
  for (const [variant, version, reason] of bad) {
    test(`bad update (${variant}): back on the old version by itself, data intact, the rollback explained`, async () => {
      await sh(guest, `${TRIAL_POLICY}; ${WAIT_NET}`);
      const r = await installFromServer(guest, bundle(variant, version));
      expect(r.code, r.output).toBe(0);
      expect(r.output).toContain(`installed version ${version} into slot B`);
      expect((await status(guest)).slots.find((x) => x.name === "B")).toMatchObject({ state: "trial", primary: true, version });
      const lines = await rebootUntilSettled(guest);
      if (variant === "kernel-panic") expect(lines.join("\n")).toMatch(/Kernel panic/);
      await expectBackOnOld(guest, version, reason);
      // The agent takes the journal in when it starts, and the slot may have settled before the agent has started.
      let why = "";
      for (let i = 0; i < 30 && !why.includes(version); i++) {
        if (i > 0) await Bun.sleep(2000);
        why = (await sh(guest, "paio why update 2>&1 | head -20")).output;
      }
      expect(why).toContain(version);
    }, FALLBACK_MS + 10 * 60_000);
  }

  test("a good update: the new version runs after the reboot, is committed, and slot A stays as the fallback", async () => {
    await sh(guest, `rm -f /var/lib/paio/policy.toml; ${WAIT_NET}`);
    const r = await installFromServer(guest, bundle("good", "0.2.0"));
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/\d+% /); // progress
    await guest.waitNextReady(await guest.requestReboot(), FALLBACK_MS);
    const s = await waitCommitted(guest, "B");
    expect(s.version).toBe("0.2.0");
    expect(s.slots.find((x) => x.name === "A")).toMatchObject({ state: "good", primary: false, version: current });
    expect(s.last?.event.kind).toBe("committed");
    const d = await sh(guest, `cat ${MARKER}; cat /proc/cmdline; grep PAIO_VERSION /etc/paio/release`);
    expect(d.output).toContain("marker-1");
    expect(d.output).toContain("rauc.slot=B");
    expect(d.output).not.toContain("paio.trial=1 ");
    expect(d.output).toContain("PAIO_VERSION=0.2.0");
  }, 20 * 60_000);

  test("a second update goes to the other slot (A)", async () => {
    await sh(guest, WAIT_NET);
    const r = await installFromServer(guest, bundle("good", "0.3.0"));
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain("into slot A");
    await guest.waitNextReady(await guest.requestReboot(), FALLBACK_MS);
    const s = await waitCommitted(guest, "A");
    expect(s.version).toBe("0.3.0");
    expect(s.slots.find((x) => x.name === "B")).toMatchObject({ state: "good", version: "0.2.0" });
  }, 20 * 60_000);

  test("going back on request: paio update rollback boots the previous version", async () => {
    const mark = guest.consoleMark();
    const r = await sh(guest, "paio update rollback --yes --no-reboot");
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain("slot B (version 0.2.0) boots next");
    await guest.requestReboot();
    await guest.waitNextReady(mark, FALLBACK_MS);
    const s = await status(guest);
    expect(s).toMatchObject({ booted: "B", version: "0.2.0" });
    expect(s.slots.find((x) => x.name === "A")).toMatchObject({ state: "good", version: "0.3.0", primary: false });
  }, 20 * 60_000);
});

// Power cuts: QEMU is killed at a point of an install, then the same disk boots again.
describe.skipIf(!ALL)("A/B updates: power cuts during an install", () => {
  let disk = "";
  let dir = "";
  let cutServer: ReturnType<typeof serveBundles> | undefined;
  beforeAll(() => {
    requireBuiltImage();
    dir = mkdtempSync(join(tmpdir(), "paio-update-cut-"));
    cutServer = serveBundles(dir);
    current = rootfsVersion(ROOTFS);
    disk = join(dir, "disk.img");
    Bun.spawnSync(["cp", "--sparse=always", IMAGE, disk]);
  });
  afterAll(() => {
    cutServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async () => {
    server = cutServer;
    const g = await Guest.start(guestOptions(disk));
    await g.waitReady(BOOT_TIMEOUT_MS);
    return g;
  };

  // Each script runs the install in the background and prints CUT-NOW when the point is
  // reached; if the install ends first, it prints the install's output and fails.
  const gone = `kill -0 $inst 2>/dev/null || { echo "the install ended before the point:"; cat /tmp/install.log; exit 1; }`;
  const rootB = "/sys/class/block/$(basename $(readlink -f /dev/disk/by-partlabel/paio-root-b))/stat";
  const points: [string, string, "A" | "B"][] = [
    ["while RAUC writes the slot", `w0=$(awk '{print $7}' ${rootB})
      while :; do ${gone}; w=$(awk '{print $7}' ${rootB}); [ $((w - w0)) -gt 40000 ] && break; sleep 0.05; done`, "A"],
    // The backend's set-primary first mounts the written slot (/run/paio/update/slot-b.*) to take its
    // kernel, and only then writes the ESP: a cut as soon as that mount point appears is before the switch.
    ["after writing, before the switch", `while ! ls /run/paio/update 2>/dev/null | grep -q '^slot-b\\.'; do ${gone}; sleep 0.02; done`, "A"],
    ["right after the switch", `wait $inst || { cat /tmp/install.log; exit 1; }`, "B"],
  ];
  for (const [what, waitFor, endsOn] of points) {
    test(`a power cut ${what}: the device boots slot ${endsOn}, with its data`, async () => {
      const g = await start();
      const b = variantBundle(ROOTFS, dir, "good", "0.2.0", TEST_ARCH).file;
      await g.sh(`echo marker-1 > ${MARKER}; sync; ${WAIT_NET}`);
      let cut = false;
      let said = "";
      const run = g.exec(`${PRELUDE}\npaio update install ${cutServer!.url(b)} > /tmp/install.log 2>&1 & inst=$!\n${waitFor}\necho CUT-NOW\nsleep 600\n`, (d) => {
        said += new TextDecoder().decode(d);
        if (!cut && said.includes("CUT-NOW")) {
          cut = true;
          g.kill();
        }
      }).catch(() => -1);
      await run;
      g.kill();
      expect(cut, said).toBe(true);
      const g2 = await start();
      try {
        if (endsOn === "B") await waitCommitted(g2, "B");
        const s = await status(g2);
        expect(s.booted).toBe(endsOn);
        expect(s.slots.find((x) => x.name === endsOn)!.primary).toBe(true);
        if (endsOn === "A") expect(s.slots.find((x) => x.name === "B")!.state).not.toBe("trial");
        const d = await sh(g2, `cat ${MARKER}; paio audit verify >/dev/null && echo audit-ok`);
        expect(d.output).toContain("marker-1");
        expect(d.output).toContain("audit-ok");
        // Back to slot A for the next point.
        if (endsOn === "B") {
          await sh(g2, "paio update rollback --yes --no-reboot");
        }
        await g2.shutdown("POWEROFF");
      } finally {
        g2.kill();
      }
    }, 30 * 60_000);
  }
});

// The update system's pure parts on plain files: systemd-boot's entries for the
// two slots (the order it boots them in, boot counting, commit and fallback),
// the health gate's rules, rollback detection from the journal, versions and
// sources. The bootloader itself is exercised in tests/e2e/update.test.ts.
import { describe, expect, test, beforeEach, afterEach } from "vitest";
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bootOrder, entryState, firstEntryText, markBad, markGood, parseEntry, primarySlot, readEntries, setPrimary, slotEntry, slotOptions, TRIES,
} from "../../init/update/boot-entries.ts";
import { AGENT_STABLE_MS, gateBlockers, rollbackToRecord, type GateUnit } from "../../init/update/gate.ts";
import { appendEvent, readEvents, type UpdateEvent } from "../../init/update/journal.ts";
import { checkSource, compareVersions } from "../../init/update/install.ts";

const CMDLINE = "console=ttyS0,115200 root=PARTLABEL=paio-root-a rauc.slot=A ro panic=10";
let esp = "";
beforeEach(() => {
  esp = mkdtempSync(join(tmpdir(), "paio-esp-"));
  mkdirSync(join(esp, "loader/entries"), { recursive: true });
  writeFileSync(join(esp, "loader/entries/paio-a.conf"), firstEntryText("0.1.0", CMDLINE));
});
afterEach(() => rmSync(esp, { recursive: true, force: true }));

const files = () => readdirSync(join(esp, "loader/entries")).sort();
const contents = (version: string) => ({ version, vmlinuz: new Uint8Array([1, 2, 3]), initrd: new Uint8Array([4, 5]) });

/** What systemd-boot does at power-on: boot the first entry, one try fewer if it is counted. */
function bootOnce(): string {
  const first = bootOrder(readEntries(esp))[0]!;
  if (first.triesLeft !== undefined && first.triesLeft > 0) {
    const next = `paio-${first.slot.toLowerCase()}+${first.triesLeft - 1}-${(first.triesDone ?? 0) + 1}.conf`;
    renameSync(join(esp, "loader/entries", first.file), join(esp, "loader/entries", next));
  }
  return first.slot;
}

describe("boot entries", () => {
  test("a fresh image boots slot A, committed; slot B is empty", () => {
    const e = readEntries(esp);
    expect(primarySlot(e)).toBe("A");
    expect(entryState(slotEntry(e, "A"))).toBe("good");
    expect(entryState(slotEntry(e, "B"))).toBe("empty");
    expect(slotEntry(e, "A")!.version).toBe("0.1.0");
    expect(slotEntry(e, "A")!.options).toContain("root=PARTLABEL=paio-root-a");
  });

  test("an install: B gets its kernel and a trial entry with TRIES boots, and boots next", () => {
    markBad(esp, "B"); // RAUC marks the target bad before writing it
    setPrimary(esp, "B", contents("0.2.0"));
    expect(files()).toEqual(["paio-a.conf", `paio-b+${TRIES}.conf`]);
    expect(readFileSync(join(esp, "paio/b/vmlinuz"))).toEqual(Buffer.from([1, 2, 3]));
    const b = slotEntry(readEntries(esp), "B")!;
    expect(b.options).toContain("root=PARTLABEL=paio-root-b");
    expect(b.options).toContain("rauc.slot=B");
    expect(b.options).toContain("paio.trial=1");
    expect(b.options).toContain("console=ttyS0,115200");
    expect(b.options).not.toContain("paio-root-a");
    expect(primarySlot(readEntries(esp))).toBe("B");
  });

  test("a trial that never commits falls back to A after its tries", () => {
    setPrimary(esp, "B", contents("0.2.0"));
    const booted = Array.from({ length: TRIES + 2 }, bootOnce);
    expect(booted).toEqual([...Array(TRIES).fill("B"), "A", "A"]);
    expect(entryState(slotEntry(readEntries(esp), "B"))).toBe("bad");
  });

  test("a committed trial keeps booting; A stays as the fallback", () => {
    setPrimary(esp, "B", contents("0.2.0"));
    expect(bootOnce()).toBe("B");
    markGood(esp, "B");
    expect(files()).toEqual(["paio-a.conf", "paio-b.conf"]);
    expect(slotEntry(readEntries(esp), "B")!.options).not.toContain("paio.trial");
    expect(Array.from({ length: 5 }, bootOnce)).toEqual(Array(5).fill("B"));
    expect(entryState(slotEntry(readEntries(esp), "A"))).toBe("good");
  });

  test("a failed health gate marks the slot bad at once: the next boot is A", () => {
    setPrimary(esp, "B", contents("0.2.0"));
    expect(bootOnce()).toBe("B");
    markBad(esp, "B");
    expect(bootOnce()).toBe("A");
    expect(slotEntry(readEntries(esp), "B")!.version).toBe("0.2.0");
  });

  test("the second update goes to the other slot; rollback to a committed slot only bumps it", () => {
    setPrimary(esp, "B", contents("0.2.0"));
    bootOnce();
    markGood(esp, "B");
    markBad(esp, "A");
    setPrimary(esp, "A", contents("0.3.0"));
    expect(primarySlot(readEntries(esp))).toBe("A");
    expect(slotEntry(readEntries(esp), "A")!.options).toContain("root=PARTLABEL=paio-root-a");
    expect(bootOnce()).toBe("A");
    markGood(esp, "A");
    setPrimary(esp, "B"); // going back to 0.2.0
    expect(primarySlot(readEntries(esp))).toBe("B");
    expect(files()).toEqual(["paio-a.conf", "paio-b.conf"]);
  });

  test("a bad or empty slot cannot be made primary without contents", () => {
    expect(() => setPrimary(esp, "B")).toThrow(/slot B is empty/);
    setPrimary(esp, "B", contents("0.2.0"));
    markBad(esp, "B");
    expect(() => setPrimary(esp, "B")).toThrow(/marked bad/);
  });

  test("an interrupted commit (both files of a slot) still boots that slot, and the next commit cleans up", () => {
    setPrimary(esp, "B", contents("0.2.0"));
    const counted = files().find((f) => f.startsWith("paio-b+"))!;
    const text = readFileSync(join(esp, "loader/entries", counted), "utf8");
    writeFileSync(join(esp, "loader/entries/paio-b.conf"), text.replace(" paio.trial=1", ""));
    expect(primarySlot(readEntries(esp))).toBe("B");
    expect(slotEntry(readEntries(esp), "B")!.file).toBe("paio-b.conf");
    markGood(esp, "B");
    markBad(esp, "B");
    expect(files()).toEqual(["paio-a.conf", "paio-b+0-0.conf"]);
  });

  test("names it does not own are ignored; a garbled version line counts as 0", () => {
    writeFileSync(join(esp, "loader/entries/other.conf"), "title Other\nversion 99\n");
    writeFileSync(join(esp, "loader/entries/paio-a.conf.tmp"), "half");
    expect(readEntries(esp).map((e) => e.file)).toEqual(["paio-a.conf"]);
    expect(parseEntry("paio-b+2-1.conf", "version x\ntitle PAIO 1.0 (slot B)\n")).toMatchObject({ slot: "B", triesLeft: 2, triesDone: 1, generation: 0, version: "1.0" });
    expect(parseEntry("paio-c.conf", "")).toBeUndefined();
  });

  test("slot options replace root, rauc.slot and paio.trial and keep the rest", () => {
    expect(slotOptions("a=1 root=X rauc.slot=A paio.trial=1 b", "B", false)).toBe("a=1 b root=PARTLABEL=paio-root-b rauc.slot=B");
  });
});

describe("health gate", () => {
  const now = 1_000_000;
  const unit = (u: Partial<GateUnit> & { name: string }): GateUnit => ({ state: "running", since: now - 60_000, restarts: 0, hasHealth: false, ...u });
  test("passes when every health-checked unit passed and the agent runs steadily", () => {
    expect(gateBlockers([unit({ name: "camera", hasHealth: true, lastCheck: "pass" }), unit({ name: "agent" }), unit({ name: "demo" })], now)).toEqual([]);
  });
  test("names a unit that never became healthy, and an agent that keeps restarting", () => {
    const b = gateBlockers([
      unit({ name: "camera", hasHealth: true, lastCheck: "fail: exit status 1" }),
      unit({ name: "web", hasHealth: true, state: "starting" }),
      unit({ name: "agent", state: "running", since: now - AGENT_STABLE_MS + 1, restarts: 4 }),
    ], now);
    expect(b).toEqual([
      "unit camera never became healthy (running, last check: fail: exit status 1)",
      "unit web never became healthy (starting, not checked yet)",
      "the agent is not running steadily (running, restarted 4 times)",
    ]);
  });
});

test("a unit file of the new image that does not load fails the trial; one on the data partition does not", () => {
  expect(gateBlockers([], 0, [
    "/etc/paio/units/camera.toml field 'health.timeout': must be shorter than health.interval (2s)",
    "/var/lib/paio/units/mine.toml: not TOML",
  ])).toEqual(["the unit file /etc/paio/units/camera.toml field 'health.timeout': must be shorter than health.interval (2s)"]);
});

describe("rollback detection", () => {
  const inst = (at: number): UpdateEvent => ({ kind: "installed", at, version: "0.2.0", slot: "B", seconds: 30 });
  test("on the old slot after an install before this boot: rolled back, with the trial's reason", () => {
    const ev = rollbackToRecord([inst(100), { kind: "trial-started", at: 200, version: "0.2.0", slot: "B" }, { kind: "trial-failed", at: 300, version: "0.2.0", slot: "B", reason: "unit camera never became healthy" }], "A", "0.1.0", 400);
    expect(ev).toMatchObject({ kind: "rolled-back", from: { slot: "B", version: "0.2.0" }, to: { slot: "A", version: "0.1.0" }, reason: "unit camera never became healthy" });
  });
  test("no trial event at all: the kernel or PID 1 never got to the supervisor", () => {
    expect(rollbackToRecord([inst(100)], "A", "0.1.0", 400)).toMatchObject({ reason: expect.stringMatching(/never got as far as the supervisor/) });
  });
  test("nothing to record: installed during this boot, committed, already recorded, or running the new slot", () => {
    expect(rollbackToRecord([inst(500)], "A", "0.1.0", 400)).toBeUndefined();
    expect(rollbackToRecord([inst(100), { kind: "committed", at: 200, version: "0.2.0", slot: "B", seconds: 40 }], "A", "0.1.0", 400)).toBeUndefined();
    const rolled = rollbackToRecord([inst(100)], "A", "0.1.0", 400)!;
    expect(rollbackToRecord([inst(100), rolled], "A", "0.1.0", 900)).toBeUndefined();
    expect(rollbackToRecord([inst(100)], "B", "0.2.0", 400)).toBeUndefined();
  });
});

describe("journal", () => {
  test("a torn last line is skipped", () => {
    const f = join(esp, "journal.jsonl");
    appendEvent({ kind: "installed", at: 1, version: "0.2.0", slot: "B", seconds: 3 }, f);
    writeFileSync(f, readFileSync(f, "utf8") + '{"kind":"committed","at":2,"ver');
    expect(readEvents(f).map((e) => e.kind)).toEqual(["installed"]);
    // The next event after the torn line is not lost with it.
    appendEvent({ kind: "committed", at: 3, version: "0.2.0", slot: "B", seconds: 40 }, f);
    expect(readEvents(f).map((e) => e.kind)).toEqual(["installed", "committed"]);
  });
});

describe("versions and sources", () => {
  test("versions compare numerically", () => {
    expect(compareVersions("0.10.0", "0.9.1")).toBe(1);
    expect(compareVersions("0.1.0", "0.1.0")).toBe(0);
    expect(compareVersions("0.1", "0.1.1")).toBe(-1);
  });
  test("a source is an absolute path or an http(s) URL; anything else is refused with the reason", () => {
    expect(checkSource("/var/lib/paio/paio-0.2.0-x86_64.raucb")).toEqual({ kind: "file" });
    expect(checkSource("http://192.168.1.10:8000/paio.raucb")).toEqual({ kind: "url" });
    expect(checkSource("paio.raucb")).toMatchObject({ error: expect.stringMatching(/neither an absolute path/) });
    expect(checkSource("/tmp/a b")).toMatchObject({ error: expect.stringMatching(/spaces or control/) });
    expect(checkSource("ftp://x/y")).toMatchObject({ error: expect.any(String) });
    expect(checkSource("")).toMatchObject({ error: expect.any(String) });
  });
});

// The health gate (docs/updates.md), run by the supervisor at every boot.
//
// On a new slot's trial boot (paio.trial=1 on the kernel command line) it
// commits the slot once every unit that has a health check has passed it and
// the agent has stayed running, within the policy's update.commit_timeout
// (default 120 s from boot). Otherwise it writes why to the update journal,
// marks the slot bad and reboots: the bootloader then starts the other slot.
//
// On any other boot it notices a rollback that already happened (the device is
// on the old slot although the last install went to the other one) and writes
// it to the journal with the reason the trial left there.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadPolicy, DEFAULT_POLICY } from "../../agents/guard/policy.ts";
import { markBad, markGood, otherSlot, TRIES } from "./boot-entries.ts";
import { bootedSlot, onTrial, RUN_DIR, runningVersion, withEsp } from "./device.ts";
import { appendEvent, readEvents, type SlotName, type UpdateEvent } from "./journal.ts";

/** What the gate needs to know of one unit. */
export interface GateUnit {
  name: string;
  state: string;
  since: number;
  restarts: number;
  hasHealth: boolean;
  lastCheck?: string;
}

/** The agent must have run this long without a restart to count as running. */
export const AGENT_STABLE_MS = 10_000;

/** The image's own unit files: one of them that does not load is part of the new version. */
export const IMAGE_UNIT_DIR = "/etc/paio/units/";

/**
 * Why the trial cannot commit yet, one reason per unit; empty when it can.
 * `refused` are the supervisor's unit-file errors: those of the image's own
 * units count (the new version shipped a unit that does not load); those of
 * the device's units on the data partition do not (both versions read them).
 */
export function gateBlockers(units: GateUnit[], now = Date.now(), refused: string[] = []): string[] {
  const out: string[] = [];
  for (const r of refused) if (r.startsWith(IMAGE_UNIT_DIR)) out.push(`the unit file ${r}`);
  for (const u of units) {
    if (u.hasHealth && !(u.state === "running" && u.lastCheck === "pass")) {
      out.push(`unit ${u.name} never became healthy (${u.state}${u.lastCheck ? `, last check: ${u.lastCheck}` : ", not checked yet"})`);
    }
  }
  const agent = units.find((u) => u.name === "agent");
  if (agent && !(agent.state === "running" && now - agent.since >= AGENT_STABLE_MS)) {
    out.push(`the agent is not running steadily (${agent.state}, restarted ${agent.restarts} time${agent.restarts === 1 ? "" : "s"})`);
  }
  return out;
}

function uptimeMs(): number {
  try {
    return Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000;
  } catch {
    return 0;
  }
}

/**
 * The rollback event to write on this boot, if any: the last install went to the
 * other slot, before this boot began, and nothing since says it was committed
 * or already explained.
 */
export function rollbackToRecord(events: UpdateEvent[], booted: SlotName, running: string, bootedAt: number): UpdateEvent | undefined {
  let i = events.length - 1;
  while (i >= 0 && !["installed", "rollback-requested"].includes(events[i]!.kind)) i--;
  const inst = events[i];
  if (!inst || inst.kind !== "installed" || inst.slot === booted || inst.at >= bootedAt) return undefined;
  const later = events.slice(i + 1);
  if (later.some((e) => (e.kind === "committed" && e.slot === inst.slot) || e.kind === "rolled-back")) return undefined;
  const failed = later.filter((e): e is Extract<UpdateEvent, { kind: "trial-failed" }> => e.kind === "trial-failed" && e.slot === inst.slot).pop();
  const reason = failed?.reason ?? `it never got as far as the supervisor in ${TRIES} boots (the kernel, the initramfs or PID 1 failed), so the bootloader went back`;
  return { kind: "rolled-back", at: Date.now(), from: { slot: inst.slot, version: inst.version }, to: { slot: booted, version: running }, reason };
}

export interface GateHooks {
  units(): GateUnit[];
  /** The supervisor's unit-file errors (Supervisor.refused). */
  refused?(): string[];
  say(line: string): void;
  /** Asks PID 1 for an orderly reboot. */
  reboot(): void;
}

const COMMITTED = () => join(RUN_DIR, "update-committed");

/** Starts the gate for this boot; returns a function that stops it (tests). */
export function startUpdateGate(h: GateHooks): () => void {
  const booted = bootedSlot();
  if (!booted) return () => {};
  const version = runningVersion();
  const marker = join(RUN_DIR, "update", "gate-ran");
  // Once per boot: a restarted supervisor must not write the same events again.
  const firstRun = !existsSync(marker);
  try {
    mkdirSync(join(RUN_DIR, "update"), { recursive: true });
    writeFileSync(marker, `${Date.now()}\n`);
  } catch {
    // /run is always writable on a device; in a test it may not be
  }

  if (!onTrial() || existsSync(COMMITTED())) {
    if (firstRun) {
      try {
        const ev = rollbackToRecord(readEvents(), booted, version, Date.now() - uptimeMs());
        if (ev) {
          appendEvent(ev);
          h.say(`update: ${ev.kind === "rolled-back" ? `back on version ${version}: version ${ev.from.version ?? "?"} on slot ${ev.from.slot} failed: ${ev.reason}` : ""}`);
        }
      } catch (e) {
        h.say(`update: cannot read the update journal: ${(e as Error).message}`);
      }
    }
    return () => {};
  }

  let timeoutMs = DEFAULT_POLICY.update.commitTimeoutMs;
  try {
    timeoutMs = loadPolicy().update.commitTimeoutMs;
  } catch (e) {
    h.say(`update: the policy file cannot be used (${(e as Error).message}); the new version gets the default ${timeoutMs / 1000} s`);
  }
  if (firstRun) appendEvent({ kind: "trial-started", at: Date.now(), version, slot: booted });
  const deadline = Date.now() + Math.max(0, timeoutMs - uptimeMs());
  h.say(`update: version ${version} (slot ${booted}) is on trial; it is committed once every health-checked unit passes and the agent runs (within ${Math.round((deadline - Date.now()) / 1000)} s)`);

  let done = false;
  const timer = setInterval(() => {
    if (done) return;
    const blockers = gateBlockers(h.units(), Date.now(), h.refused?.() ?? []);
    if (blockers.length === 0) {
      done = true;
      clearInterval(timer);
      try {
        withEsp(true, (esp) => markGood(esp, booted));
        writeFileSync(COMMITTED(), `${Date.now()}\n`);
        const seconds = uptimeMs() / 1000;
        appendEvent({ kind: "committed", at: Date.now(), version, slot: booted, seconds });
        h.say(`update: version ${version} (slot ${booted}) is healthy ${seconds.toFixed(0)} s after boot: committed; slot ${otherSlot(booted)} stays as the fallback`);
      } catch (e) {
        h.say(`update: cannot commit slot ${booted}: ${(e as Error).message}; it stays on trial`);
      }
      return;
    }
    if (Date.now() < deadline) return;
    done = true;
    clearInterval(timer);
    const reason = `${blockers.join("; ")} within ${Math.round(timeoutMs / 1000)} s of boot on version ${version}`;
    h.say(`update: the trial of version ${version} (slot ${booted}) failed: ${reason}; going back to slot ${otherSlot(booted)}`);
    try {
      appendEvent({ kind: "trial-failed", at: Date.now(), version, slot: booted, reason });
      withEsp(true, (esp) => markBad(esp, booted));
    } catch (e) {
      h.say(`update: cannot mark slot ${booted} bad (${(e as Error).message}); its remaining boot tries will run out instead`);
    }
    h.reboot();
  }, 1000);
  return () => {
    done = true;
    clearInterval(timer);
  };
}

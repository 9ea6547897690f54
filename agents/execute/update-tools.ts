// The update tools of the catalog: "which version is running?", "install the
// update from /var/lib/paio/paio-0.3.1-x86_64.raucb", "go back to the previous
// version". They ask the update system (init/update/, its contract in api.ts)
// and answer in a few plain sentences. What the update system reports (a
// version, a reason, a journal sentence) is data: it is cleaned and cut before
// it is shown.

import type { InstallOptions, InstallResult, RollbackResult, SlotInfo, UpdateStatus } from "../../init/update/api.ts";
import { dataText, eventSentence } from "../monitor/update-journal.ts";

/** What the tools need of the update system; the device's is DEVICE_UPDATES, tests give their own. */
export interface UpdateSystem {
  status(): UpdateStatus | Promise<UpdateStatus>;
  install(source: string, opts?: InstallOptions): Promise<InstallResult>;
  rollback(): RollbackResult | Promise<RollbackResult>;
}

/**
 * The update system of this device. Loaded on first use, so that an agent
 * whose update system cannot load (or a build without one) still starts, and
 * only the update tools say what is wrong.
 */
export const DEVICE_UPDATES: UpdateSystem = {
  status: async () => (await import("../../init/update/status.ts")).updateStatus(),
  install: async (source, opts) => (await import("../../init/update/install.ts")).installUpdate(source, opts),
  rollback: async () => (await import("../../init/update/rollback.ts")).requestRollback(),
};

export interface ToolAnswer {
  ok: boolean;
  reply: string;
  output?: unknown;
}

const v = (s: string | undefined) => (s ? dataText(s, 64) : undefined);

function slotWords(s: SlotInfo): string {
  const version = v(s.version);
  const holds = s.state === "empty" || !version ? "holds no version" : `holds version ${version}`;
  const state = {
    good: "good",
    trial: `on trial, not yet through its health checks${s.triesLeft !== undefined ? ` (${s.triesLeft} boot ${s.triesLeft === 1 ? "try" : "tries"} left)` : ""}`,
    bad: "marked bad (it failed, or was being written)",
    empty: "",
  }[s.state];
  return `${holds}${state ? `, ${state}` : ""}${s.primary && !s.booted ? "; it boots next" : ""}`;
}

/** The answer to "which version is running?": the running version and slot, the other slot, the last update event. */
export function updateStatusText(st: UpdateStatus): string {
  const version = v(st.version) ?? "unknown";
  if (!st.supported) return `Running version ${version}. This device cannot be updated in place: ${dataText(st.reason ?? "it has no second system slot", 300)}.`;
  const booted = st.slots.find((s) => s.booted) ?? st.slots.find((s) => s.name === st.booted);
  const other = st.slots.find((s) => s !== booted && s.name !== st.booted);
  const lines = [`Running version ${version} from slot ${st.booted ?? booted?.name ?? "?"}.`];
  if (booted && booted.state === "trial") lines.push(`It is on trial: it becomes the system once its health checks pass, and the device goes back to the other slot if they do not.`);
  if (other) lines.push(`The other slot (${other.name}) ${slotWords(other)}.`);
  if (st.last) lines.push(`Last update event (${new Date(st.last.event.at).toISOString().slice(0, 16).replace("T", " ")}): ${eventSentence(st.last.event)}.`);
  else lines.push("No update has been installed on this device yet.");
  return lines.join("\n");
}

export async function updateStatusAnswer(u: UpdateSystem): Promise<ToolAnswer> {
  try {
    const st = await u.status();
    return { ok: true, reply: updateStatusText(st), output: st };
  } catch (e) {
    return { ok: false, reply: `cannot read the update status: ${dataText((e as Error).message, 300)}` };
  }
}

/**
 * Reports progress in steps a person can follow on a serial line: at most one
 * line per ten percent, and one whenever what is being done changes.
 */
export function progressSteps(say: (text: string) => void): (percent: number, what: string) => void {
  let step = -1;
  let last = "";
  return (percent, what) => {
    const p = Math.max(0, Math.min(100, Math.round(Number.isFinite(percent) ? percent : 0)));
    const w = dataText(what, 80);
    if (Math.floor(p / 10) === step && w === last) return;
    step = Math.floor(p / 10);
    last = w;
    say(`update: ${p}%${w ? ` ${w}` : ""}`);
  };
}

let installing: string | undefined;

/** Installs the bundle into the other slot; the reply ends with what happens next. */
export async function installAnswer(u: UpdateSystem, source: string, progress: (text: string) => void = () => {}): Promise<ToolAnswer> {
  if (installing !== undefined) return { ok: false, reply: `an update is being installed already (from ${dataText(installing, 200)}); wait until it is done` };
  installing = source;
  let r: InstallResult;
  try {
    r = await u.install(source, { progress: progressSteps(progress) });
  } catch (e) {
    r = { ok: false, reason: (e as Error).message };
  } finally {
    installing = undefined;
  }
  if (!r.ok) return { ok: false, reply: `The update was not installed: ${dataText(r.reason, 300)}. Nothing changed: the device runs the version it ran before.`, output: r };
  const version = v(r.version) ?? "?";
  return {
    ok: true,
    reply: `Version ${version} is installed in slot ${r.slot} (${r.seconds.toFixed(0)} s). It runs after the next reboot ("reboot the device"), on trial: if it is not healthy, the device goes back to the version it runs now by itself.`,
    output: r,
  };
}

export async function rollbackAnswer(u: UpdateSystem): Promise<ToolAnswer> {
  let r: RollbackResult;
  try {
    r = await u.rollback();
  } catch (e) {
    r = { ok: false, reason: (e as Error).message };
  }
  if (!r.ok) return { ok: false, reply: `Nothing was changed: ${dataText(r.reason, 300)}.`, output: r };
  return {
    ok: true,
    reply: `Slot ${r.to} (version ${v(r.version) ?? "?"}) boots next instead of slot ${r.from}. The device keeps running this version until it reboots ("reboot the device").`,
    output: r,
  };
}

// The agent's watch on the update journal: every event becomes an audit
// record ("update"), and an update that did not take (install-failed,
// trial-failed, rolled-back) also becomes an incident, with the journal's
// sentence for it. Each event is handled once: its records and the cursor
// are written in one transaction, so a crash or a power cut between two
// events neither loses nor repeats one, and a restarted agent (on either
// system slot: the knowledge base is on the data partition) carries on after
// the last one handled.

import { statSync } from "node:fs";
import { JOURNAL, type UpdateEvent } from "../../init/update/journal.ts";
import type { Knowledge } from "../knowledge/store.ts";
import { cleanEvent, eventSentence, newEvents, parseCursor } from "../monitor/update-journal.ts";
import type { AgentEvent } from "../protocol.ts";

/** The knowledge base's key for the cursor. */
export const CURSOR_KEY = "update.journal";

/** Events that mean an update did not take: a person should know, and may try again. */
const FAILURES = new Set(["install-failed", "trial-failed", "rolled-back"]);

export interface Handled {
  event: UpdateEvent;
  text: string;
  auditSeq: number;
  incident?: number;
}

export class UpdateWatch {
  private seen = "";
  private lastPoll = -Infinity;

  constructor(
    readonly file = JOURNAL,
    /** Least time between two looks at the journal (it is only read when it changed). */
    private everyMs = 5000,
  ) {}

  /**
   * Handles the events written since the last call. Reads the journal only
   * when its size or time changed (or `force`), and writes only when there
   * is a new event: nothing at idle.
   */
  poll(k: Knowledge, now = Date.now(), emit: (e: AgentEvent) => void = () => {}, force = false): Handled[] {
    if (!force && now - this.lastPoll < this.everyMs) return [];
    this.lastPoll = now;
    let stamp: string;
    try {
      const st = statSync(this.file);
      stamp = `${st.size} ${st.mtimeMs} ${st.ino}`;
    } catch {
      stamp = "none";
    }
    if (!force && stamp === this.seen) return [];
    const out: Handled[] = [];
    for (const n of newEvents(this.file, parseCursor(k.get(CURSOR_KEY)))) {
      const h = k.audit.batch(() => {
        const r = record(k, n.event, now, { index: n.index, key: n.cursor.key });
        k.set(CURSOR_KEY, JSON.stringify(n.cursor));
        return r;
      });
      out.push(h);
      // The feed shows "update: ..." for an event, "incident: update: ..." for an update that did not take.
      const incident = h.incident !== undefined;
      emit({ event: incident ? "incident" : "update", time: typeof n.event.at === "number" ? n.event.at : now, text: incident ? `update: ${h.text}` : h.text, audit_seq: h.auditSeq });
    }
    // Only once every event is handled: a failed write is tried again at the next look.
    this.seen = stamp;
    return out;
  }
}

function record(k: Knowledge, raw: UpdateEvent, now: number, journal: { index: number; key: string }): Handled {
  const event = cleanEvent(raw);
  const text = eventSentence(raw);
  const at = event.at || now;
  let incident: number | undefined;
  if (FAILURES.has(event.kind)) {
    const signature = `update:${event.kind}`;
    k.seeSignature(signature, at);
    // It waits for a person: the device is unchanged or back on the version it had, and only a person can try again.
    incident = k.openIncident({ time: at, unit: null, signature, class: "update", summary: `update: ${text}`, state: "proposed" }).id;
  }
  if (event.kind === "committed") {
    // A version that passed its health checks ends the update trouble before it.
    for (const i of k.incidents(50)) if (i.class === "update" && i.closed === null) k.setIncidentState(i.id, "resolved", at);
  }
  const rec = k.audit.append("update", null, {
    event, journal, ...(incident !== undefined ? { incident } : {}),
    justification: text,
  }, now);
  return { event, text, auditSeq: rec.seq, incident };
}

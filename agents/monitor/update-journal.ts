// The update journal as the agent reads it (init/update/journal.ts writes it):
// the events not handled yet, after a cursor kept in the knowledge base, and
// each event made safe to show. The journal lives on the data partition, as
// does the knowledge base, so the cursor is the same whichever system slot
// booted, and an agent that restarts carries on where it stopped.
//
// Journal text is data: a reason or a version may come from a bundle, a
// download or a failing unit. It is cut to a length, stripped of control
// characters and only ever shown or stored, never understood.

import { createHash } from "node:crypto";
import { describeEvent, readEvents, type SlotName, type UpdateEvent } from "../../init/update/journal.ts";
import { canonicalJson } from "../knowledge/canonical.ts";

/** How far the agent has read: the number of events handled and the last one's fingerprint and time. */
export interface JournalCursor {
  n: number;
  key: string;
  at: number;
}

export const START: JournalCursor = { n: 0, key: "", at: 0 };

/** Control characters (C0, DEL, C1), line and paragraph separators, and the bidirectional overrides that reorder what a terminal shows. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+/g;

/** Text from data, safe to show on one line: control characters become spaces, runs of spaces one, at most `max` characters. */
export function dataText(value: unknown, max = 300): string {
  const s = String(value ?? "").replace(UNSAFE, " ").replace(/\s+/g, " ").trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** A slot's name as written, or "?" (shown, never used to choose a slot). */
const slot = (v: unknown): SlotName => (v === "A" || v === "B" ? v : ("?" as SlotName));
const seconds = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/**
 * A copy of the event with every text field cleaned and cut, and numbers and
 * slot names made sure of: a line that parses but was written by something
 * else (or damaged) still gives a sentence, never a crash.
 */
export function cleanEvent(ev: UpdateEvent): UpdateEvent {
  // A field that is missing (a damaged or foreign line) reads as "?", a missing reason as such.
  const t = (v: unknown, max = 64) => dataText(v, max) || "?";
  const why = (v: unknown) => dataText(v, 300) || "no reason was recorded";
  const at = seconds(ev.at);
  switch (ev.kind) {
    case "install-started":
      return { kind: ev.kind, at, source: t(ev.source, 300), slot: slot(ev.slot), from: t(ev.from) };
    case "install-failed":
      return { kind: ev.kind, at, source: t(ev.source, 300), reason: why(ev.reason) };
    case "installed":
      return { kind: ev.kind, at, version: t(ev.version), slot: slot(ev.slot), seconds: seconds(ev.seconds) };
    case "trial-started":
      return { kind: ev.kind, at, version: t(ev.version), slot: slot(ev.slot) };
    case "committed":
      return { kind: ev.kind, at, version: t(ev.version), slot: slot(ev.slot), seconds: seconds(ev.seconds) };
    case "trial-failed":
      return { kind: ev.kind, at, ...(ev.version !== undefined ? { version: t(ev.version) } : {}), slot: slot(ev.slot), reason: why(ev.reason) };
    case "rolled-back":
      return {
        kind: ev.kind, at,
        from: { slot: slot(ev.from?.slot), ...(ev.from?.version !== undefined ? { version: t(ev.from.version) } : {}) },
        to: { slot: slot(ev.to?.slot), version: t(ev.to?.version) },
        reason: why(ev.reason),
      };
    case "rollback-requested":
      return { kind: ev.kind, at, from: { slot: slot(ev.from?.slot), version: t(ev.from?.version) }, to: { slot: slot(ev.to?.slot), version: t(ev.to?.version) } };
    default:
      // A kind this agent does not know (a newer update system wrote it): shown by its name only.
      return { kind: dataText((ev as { kind: unknown }).kind, 40), at } as unknown as UpdateEvent;
  }
}

const KINDS = new Set(["install-started", "install-failed", "installed", "trial-started", "committed", "trial-failed", "rolled-back", "rollback-requested"]);

/** The event's sentence (describeEvent), from the cleaned event. */
export function eventSentence(ev: UpdateEvent): string {
  const c = cleanEvent(ev);
  if (!KINDS.has(c.kind)) return `an update event this version of PAIO does not know ('${c.kind}')`;
  return dataText(describeEvent(c), 500);
}

/** One event's fingerprint: the same event always gives the same one. */
export function eventKey(ev: UpdateEvent): string {
  return createHash("sha256").update(canonicalJson(ev)).digest("hex").slice(0, 16);
}

export interface NewEvent {
  event: UpdateEvent;
  /** Its place in the journal (0 is the oldest), and the cursor once it is handled. */
  index: number;
  cursor: JournalCursor;
}

/**
 * The events after the cursor, oldest first. The journal only grows, so the
 * cursor is a count; its last event's fingerprint checks that the journal
 * is still the one counted. A journal that was replaced or cut (by hand, or
 * rotated) is searched for that event; when it is gone, the events later
 * than it are the new ones. A torn last line is skipped by readEvents and
 * read once it is whole.
 */
export function newEvents(file: string, cursor: JournalCursor): NewEvent[] {
  const events = readEvents(file);
  let from: number;
  if (cursor.n <= events.length && (cursor.n === 0 || eventKey(events[cursor.n - 1]!) === cursor.key)) from = cursor.n;
  else {
    const at = events.map(eventKey).lastIndexOf(cursor.key);
    from = at >= 0 ? at + 1 : events.findIndex((e) => e.at > cursor.at);
    if (from < 0) from = events.length;
  }
  return events.slice(from).map((event, i) => ({ event, index: from + i, cursor: { n: from + i + 1, key: eventKey(event), at: typeof event.at === "number" ? event.at : cursor.at } }));
}

export function parseCursor(text: string | undefined): JournalCursor {
  try {
    const c = JSON.parse(text ?? "") as JournalCursor;
    if (Number.isInteger(c.n) && c.n >= 0 && typeof c.key === "string" && typeof c.at === "number") return c;
  } catch {
    // no cursor yet, or an unreadable one: from the start
  }
  return START;
}

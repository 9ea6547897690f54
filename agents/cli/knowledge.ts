// `paio audit verify`, `paio incidents`, `paio why UNIT`, `paio why update`:
// answers from the agent's knowledge base, read-only, so they work while the
// agent is down. "update" is a reserved word after `why`: a unit of that name
// is asked about with `paio why --unit update`.

import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { AuditLog, parseAnchor } from "../knowledge/audit.ts";
import { knowledgePath, parseDetails, type Incident } from "../knowledge/store.ts";
import { describeRecord, describeUpdateRecord, incidentNotes, updateRecords } from "../agent/explain.ts";
import { terminalLine } from "../terminal-text.ts";
import { dirname, join } from "node:path";

export const KNOWLEDGE_USAGE = `  incidents              recent incidents and what the agent did about them
  why [UNIT]             why the agent (or a person) changed UNIT (or anything, latest first), from the audit log
  why update             the latest updates, newest first: installs, commits, rollbacks and their reasons
  why --unit NAME        the same as 'why NAME', for a unit named 'update'
  audit verify [--against SEQ:HASH]
                         check the audit log's hash chain; names the first bad record; with a
                         head kept off the device, also catches a log cut or rebuilt since
  audit head             the newest record as SEQ:HASH, to keep off the device`;

/** Runs a knowledge command; undefined when `cmd` is not one. Exit codes as for every paio command. */
export function knowledgeCommand(cmd: string, rest: string[], json: boolean): number | undefined {
  if (cmd !== "incidents" && cmd !== "why" && cmd !== "audit") return undefined;
  const path = knowledgePath();
  if (!existsSync(path)) {
    console.error(`paio: no knowledge base at ${path}: the agent has not run on this device yet`);
    return 1;
  }
  const db = new Database(path, { readonly: true });
  try {
    db.run("PRAGMA busy_timeout = 5000");
    if (cmd === "audit") {
      const log = new AuditLog(db, join(dirname(path), "audit.head"), { readonly: true });
      if (rest[0] === "head" && rest.length === 1) {
        // What to keep off the device: a later `verify --against` catches a log cut or rebuilt since.
        console.log(json ? JSON.stringify({ anchor: log.headAnchor() }) : log.headAnchor());
        return 0;
      }
      const against = rest[1] === "--against" ? parseAnchor(rest[2] ?? "") : undefined;
      if (rest[0] !== "verify" || (rest.length > 1 && (!against || rest.length !== 3))) {
        console.error("paio: usage: paio audit verify [--against SEQ:HASH] | paio audit head  (SEQ:HASH is what 'paio audit head' printed earlier)");
        return 2;
      }
      const integrity = db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").all().map((r) => r.integrity_check).join("; ");
      const v = log.verify(against);
      if (json) console.log(JSON.stringify({ ...v, integrity }));
      else {
        console.log(`database integrity: ${integrity}`);
        if (v.ok) console.log(`audit log ok: ${v.records} records, chain head ${v.head.slice(0, 16)}…${against ? `, holds record ${against.seq} as recorded off the device` : ""}`);
        else console.error(`paio: audit log damaged at record ${v.badSeq}: ${v.problem} (${v.records} records before it verified)`);
      }
      return v.ok && integrity === "ok" ? 0 : 1;
    }
    if (cmd === "incidents") {
      const list = db.query<Incident & { details?: string | null }, []>("SELECT * FROM incidents ORDER BY id DESC LIMIT 50").all().map((i) => ({ ...i, details: parseDetails(i.details) }));
      if (json) console.log(JSON.stringify(list));
      else if (list.length === 0) console.log("no incidents");
      // Summaries and notes carry data (unit names, log lines): shown without their control characters.
      else for (const i of list) console.log([`#${i.id} ${new Date(i.time).toISOString().slice(0, 19)} ${i.unit ?? "system"} [${i.state}] ${i.summary}`, ...incidentNotes(i)].map(terminalLine).join("\n"));
      return 0;
    }
    if (rest[0] === "update" && rest.length === 1) {
      const records = updateRecords(new AuditLog(db, undefined, { readonly: true }), 20);
      if (json) console.log(JSON.stringify(records.map((r) => ({ ...r, text: describeUpdateRecord(r) }))));
      else if (records.length === 0) console.log("Nothing about updates in the audit log: the agent has seen no install, commit or rollback on this device.");
      else console.log(`Updates, newest first:\n${records.map(describeUpdateRecord).join("\n")}`);
      return 0;
    }
    if (rest[0] === "--unit" && rest[1] === undefined) {
      console.error("paio: usage: paio why --unit NAME");
      return 2;
    }
    const unit = rest[0] === "--unit" ? rest[1] : rest[0];
    const records = new AuditLog(db, undefined, { readonly: true }).recent(20, unit).reverse();
    if (json) console.log(JSON.stringify(records));
    else if (records.length === 0) console.log(unit ? `Nothing in the audit log about ${unit}: the agent has not acted on it and no one changed it through the agent.` : "The audit log is empty.");
    else console.log(records.map(describeRecord).join("\n"));
    return 0;
  } finally {
    db.close();
  }
}

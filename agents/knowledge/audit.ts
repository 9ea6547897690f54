// The audit log: every decision the agent takes (and every tool a person
// runs) is appended as a record that carries the previous record's hash, so
// changing, removing or reordering any record breaks the chain from there on.
//
//   hash(n) = sha256(canonical JSON of { seq, time, kind, unit, body, prev: hash(n-1) })
//
// The chain lives in the knowledge database (table `audit`, schema.ts). The newest
// (seq, hash) is also written to a small head file beside the database, so
// that cutting records off the end is caught too.

import type { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { closeSync, existsSync, renameSync, writeSync } from "node:fs";
import { createOwnFile, plantedKind, readOwnFile } from "../../lib/own-file.ts";
import { canonicalJson } from "./canonical.ts";

export const GENESIS = "0".repeat(64);

/** "update": an event of the update journal (install, trial, commit, rollback), as the agent read it. */
export type AuditKind = "decision" | "outcome" | "call" | "incident" | "mode" | "model" | "update";

export interface AuditRecord {
  seq: number;
  time: number;
  kind: AuditKind;
  unit: string | null;
  body: Record<string, unknown>;
  prev: string;
  hash: string;
}

export function recordHash(r: Omit<AuditRecord, "hash">): string {
  const text = canonicalJson({ seq: r.seq, time: r.time, kind: r.kind, unit: r.unit, body: r.body, prev: r.prev });
  return createHash("sha256").update(text).digest("hex");
}

export type VerifyResult =
  | { ok: true; records: number; head: string }
  | { ok: false; records: number; badSeq: number; problem: string };

export class AuditLog {
  constructor(
    private db: Database,
    /** The head file; absent in tests that do not need it. */
    private headPath?: string,
    /** Readers say so; the table itself comes with the knowledge base's schema (schema.ts), never from here. */
    _opts: { readonly?: boolean } = {},
  ) {}

  private batching = 0;
  private unwrittenHead: AuditRecord | undefined;

  /**
   * Runs `fn` in one write transaction: the records it appends are committed
   * together with whatever else it writes (a cursor, an incident), or not at
   * all. The head file is written after the commit, so it never names a
   * record that is not in the database.
   */
  batch<T>(fn: () => T): T {
    this.batching++;
    let result: T;
    try {
      result = this.db.transaction(fn).immediate();
    } catch (e) {
      if (this.batching === 1) this.unwrittenHead = undefined;
      throw e;
    } finally {
      this.batching--;
    }
    if (this.batching === 0 && this.unwrittenHead) {
      this.writeHead(this.unwrittenHead);
      this.unwrittenHead = undefined;
    }
    return result;
  }

  private writeHead(rec: AuditRecord): void {
    if (!this.headPath) return;
    // The temporary file is made anew, never written through a link planted under its name.
    const fd = createOwnFile(this.headPath + ".tmp", 0o644);
    try {
      writeSync(fd, `${rec.seq} ${rec.hash}\n`);
    } finally {
      closeSync(fd);
    }
    renameSync(this.headPath + ".tmp", this.headPath);
  }

  /** Appends one record atomically (the chain's tail is read inside the same write transaction). */
  append(kind: AuditKind, unit: string | null, body: Record<string, unknown>, time = Date.now()): AuditRecord {
    const rec = this.db.transaction(() => {
      const last = this.db.query<{ seq: number; hash: string }, []>("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").get();
      const r: Omit<AuditRecord, "hash"> = { seq: (last?.seq ?? 0) + 1, time, kind, unit, body: JSON.parse(canonicalJson(body)), prev: last?.hash ?? GENESIS };
      const full: AuditRecord = { ...r, hash: recordHash(r) };
      this.db.run("INSERT INTO audit (seq, time, kind, unit, body, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?)", [full.seq, full.time, full.kind, full.unit, canonicalJson(full.body), full.prev, full.hash]);
      return full;
    }).immediate();
    if (this.batching > 0) this.unwrittenHead = rec;
    else this.writeHead(rec);
    return rec;
  }

  get(seq: number): AuditRecord | undefined {
    const row = this.db.query<RawRow, [number]>("SELECT * FROM audit WHERE seq = ?").get(seq);
    return row ? fromRow(row) : undefined;
  }

  /**
   * The newest records, newest first; only those about `unit` when given, of
   * `kinds` when given, and, with `callTools`, only the calls of tools whose
   * name starts with it ("update.").
   */
  recent(limit: number, unit?: string, kinds?: AuditKind[], callTools?: string): AuditRecord[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (unit !== undefined) {
      where.push("unit = ?");
      params.push(unit);
    }
    if (kinds?.length) {
      where.push(`kind IN (${kinds.map(() => "?").join(",")})`);
      params.push(...kinds);
    }
    if (callTools !== undefined) {
      where.push("(kind <> 'call' OR substr(json_extract(body, '$.call.tool'), 1, ?) = ?)");
      params.push(callTools.length, callTools);
    }
    params.push(limit);
    const sql = `SELECT * FROM audit ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY seq DESC LIMIT ?`;
    return this.db.query<RawRow, (string | number)[]>(sql).all(...params).map(fromRow);
  }

  /**
   * Walks the whole chain. The first record whose hash does not match its
   * contents, whose `prev` is not its predecessor's hash, or whose sequence
   * number skips, is reported; so is a chain shorter than the head file says.
   *
   * Whoever can write the data partition can also cut the log and rewrite
   * the head file to match, or rebuild the whole chain: nothing kept on the
   * device can tell. An `anchor` (a `SEQ:HASH` head copied off the device
   * earlier, see headAnchor) does: the chain must still hold that record
   * with that hash (docs/agent.md, "Audit log and explanations").
   */
  verify(anchor?: { seq: number; hash: string }): VerifyResult {
    let prevHash = GENESIS;
    let expectSeq = 1;
    let n = 0;
    for (const row of this.db.query<RawRow, []>("SELECT * FROM audit ORDER BY rowid").iterate()) {
      let rec: AuditRecord;
      try {
        rec = fromRow(row);
      } catch {
        return { ok: false, records: n, badSeq: row.seq, problem: `record ${row.seq}: its body is not valid JSON (the record was changed)` };
      }
      if (rec.seq !== expectSeq) {
        const problem = rec.seq > expectSeq ? `record ${expectSeq}${rec.seq - expectSeq > 1 ? `..${rec.seq - 1}` : ""} missing (removed) before record ${rec.seq}` : `record ${rec.seq} is out of order (expected ${expectSeq})`;
        return { ok: false, records: n, badSeq: rec.seq > expectSeq ? expectSeq : rec.seq, problem };
      }
      if (recordHash(rec) !== rec.hash) return { ok: false, records: n, badSeq: rec.seq, problem: `record ${rec.seq} was changed: its contents do not match its hash` };
      if (rec.prev !== prevHash) return { ok: false, records: n, badSeq: rec.seq, problem: `record ${rec.seq} does not follow record ${rec.seq - 1}: its 'prev' hash differs (records were reordered or replaced)` };
      prevHash = rec.hash;
      expectSeq++;
      n++;
    }
    if (this.headPath && (existsSync(this.headPath) || plantedKind(this.headPath))) {
      let headText: string;
      try {
        headText = readOwnFile(this.headPath, 4096).toString("utf8");
      } catch (e) {
        return { ok: false, records: n, badSeq: n + 1, problem: `the head file cannot be trusted: ${(e as Error).message}` };
      }
      const [seqText, hash] = headText.trim().split(" ");
      const headSeq = Number(seqText);
      if (headSeq > n) return { ok: false, records: n, badSeq: n + 1, problem: `records ${n + 1}..${headSeq} missing: the head file says the log reached record ${headSeq}` };
      const at = this.get(headSeq);
      if (headSeq > 0 && at?.hash !== hash) return { ok: false, records: n, badSeq: headSeq, problem: `record ${headSeq} differs from the one the head file recorded` };
    }
    if (anchor) {
      if (anchor.seq > n) return { ok: false, records: n, badSeq: n + 1, problem: `records ${n + 1}..${anchor.seq} missing: the head recorded off the device says the log reached record ${anchor.seq} (the log was cut and its head file rewritten)` };
      if (this.get(anchor.seq)?.hash !== anchor.hash) return { ok: false, records: n, badSeq: anchor.seq, problem: `record ${anchor.seq} differs from the one recorded off the device (the log was rewritten from there or before)` };
    }
    return { ok: true, records: n, head: prevHash };
  }

  /** The newest record's number and hash, as `SEQ:HASH` (what `paio audit verify --against` takes); "0:" and the genesis hash for an empty log. */
  headAnchor(): string {
    const last = this.db.query<{ seq: number; hash: string }, []>("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").get();
    return `${last?.seq ?? 0}:${last?.hash ?? GENESIS}`;
  }
}

/** Parses `SEQ:HASH` (a head recorded off the device); undefined when it is not one. */
export function parseAnchor(text: string): { seq: number; hash: string } | undefined {
  const m = /^(\d{1,12}):([0-9a-f]{64})$/.exec(text.trim());
  return m ? { seq: Number(m[1]), hash: m[2]! } : undefined;
}

interface RawRow {
  seq: number;
  time: number;
  kind: string;
  unit: string | null;
  body: string;
  prev: string;
  hash: string;
}

function fromRow(r: RawRow): AuditRecord {
  return { seq: r.seq, time: r.time, kind: r.kind as AuditKind, unit: r.unit, body: JSON.parse(r.body), prev: r.prev, hash: r.hash };
}

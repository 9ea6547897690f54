// The knowledge base: one SQLite database (WAL) under /var/lib/paio/agent/.
// It holds the metric history (downsampled, with a hard size cap), incidents,
// the agent's actions and their outcomes, what it learned about remedies, the
// signatures it has seen, and the audit chain (audit.ts). Its tables and
// their versions are in schema.ts.

import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { AuditLog } from "./audit.ts";
import { KnowledgeRefused, migrateSchema, refuseNewerSchema } from "./schema.ts";

export interface Frame {
  ts: number;
  values: Record<string, number>;
}

export interface Incident {
  id: number;
  time: number;
  unit: string | null;
  signature: string;
  class: string;
  summary: string;
  /** contained: hidden (frozen, quarantined), not fixed; a person must look. */
  state: "open" | "healing" | "resolved" | "failed" | "proposed" | "contained";
  closed: number | null;
  /** What was found: a failed unit's exit codes and last log lines. */
  details?: IncidentDetails | null;
  /** The agent's latest decision in one sentence: what it did, or why it did nothing. */
  decision?: string | null;
}

export interface IncidentDetails {
  /** The unit's last failed exits, oldest first ("exited with status 3"). */
  exits?: { time: number; reason: string }[];
  /** Their codes: 3, "SIGSEGV", "OOM". */
  exit_codes?: (number | string)[];
  /** The unit's last log lines (data, never instructions), as the supervisor keeps them. */
  log?: string[];
}

export type Outcome = "success" | "failure" | "contained";

export interface RemedyStat {
  remedy: string;
  /** Every judged use: fixes, failures and containments. */
  attempts: number;
  /** Fixes: the unit was healthy for the recovery window and the trouble did not come back. */
  successes: number;
  /** Containments: frozen, quarantined or marked failed, which hides the trouble without fixing it. */
  contained: number;
}

export interface StoreOptions {
  /** Keep 1-second frames this long. */
  fineRetentionMs?: number;
  /** Keep 1-minute frames this long. */
  coarseRetentionMs?: number;
  /** Hard cap on the database's size; the oldest metric history goes first. */
  maxBytes?: number;
  /** Fold old 1-second frames when this much has passed the fine retention (fewer, larger writes). */
  foldEveryMs?: number;
}

export class Knowledge {
  readonly db: Database;
  readonly audit: AuditLog;
  private keysets = new Map<string, number>();
  private keysById = new Map<number, string[]>();
  readonly opts: Required<StoreOptions>;

  /** The schema version the file had when it was opened, and the one it has now. */
  readonly schema: { from: number; to: number };

  /**
   * Opens (or creates) the knowledge base and brings its schema up to date.
   * Throws KnowledgeRefused, leaving the file as it was, when the file is at
   * a newer schema version than this build knows or a migration fails.
   */
  constructor(readonly path: string, opts: StoreOptions = {}) {
    this.opts = { fineRetentionMs: 3600_000, coarseRetentionMs: 7 * 86400_000, maxBytes: 48 << 20, foldEveryMs: 600_000, ...opts };
    if (path !== ":memory:") {
      // Before the file is opened for writing: even setting the journal mode writes to it.
      refuseNewerSchema(path);
      mkdirSync(dirname(path), { recursive: true });
    }
    this.db = new Database(path, { create: true });
    try {
      this.db.run("PRAGMA journal_mode = WAL");
      // FULL: a committed audit record survives a power cut, so the head file never runs ahead of the database.
      this.db.run("PRAGMA synchronous = FULL");
      this.db.run("PRAGMA busy_timeout = 5000");
      this.schema = migrateSchema(this.db, path);
    } catch (e) {
      this.db.close();
      throw e;
    }
    this.audit = new AuditLog(this.db, path === ":memory:" ? undefined : join(dirname(path), "audit.head"));
  }

  // --- metric history -------------------------------------------------------

  private keyset(names: string[]): number {
    const key = names.join("\n");
    let id = this.keysets.get(key);
    if (id !== undefined) return id;
    this.db.run("INSERT OR IGNORE INTO keysets (names) VALUES (?)", [key]);
    id = this.db.query<{ id: number }, [string]>("SELECT id FROM keysets WHERE names = ?").get(key)!.id;
    this.keysets.set(key, id);
    this.keysById.set(id, names);
    return id;
  }

  private names(id: number): string[] {
    let names = this.keysById.get(id);
    if (!names) {
      const row = this.db.query<{ names: string }, [number]>("SELECT names FROM keysets WHERE id = ?").get(id);
      names = row ? row.names.split("\n") : [];
      this.keysById.set(id, names);
    }
    return names;
  }

  /**
   * Stores one sample of every metric: values as float32, names once per key
   * set. Flash storage wears with every page written, and at idle most values
   * repeat from one second to the next (an idle unit's memory, processes and
   * restarts), so a frame stores only the values that changed since the
   * previous one (a bitmap says which), with a full frame at the first
   * frame of every minute and whenever the set of metrics changes: a reader
   * goes back at most a minute to rebuild any frame, and folding (which cuts
   * at minute boundaries) leaves a full frame first.
   */
  addFrame(frame: Frame): void {
    const names = Object.keys(frame.values).sort();
    const vals = Float32Array.from(names.map((n) => frame.values[n]!));
    const keyset = this.keyset(names);
    const ts = Math.round(frame.ts);
    const prev = this.lastFrame;
    const full = !prev || prev.keyset !== keyset || ts <= prev.ts || Math.floor(ts / KEYFRAME_MS) !== Math.floor(prev.fullTs / KEYFRAME_MS);
    const blob = full ? new Uint8Array(vals.buffer) : deltaBlob(prev.vals, vals);
    this.db.run("INSERT OR REPLACE INTO frames_1s (ts, keyset, vals, delta) VALUES (?, ?, ?, ?)", [ts, keyset, blob, full ? 0 : 1]);
    this.lastFrame = { ts, keyset, vals, fullTs: full ? ts : prev.fullTs };
  }

  /** Several frames in one transaction: one commit (one sync) for all of them. */
  addFrames(frames: Frame[]): void {
    if (frames.length === 0) return;
    this.db.transaction(() => {
      for (const f of frames) this.addFrame(f);
    })();
  }

  private lastFrame: { ts: number; keyset: number; vals: Float32Array; fullTs: number } | undefined;

  frames(fromTs: number, toTs = Date.now(), table: "frames_1s" | "frames_1m" = "frames_1s"): Frame[] {
    // A changes-only frame needs the frames before it: start at the last full frame at or before fromTs.
    const start = table === "frames_1s" ? (this.db.query<{ ts: number }, [number]>("SELECT ts FROM frames_1s WHERE ts <= ? AND delta = 0 ORDER BY ts DESC LIMIT 1").get(fromTs)?.ts ?? fromTs) : fromTs;
    const out: Frame[] = [];
    let prev: { keyset: number; vals: Float32Array } | undefined;
    for (const r of this.db.query<{ ts: number; keyset: number; vals: Uint8Array; delta: number }, [number, number]>(`SELECT ts, keyset, vals, ${table === "frames_1s" ? "delta" : "0 AS delta"} FROM ${table} WHERE ts >= ? AND ts <= ? ORDER BY ts`).iterate(start, toTs)) {
      const names = this.names(r.keyset);
      let vals: Float32Array;
      if (r.delta) {
        // A changes-only frame whose base is gone (it should not happen: compaction keeps the base) is skipped, not guessed.
        if (!prev || prev.keyset !== r.keyset) continue;
        vals = applyDelta(prev.vals, r.vals);
      } else {
        vals = new Float32Array(r.vals.buffer.slice(r.vals.byteOffset, r.vals.byteOffset + r.vals.byteLength));
      }
      prev = { keyset: r.keyset, vals };
      if (r.ts < fromTs) continue;
      const values: Record<string, number> = {};
      names.forEach((n, i) => (values[n] = vals[i]!));
      out.push({ ts: r.ts, values });
    }
    return out;
  }

  /**
   * Folds whole minutes of 1-second frames older than the fine retention into
   * 1-minute means and drops 1-minute frames older than the coarse retention.
   * It writes only when `foldEveryMs` (ten minutes) of history has passed the
   * retention (or always, with `force`), and it can run inside the
   * transaction that stores new frames: at idle, one commit a minute stores
   * the frames, and every tenth one folds too.
   */
  fold(now = Date.now(), force = false): { folded: number; dropped: number } {
    // Whole minutes only: a minute is folded once, from all of its frames.
    const cutoff = Math.floor((now - this.opts.fineRetentionMs) / 60_000) * 60_000;
    const oldest = this.db.query<{ ts: number | null }, []>("SELECT MIN(ts) AS ts FROM frames_1s").get()?.ts;
    const oldestCoarse = this.db.query<{ ts: number | null }, []>("SELECT MIN(ts) AS ts FROM frames_1m").get()?.ts;
    const coarseCutoff = now - this.opts.coarseRetentionMs;
    const foldDue = oldest != null && oldest < cutoff && (force || cutoff - Math.floor(oldest / 60_000) * 60_000 >= this.opts.foldEveryMs);
    const dropDue = oldestCoarse != null && oldestCoarse < coarseCutoff;
    if (!foldDue && !dropDue) return { folded: 0, dropped: 0 };
    let folded = 0;
    let dropped = 0;
    this.db.transaction(() => {
      if (foldDue) {
        // The frames from the cutoff on, rebuilt before the ones they depend on are deleted.
        const keep = this.frames(cutoff, cutoff + KEYFRAME_MS);
        const old = this.frames(0, cutoff - 1);
        folded = old.length;
        const byMinute = new Map<number, Frame[]>();
        for (const f of old) {
          const m = Math.floor(f.ts / 60_000) * 60_000;
          (byMinute.get(m) ?? byMinute.set(m, []).get(m)!).push(f);
        }
        for (const [m, frames] of byMinute) {
          const sums: Record<string, { s: number; n: number }> = {};
          for (const f of frames) for (const [k, v] of Object.entries(f.values)) (sums[k] ??= { s: 0, n: 0 }), (sums[k].s += v), sums[k].n++;
          const values = Object.fromEntries(Object.entries(sums).map(([k, { s, n }]) => [k, s / n]));
          const names = Object.keys(values).sort();
          this.db.run("INSERT OR REPLACE INTO frames_1m (ts, keyset, vals) VALUES (?, ?, ?)", [m, this.keyset(names), new Uint8Array(new Float32Array(names.map((n) => values[n]!)).buffer)]);
        }
        this.db.run("DELETE FROM frames_1s WHERE ts < ?", [cutoff]);
        dropped += this.db.query<{ n: number }, []>("SELECT changes() AS n").get()?.n ?? 0;
        // The first frame left may hold only changes against a deleted one: store it whole.
        const first = this.db.query<{ ts: number; delta: number }, []>("SELECT ts, delta FROM frames_1s ORDER BY ts LIMIT 1").get();
        if (first?.delta) {
          const f = keep.find((x) => x.ts === first.ts);
          if (f) {
            const names = Object.keys(f.values).sort();
            this.db.run("UPDATE frames_1s SET vals = ?, delta = 0 WHERE ts = ?", [new Uint8Array(Float32Array.from(names.map((n) => f.values[n]!)).buffer), first.ts]);
          } else this.db.run("DELETE FROM frames_1s WHERE ts = ?", [first.ts]);
        }
      }
      if (dropDue) this.db.run("DELETE FROM frames_1m WHERE ts < ?", [coarseCutoff]);
    })();
    return { folded, dropped };
  }

  /**
   * Folds old 1-second frames into 1-minute means (see fold), and then, if the
   * database is still over its cap, drops the oldest history until it fits.
   */
  compact(now = Date.now()): { folded: number; dropped: number; bytes: number } {
    const r = this.fold(now, true);
    return { folded: r.folded, dropped: r.dropped + this.enforceCap(), bytes: this.sizeBytes() };
  }

  /** Over the cap: drop the oldest tenth of the history at a time, then give the space back. Reads only, when under it. */
  enforceCap(): number {
    let dropped = 0;
    let bytes = this.sizeBytes();
    for (let round = 0; bytes > this.opts.maxBytes && round < 20; round++) {
      for (const table of ["frames_1m", "frames_1s"]) {
        const n = this.db.query<{ n: number }, []>(`SELECT COUNT(*) AS n FROM ${table}`).get()!.n;
        if (n === 0) continue;
        this.db.run(`DELETE FROM ${table} WHERE ts IN (SELECT ts FROM ${table} ORDER BY ts LIMIT ?)`, [Math.max(1, Math.ceil(n / 10))]);
        dropped += Math.ceil(n / 10);
        // The next frame stored is whole: the one before it may be gone.
        this.lastFrame = undefined;
        break;
      }
      // The first 1-second frame left must be whole (its base may be gone).
      const first = this.db.query<{ ts: number; delta: number }, []>("SELECT ts, delta FROM frames_1s ORDER BY ts LIMIT 1").get();
      if (first?.delta) {
        const f = this.frames(first.ts, first.ts)[0];
        if (f) {
          const names = Object.keys(f.values).sort();
          this.db.run("UPDATE frames_1s SET vals = ?, delta = 0 WHERE ts = ?", [new Uint8Array(Float32Array.from(names.map((n) => f.values[n]!)).buffer), first.ts]);
        } else this.db.run("DELETE FROM frames_1s WHERE ts = ?", [first.ts]);
      }
      this.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
      this.db.run("VACUUM");
      bytes = this.sizeBytes();
    }
    return dropped;
  }

  sizeBytes(): number {
    const pages = this.db.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count;
    const size = this.db.query<{ page_size: number }, []>("PRAGMA page_size").get()!.page_size;
    const free = this.db.query<{ freelist_count: number }, []>("PRAGMA freelist_count").get()!.freelist_count;
    return (pages - free) * size;
  }

  // --- incidents, actions, learning ----------------------------------------

  /** Notes a signature; returns true when it was never seen before. */
  seeSignature(signature: string, now = Date.now()): boolean {
    const row = this.db.query<{ count: number }, [string]>("SELECT count FROM signatures WHERE signature = ?").get(signature);
    if (row) this.db.run("UPDATE signatures SET last_seen = ?, count = count + 1 WHERE signature = ?", [now, signature]);
    else this.db.run("INSERT INTO signatures (signature, first_seen, last_seen, count) VALUES (?, ?, ?, 1)", [signature, now, now]);
    return !row;
  }

  openIncident(i: Omit<Incident, "id" | "closed" | "state" | "decision"> & { state?: Incident["state"] }): Incident {
    this.db.run("INSERT INTO incidents (time, unit, signature, class, summary, state, details) VALUES (?, ?, ?, ?, ?, ?, ?)", [
      i.time, i.unit, i.signature, i.class, i.summary, i.state ?? "open", i.details ? JSON.stringify(i.details) : null,
    ]);
    const id = this.db.query<{ id: number }, []>("SELECT last_insert_rowid() AS id").get()!.id;
    return { ...i, id, state: i.state ?? "open", closed: null, details: i.details ?? null, decision: null };
  }

  /** Notes the agent's latest decision on an incident: what it did, or why it did nothing. */
  setIncidentDecision(id: number, decision: string): void {
    this.db.run("UPDATE incidents SET decision = ? WHERE id = ?", [decision.slice(0, 1000), id]);
  }

  setIncidentState(id: number, state: Incident["state"], now = Date.now()): void {
    // A contained incident is not closed: the trouble is hidden, not gone, until a person looks.
    const closed = state === "resolved" || state === "failed" ? now : null;
    this.db.run("UPDATE incidents SET state = ?, closed = ? WHERE id = ?", [state, closed, id]);
  }

  incidents(limit = 20, unit?: string): Incident[] {
    const rows = unit
      ? this.db.query<Incident & { details: string | null }, [string, number]>("SELECT * FROM incidents WHERE unit = ? ORDER BY id DESC LIMIT ?").all(unit, limit)
      : this.db.query<Incident & { details: string | null }, [number]>("SELECT * FROM incidents ORDER BY id DESC LIMIT ?").all(limit);
    return rows.map((r) => ({ ...r, details: parseDetails(r.details) }));
  }

  recordAction(a: { incident: number | null; unit?: string | null; time: number; signature: string; remedy: string; tool: string; args: object; auditSeq?: number }): number {
    this.db.run("INSERT INTO actions (incident, unit, time, signature, remedy, tool, args, audit_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
      a.incident, a.unit ?? null, a.time, a.signature, a.remedy, a.tool, JSON.stringify(a.args), a.auditSeq ?? null,
    ]);
    return this.db.query<{ id: number }, []>("SELECT last_insert_rowid() AS id").get()!.id;
  }

  /** The remedies carried out for an incident, in order. */
  incidentRemedies(incident: number): string[] {
    return this.db.query<{ remedy: string }, [number]>("SELECT remedy FROM actions WHERE incident = ? ORDER BY id").all(incident).map((r) => r.remedy);
  }

  /** How many actions the agent took on a unit since `from`: its hourly limit, kept across restarts. */
  actionsSince(unit: string, from: number): number {
    return this.db.query<{ n: number }, [string, number]>("SELECT COUNT(*) AS n FROM actions WHERE unit = ? AND time > ?").get(unit, from)!.n;
  }

  /** Stores what a remedy did (a fix, a failure, or a containment that hid the trouble), and counts it for its signature. */
  recordOutcome(actionId: number, signature: string, remedy: string, outcome: Outcome, now = Date.now()): void {
    this.db.transaction(() => {
      this.db.run("UPDATE actions SET outcome = ?, outcome_time = ? WHERE id = ?", [outcome, now, actionId]);
      this.db.run(
        `INSERT INTO remedy_stats (signature, remedy, attempts, successes, contained) VALUES (?, ?, 1, ?, ?)
         ON CONFLICT (signature, remedy) DO UPDATE SET attempts = attempts + 1, successes = successes + excluded.successes, contained = contained + excluded.contained`,
        [signature, remedy, outcome === "success" ? 1 : 0, outcome === "contained" ? 1 : 0],
      );
    })();
  }

  remedyStats(signature: string): RemedyStat[] {
    return this.db.query<RemedyStat, [string]>("SELECT remedy, attempts, successes, contained FROM remedy_stats WHERE signature = ?").all(signature);
  }

  get(key: string): string | undefined {
    return this.db.query<{ value: string }, [string]>("SELECT value FROM kv WHERE key = ?").get(key)?.value;
  }

  set(key: string, value: string): void {
    this.db.run("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", [key, value]);
  }

  integrityCheck(): string {
    return this.db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").all().map((r) => r.integrity_check).join("; ");
  }

  close(): void {
    this.db.close();
  }
}

/** An incident's details as stored (JSON), or null when there are none (a file from before them) or they cannot be read. */
export function parseDetails(text: string | null | undefined): IncidentDetails | null {
  if (!text) return null;
  try {
    return JSON.parse(text) as IncidentDetails;
  } catch {
    return null;
  }
}

/** A full frame in every such period (the first of each minute), so a reader never goes back further to rebuild one. */
export const KEYFRAME_MS = 60_000;

/** A changes-only frame: a bitmap of the values that differ from `prev`, then those values (float32, little-endian). */
export function deltaBlob(prev: Float32Array, cur: Float32Array): Uint8Array {
  const mapBytes = Math.ceil(cur.length / 8);
  const changed: number[] = [];
  for (let i = 0; i < cur.length; i++) if (!Object.is(prev[i], cur[i])) changed.push(i);
  const out = new Uint8Array(mapBytes + 4 * changed.length);
  const view = new DataView(out.buffer);
  changed.forEach((i, k) => {
    out[i >> 3]! |= 1 << (i & 7);
    view.setFloat32(mapBytes + 4 * k, cur[i]!, true);
  });
  return out;
}

export function applyDelta(prev: Float32Array, blob: Uint8Array): Float32Array {
  const out = prev.slice();
  const mapBytes = Math.ceil(prev.length / 8);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  let k = 0;
  for (let i = 0; i < prev.length; i++) {
    if (!((blob[i >> 3] ?? 0) & (1 << (i & 7)))) continue;
    if (mapBytes + 4 * k + 4 > blob.byteLength) break;
    out[i] = view.getFloat32(mapBytes + 4 * k, true);
    k++;
  }
  return out;
}

export function knowledgePath(stateDir = process.env.PAIO_STATE_DIR ?? "/var/lib/paio"): string {
  return join(stateDir, "agent", "knowledge.db");
}

/** How the agent's knowledge base was opened: the file, or, when the file was refused, an empty one in memory. */
export type KnowledgeUse = { state: "file"; path: string; schema: { from: number; to: number } } | { state: "memory"; path: string; reason: string };

/**
 * The knowledge base at `path`, or, when it cannot be used (a newer schema,
 * a failed migration, or `refuse`: a data partition in a newer format), an
 * empty one in memory: the agent keeps watching and healing, it only forgets
 * at a restart, and the file is left for the version that can use it.
 * Other errors (a damaged file, a disk that cannot be read) are thrown.
 */
export function openKnowledge(path: string, opts: StoreOptions = {}, refuse?: string): { knowledge: Knowledge; use: KnowledgeUse } {
  if (refuse !== undefined) return { knowledge: new Knowledge(":memory:", opts), use: { state: "memory", path, reason: refuse } };
  try {
    const knowledge = new Knowledge(path, opts);
    return { knowledge, use: { state: "file", path, schema: knowledge.schema } };
  } catch (e) {
    if (!(e instanceof KnowledgeRefused)) throw e;
    return { knowledge: new Knowledge(":memory:", opts), use: { state: "memory", path, reason: e.message } };
  }
}

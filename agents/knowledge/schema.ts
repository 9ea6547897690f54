// The knowledge base's schema and its history. The file's schema version is
// SQLite's user_version. MIGRATIONS[n-1] takes a file from version n-1 to n,
// in one transaction with the new version number, so a power cut in the
// middle of one leaves the file at the old version with all its data. Two
// PAIO versions (the A/B slots) share the file: a released migration never
// changes (a change is a new migration at the end), and a file at a version
// newer than this build knows is refused before anything is written to it
// (docs/image.md, "Data across versions").

import { Database } from "bun:sqlite";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { basename, dirname } from "node:path";

export interface Migration {
  /** The version this migration reaches (it starts from the one before). */
  version: number;
  /** One line for the log. */
  what: string;
  up(db: Database): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    what: "the first numbered schema: metric history, incidents, actions, learning, conversation, audit chain",
    // Files from before schema versions hold these tables already (user_version 0): every
    // statement keeps what is there, so such a file becomes version 1 with its rows.
    up(db) {
      db.run(`CREATE TABLE IF NOT EXISTS keysets (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE)`);
      db.run(`CREATE TABLE IF NOT EXISTS frames_1s (ts INTEGER PRIMARY KEY, keyset INTEGER NOT NULL, vals BLOB NOT NULL, delta INTEGER NOT NULL DEFAULT 0)`);
      // Files from before changes-only frames: every frame in them is whole.
      if (!db.query<{ name: string }, []>("PRAGMA table_info(frames_1s)").all().some((c) => c.name === "delta")) db.run("ALTER TABLE frames_1s ADD COLUMN delta INTEGER NOT NULL DEFAULT 0");
      db.run(`CREATE TABLE IF NOT EXISTS frames_1m (ts INTEGER PRIMARY KEY, keyset INTEGER NOT NULL, vals BLOB NOT NULL)`);
      db.run(`CREATE TABLE IF NOT EXISTS incidents (
        id INTEGER PRIMARY KEY, time INTEGER NOT NULL, unit TEXT, signature TEXT NOT NULL, class TEXT NOT NULL,
        summary TEXT NOT NULL, state TEXT NOT NULL, closed INTEGER)`);
      db.run(`CREATE TABLE IF NOT EXISTS actions (
        id INTEGER PRIMARY KEY, incident INTEGER, time INTEGER NOT NULL, signature TEXT NOT NULL, remedy TEXT NOT NULL,
        tool TEXT NOT NULL, args TEXT NOT NULL, audit_seq INTEGER, outcome TEXT, outcome_time INTEGER)`);
      db.run(`CREATE TABLE IF NOT EXISTS remedy_stats (
        signature TEXT NOT NULL, remedy TEXT NOT NULL, attempts INTEGER NOT NULL, successes INTEGER NOT NULL,
        PRIMARY KEY (signature, remedy))`);
      db.run(`CREATE TABLE IF NOT EXISTS signatures (signature TEXT PRIMARY KEY, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, count INTEGER NOT NULL)`);
      db.run(`CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
      // No longer written (the console keeps the conversation itself); kept because a released migration never changes.
      db.run(`CREATE TABLE IF NOT EXISTS conversation (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, who TEXT NOT NULL, text TEXT NOT NULL)`);
      db.run(`CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, kind TEXT NOT NULL, unit TEXT,
        body TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL)`);
      db.run("CREATE INDEX IF NOT EXISTS audit_unit ON audit(unit, seq)");
    },
  },
  {
    version: 2,
    what: "outcomes that tell a fix from a containment, the unit of each action (rate limits across restarts), and an incident's facts and decision",
    up(db) {
      db.run("ALTER TABLE remedy_stats ADD COLUMN contained INTEGER NOT NULL DEFAULT 0");
      // Version 1 counted a freeze, a containment or a mark-failed that was carried out as a success: it only hid the trouble.
      const containment = "('freeze', 'contain-limit', 'contain-freeze', 'mark-failed')";
      db.run(`UPDATE remedy_stats SET contained = successes, successes = 0 WHERE remedy IN ${containment}`);
      db.run(`UPDATE actions SET outcome = 'contained' WHERE outcome = 'success' AND remedy IN ${containment}`);
      db.run("ALTER TABLE actions ADD COLUMN unit TEXT");
      db.run("UPDATE actions SET unit = (SELECT unit FROM incidents WHERE incidents.id = actions.incident)");
      db.run("CREATE INDEX actions_unit_time ON actions(unit, time)");
      db.run("ALTER TABLE incidents ADD COLUMN details TEXT");
      db.run("ALTER TABLE incidents ADD COLUMN decision TEXT");
    },
  },
];

/** The newest schema this build knows. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The knowledge base cannot be used as it is; the agent then runs without it (store.ts openKnowledge). */
export class KnowledgeRefused extends Error {
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

export class SchemaTooNew extends KnowledgeRefused {
  constructor(path: string, readonly version: number, readonly known: number) {
    const dir = dirname(path);
    super(
      path,
      `${path}: the knowledge base is at schema version ${version}, newer than this PAIO version knows (up to ${known}): a newer PAIO version wrote it. ` +
        `It was left as it is. Boot the newer version again to use it; or, to start this version with an empty knowledge base, move it away with the files beside it ` +
        `(cd ${dir} && mkdir -p schema-v${version} && mv ${basename(path)}* audit.head schema-v${version}/), then: paio restart agent`,
    );
  }
}

export class MigrationFailed extends KnowledgeRefused {
  constructor(path: string, readonly from: number, readonly migration: Migration, cause: unknown) {
    super(
      path,
      `${path}: migrating the knowledge base from schema version ${from} to ${migration.version} (${migration.what}) failed: ${(cause as Error)?.message ?? cause}. ` +
        `The file stays at version ${from} with its data (a migration is one transaction). If the data partition is full, free space on it; then: paio restart agent`,
    );
  }
}

const HEADER = "SQLite format 3\0";

/**
 * The file's schema version, read without writing anything (no -wal or -shm
 * file is created, nothing is checkpointed): undefined when there is no file.
 * A file whose write-ahead log holds commits is asked through a read-only
 * connection, since the newest header may be in the log.
 */
export function fileSchemaVersion(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const wal = `${path}-wal`;
  if (existsSync(wal) && statSync(wal).size > 0) {
    const db = new Database(path, { readonly: true });
    try {
      return userVersion(db);
    } finally {
      db.close();
    }
  }
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(100);
    const n = readSync(fd, head, 0, 100, 0);
    // An empty file is an empty database; anything that is not SQLite is left for SQLite to refuse.
    if (n < 100 || head.toString("latin1", 0, 16) !== HEADER) return 0;
    return head.readUInt32BE(60);
  } finally {
    closeSync(fd);
  }
}

export function userVersion(db: Database): number {
  return db.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version;
}

/** Throws SchemaTooNew when the file at `path` is newer than `known`; writes nothing. */
export function refuseNewerSchema(path: string, known = SCHEMA_VERSION): void {
  const v = fileSchemaVersion(path);
  if (v !== undefined && v > known) throw new SchemaTooNew(path, v, known);
}

/**
 * Brings an open database to the newest version in `migrations`, one
 * migration per transaction. The version is read again inside each write
 * transaction, so two processes opening the file at once migrate it once.
 */
export function migrateSchema(db: Database, path: string, migrations: readonly Migration[] = MIGRATIONS): { from: number; to: number } {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`knowledge base migrations out of order: entry ${i + 1} says version ${m.version}`);
  });
  const known = migrations.length;
  const from = userVersion(db);
  if (from > known) throw new SchemaTooNew(path, from, known);
  for (const m of migrations.slice(from)) {
    try {
      db.transaction(() => {
        const now = userVersion(db);
        if (now > known) throw new SchemaTooNew(path, now, known);
        if (now >= m.version) return;
        m.up(db);
        db.run(`PRAGMA user_version = ${m.version}`);
      }).immediate();
    } catch (e) {
      if (e instanceof KnowledgeRefused) throw e;
      throw new MigrationFailed(path, m.version - 1, m, e);
    }
  }
  return { from, to: userVersion(db) };
}

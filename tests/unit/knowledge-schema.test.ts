// The knowledge base across PAIO versions, on real SQLite files: a file from
// before schema versions becomes version 1 with its rows; a migration runs
// once; one cut off half-way (an exception, or the process killed) leaves the
// old version with its data; a file from a newer version is refused with a
// message that says what to do, and not one byte of it changes; the agent
// then keeps running without it instead of failing at every start.
import { afterEach, describe, expect, test } from "vitest";
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Knowledge, openKnowledge } from "../../agents/knowledge/store.ts";
import { AuditLog } from "../../agents/knowledge/audit.ts";
import { MIGRATIONS, MigrationFailed, SCHEMA_VERSION, SchemaTooNew, fileSchemaVersion, migrateSchema, userVersion, type Migration } from "../../agents/knowledge/schema.ts";
import { ControlClient } from "../../init/control/client.ts";
import type { AgentRequest, AgentResponse, AgentStatus } from "../../agents/protocol.ts";

const REPO = join(import.meta.dirname, "../..");
const dirs: string[] = [];
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), "paio-schema-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/**
 * A knowledge base as version 1 wrote it (its tables only, with rows written
 * as version 1 wrote them): an incident, a restart that worked and a freeze
 * that version 1 counted as a success, a frame and two audit records.
 */
function v1File(path = join(dir(), "agent", "knowledge.db")): string {
  mkdirSync(join(path, ".."), { recursive: true });
  const db = new Database(path, { create: true });
  db.run("PRAGMA journal_mode = WAL");
  expect(migrateSchema(db, path, MIGRATIONS.slice(0, 1))).toEqual({ from: 0, to: 1 });
  db.run("INSERT INTO incidents (id, time, unit, signature, class, summary, state) VALUES (1, 1000, 'camera', 'crash:camera', 'crash', 'camera crashed 3 times', 'resolved')");
  db.run("INSERT INTO actions (incident, time, signature, remedy, tool, args, outcome, outcome_time) VALUES (1, 1001, 'crash:camera', 'restart', 'unit.restart', '[{\"unit\":\"camera\"}]', 'success', 1002)");
  db.run("INSERT INTO actions (incident, time, signature, remedy, tool, args, outcome, outcome_time) VALUES (1, 1003, 'crash:camera', 'freeze', 'unit.freeze', '[{\"unit\":\"camera\"}]', 'success', 1004)");
  db.run("INSERT INTO remedy_stats (signature, remedy, attempts, successes) VALUES ('crash:camera', 'restart', 1, 1), ('crash:camera', 'freeze', 2, 2)");
  db.run("INSERT INTO keysets (id, names) VALUES (1, 'sys.cpu_pct')");
  db.run("INSERT INTO frames_1s (ts, keyset, vals, delta) VALUES (60000, 1, ?, 0)", [new Uint8Array(Float32Array.from([12.5]).buffer)]);
  const audit = new AuditLog(db, join(path, "..", "audit.head"));
  audit.append("incident", "camera", { justification: "noticed" }, 1000);
  audit.append("decision", "camera", { justification: "restarted" }, 1001);
  db.close();
  return path;
}

/** A knowledge base at this build's version, migrated from v1File. */
function currentFile(path?: string): string {
  const p = v1File(path);
  new Knowledge(p).close();
  return p;
}

function kept(k: Knowledge): void {
  expect(k.incidents()).toMatchObject([{ unit: "camera", signature: "crash:camera", summary: "camera crashed 3 times" }]);
  expect(k.remedyStats("crash:camera").find((r) => r.remedy === "restart")).toMatchObject({ attempts: 1, successes: 1 });
  expect(k.frames(0, 120_000)).toEqual([{ ts: 60_000, values: { "sys.cpu_pct": 12.5 } }]);
  expect(k.audit.verify()).toMatchObject({ ok: true, records: 2 });
}

function columns(path: string, table: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.query<{ name: string }, []>(`PRAGMA table_info(${table})`).all().map((c) => c.name);
  } finally {
    db.close();
  }
}

/** A second version's migration for the tests: a note on every incident. */
const NEXT = SCHEMA_VERSION + 1;

function noteMigration(runs: { n: number }, failHalfWay = false): Migration {
  return {
    version: NEXT,
    what: "a note on every incident",
    up(db) {
      runs.n++;
      db.run("ALTER TABLE incidents ADD COLUMN note TEXT NOT NULL DEFAULT ''");
      db.run("UPDATE incidents SET note = 'seen by the next version'");
      db.run("INSERT INTO kv (key, value) VALUES ('next.migrated', 'yes')");
      if (failHalfWay) throw new Error("power cut");
      db.run("CREATE TABLE notes_index (incident INTEGER PRIMARY KEY)");
    },
  };
}

describe("schema versions", () => {
  test("a new file is at the newest version; a version 1 file is brought to it, keeping its rows and its audit chain; reopened, nothing runs again", () => {
    const fresh = join(dir(), "knowledge.db");
    new Knowledge(fresh).close();
    expect(fileSchemaVersion(fresh)).toBe(SCHEMA_VERSION);
    const path = v1File();
    expect(fileSchemaVersion(path)).toBe(1);
    let k = new Knowledge(path);
    expect(k.schema).toEqual({ from: 1, to: SCHEMA_VERSION });
    kept(k);
    k.close();
    k = new Knowledge(path);
    expect(k.schema).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    kept(k);
    k.close();
  });

  test("version 2: a freeze that version 1 counted as a success becomes a containment; old actions get their unit, so the hourly limit counts them", () => {
    const path = v1File();
    const k = new Knowledge(path);
    expect(k.remedyStats("crash:camera").sort((a, b) => a.remedy.localeCompare(b.remedy))).toEqual([
      { remedy: "freeze", attempts: 2, successes: 0, contained: 2 },
      { remedy: "restart", attempts: 1, successes: 1, contained: 0 },
    ]);
    expect(k.db.query("SELECT remedy, unit, outcome FROM actions ORDER BY id").all()).toEqual([
      { remedy: "restart", unit: "camera", outcome: "success" },
      { remedy: "freeze", unit: "camera", outcome: "contained" },
    ]);
    expect(k.actionsSince("camera", 0)).toBe(2);
    expect(k.incidents()[0]).toMatchObject({ details: null, decision: null });
    k.close();
  });

  test("a file from before schema versions (the tables, user_version 0) is taken as version 1, not made again", () => {
    const path = v1File();
    const raw = new Database(path);
    raw.run("PRAGMA user_version = 0");
    raw.close();
    const k = new Knowledge(path);
    expect(k.schema).toEqual({ from: 0, to: SCHEMA_VERSION });
    kept(k);
    k.close();
    expect(fileSchemaVersion(path)).toBe(SCHEMA_VERSION);
  });

  test("a file from before changes-only frames gets the delta column, and its frames read as whole ones", () => {
    const path = join(dir(), "knowledge.db");
    const raw = new Database(path);
    raw.run("CREATE TABLE keysets (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE)");
    raw.run("CREATE TABLE frames_1s (ts INTEGER PRIMARY KEY, keyset INTEGER NOT NULL, vals BLOB NOT NULL)");
    raw.run("INSERT INTO keysets (id, names) VALUES (1, 'a\nb')");
    raw.run("INSERT INTO frames_1s (ts, keyset, vals) VALUES (5000, 1, ?)", [new Uint8Array(Float32Array.from([1.5, 2.5]).buffer)]);
    raw.close();
    const k = new Knowledge(path);
    expect(k.schema).toEqual({ from: 0, to: SCHEMA_VERSION });
    expect(columns(path, "frames_1s")).toContain("delta");
    expect(k.frames(0, 10_000)).toEqual([{ ts: 5000, values: { a: 1.5, b: 2.5 } }]);
    k.close();
  });

  test("migrations are numbered in order, one per version", () => {
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    MIGRATIONS.forEach((m, i) => expect(m.version).toBe(i + 1));
    expect(() => migrateSchema(new Database(":memory:"), ":memory:", [{ ...MIGRATIONS[0]!, version: 2 }])).toThrow(/out of order: entry 1 says version 2/);
    // A released migration never changes: version 1 is the tables as they were.
    expect(MIGRATIONS[0]!.what).toBe("the first numbered schema: metric history, incidents, actions, learning, conversation, audit chain");
  });
});

describe("migrations", () => {
  test("a migration runs once: at the next open it is not run again, and the rows stay", () => {
    const path = currentFile();
    const runs = { n: 0 };
    const list = [...MIGRATIONS, noteMigration(runs)];
    let db = new Database(path);
    expect(migrateSchema(db, path, list)).toEqual({ from: SCHEMA_VERSION, to: NEXT });
    expect(migrateSchema(db, path, list)).toEqual({ from: NEXT, to: NEXT });
    db.close();
    db = new Database(path);
    expect(migrateSchema(db, path, list)).toEqual({ from: NEXT, to: NEXT });
    expect(runs.n).toBe(1);
    expect(db.query("SELECT unit, note FROM incidents").all()).toEqual([{ unit: "camera", note: "seen by the next version" }]);
    db.close();
  });

  test("a migration that fails half-way leaves the file at the old version with its data, and this version opens it", () => {
    const path = currentFile();
    const before = columns(path, "incidents");
    const db = new Database(path);
    let err: unknown;
    try {
      migrateSchema(db, path, [...MIGRATIONS, noteMigration({ n: 0 }, true)]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MigrationFailed);
    expect((err as Error).message).toContain(`${path}: migrating the knowledge base from schema version ${SCHEMA_VERSION} to ${NEXT} (a note on every incident) failed: power cut`);
    expect((err as Error).message).toContain(`The file stays at version ${SCHEMA_VERSION} with its data`);
    expect(userVersion(db)).toBe(SCHEMA_VERSION);
    expect(db.query("SELECT value FROM kv WHERE key = 'next.migrated'").get()).toBeNull();
    db.close();
    expect(columns(path, "incidents")).toEqual(before);
    const k = new Knowledge(path);
    expect(k.schema).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    kept(k);
    k.close();
  });

  test("a process killed in the middle of a migration leaves the old version with its data", async () => {
    const path = currentFile();
    // The child migrates, writes half of it, says so, and waits to be killed inside the transaction.
    const child = `
      import { Database } from "bun:sqlite";
      import { MIGRATIONS, migrateSchema } from "${join(REPO, "agents/knowledge/schema.ts")}";
      const db = new Database(${JSON.stringify(path)});
      db.run("PRAGMA journal_mode = WAL");
      db.run("PRAGMA synchronous = FULL");
      migrateSchema(db, ${JSON.stringify(path)}, [...MIGRATIONS, { version: ${NEXT}, what: "a big table", up(db) {
        db.run("ALTER TABLE incidents ADD COLUMN note TEXT NOT NULL DEFAULT ''");
        db.run("CREATE TABLE big (x BLOB)");
        for (let i = 0; i < 2000; i++) db.run("INSERT INTO big VALUES (?)", [new Uint8Array(4096)]);
        console.log("half");
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
      } }]);
    `;
    const p = Bun.spawn([process.execPath, "-e", child], { stdout: "pipe", stderr: "inherit" });
    const reader = p.stdout.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("half");
    p.kill("SIGKILL");
    await p.exited;
    expect(fileSchemaVersion(path)).toBe(SCHEMA_VERSION);
    const k = new Knowledge(path);
    expect(k.schema).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    expect(columns(path, "incidents")).not.toContain("note");
    expect(k.db.query("SELECT name FROM sqlite_master WHERE name = 'big'").get()).toBeNull();
    kept(k);
    expect(k.integrityCheck()).toBe("ok");
    k.close();
  });
});

describe("a file from a newer version", () => {
  function newerFile(): string {
    const path = v1File();
    const raw = new Database(path);
    raw.run("PRAGMA user_version = 7");
    raw.close();
    return path;
  }

  test("is refused with a message that names the file, both versions and what to do; not one byte changes and nothing is added beside it", () => {
    const path = newerFile();
    const sum = sha256(path);
    const beside = readdirSync(join(path, ".."));
    let err: unknown;
    try {
      new Knowledge(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SchemaTooNew);
    const msg = (err as Error).message;
    expect(msg).toContain(`${path}: the knowledge base is at schema version 7, newer than this PAIO version knows (up to ${SCHEMA_VERSION})`);
    expect(msg).toContain("It was left as it is. Boot the newer version again to use it");
    expect(msg).toContain(`move it away with the files beside it (cd ${join(path, "..")} && mkdir -p schema-v7 && mv knowledge.db* audit.head schema-v7/), then: paio restart agent`);
    expect(sha256(path)).toBe(sum);
    expect(readdirSync(join(path, ".."))).toEqual(beside);
  });

  test("is refused before it is opened for writing: a newer file in another journal mode is not switched to WAL", () => {
    const path = v1File();
    const raw = new Database(path);
    raw.run("PRAGMA journal_mode = DELETE");
    raw.run("PRAGMA user_version = 7");
    raw.close();
    const sum = sha256(path);
    expect(() => new Knowledge(path)).toThrow(SchemaTooNew);
    expect(sha256(path)).toBe(sum);
  });

  test("is refused when the newer version's commit is still in the write-ahead log (a power cut before the checkpoint); neither file changes", () => {
    const path = v1File();
    const live = new Database(path);
    live.run("PRAGMA user_version = 7");
    live.run("INSERT INTO kv (key, value) VALUES ('written by', 'version 7')");
    // A copy taken while the connection is open: the commit is only in the -wal file, as after a power cut.
    const crashed = join(dir(), "knowledge.db");
    copyFileSync(path, crashed);
    copyFileSync(`${path}-wal`, `${crashed}-wal`);
    live.close();
    const sums = [sha256(crashed), sha256(`${crashed}-wal`)];
    expect(() => new Knowledge(crashed)).toThrow(/schema version 7, newer than this PAIO version knows/);
    expect([sha256(crashed), sha256(`${crashed}-wal`)]).toEqual(sums);
  });

  test("openKnowledge gives the agent an empty knowledge base in memory and the reason; the file stays as it was", () => {
    const path = newerFile();
    const sum = sha256(path);
    const { knowledge, use } = openKnowledge(path);
    expect(use).toMatchObject({ state: "memory", path, reason: expect.stringContaining("schema version 7") });
    expect(knowledge.path).toBe(":memory:");
    knowledge.openIncident({ time: 1, unit: "demo", signature: "s", class: "crash", summary: "works in memory" });
    knowledge.audit.append("incident", "demo", { justification: "kept in memory" });
    expect(knowledge.incidents()).toHaveLength(1);
    knowledge.close();
    expect(sha256(path)).toBe(sum);
  });

  test("a refusal from the data partition's format opens nothing on disk", () => {
    const path = join(dir(), "agent", "knowledge.db");
    const { use } = openKnowledge(path, {}, "the data partition is in format 2");
    expect(use).toEqual({ state: "memory", path, reason: "the data partition is in format 2" });
    expect(existsSync(join(path, ".."))).toBe(false);
  });
});

describe("the agent without its knowledge base", () => {
  async function agentStatus(sock: string): Promise<AgentStatus> {
    for (let i = 0; ; i++) {
      try {
        const c = await ControlClient.connect<AgentRequest, AgentResponse>(sock);
        try {
          const r = await c.request({ op: "status" });
          if (r.ok) return r.result as AgentStatus;
        } finally {
          c.close();
        }
      } catch (e) {
        if (i > 100) throw e;
      }
      await Bun.sleep(100);
    }
  }

  async function runAgent(d: string): Promise<{ out: string; status: AgentStatus; code: number }> {
    const sock = join(d, "run", "agent.sock");
    const p = Bun.spawn([process.execPath, join(REPO, "agents/agent/main.ts")], {
      env: {
        ...process.env,
        PAIO_STATE_DIR: join(d, "state"),
        PAIO_ETC_DIR: join(d, "etc"),
        PAIO_CONTROL_SOCKET: join(d, "run", "control.sock"),
        PAIO_AGENT_SOCKET: sock,
        PAIO_CGROUP_ROOT: join(d, "no-cgroup"),
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const status = await agentStatus(sock);
    p.kill("SIGTERM");
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { out: out + err, status, code };
  }

  test("a newer schema: the agent says why, keeps running on a knowledge base in memory, says so in its status, and leaves the file alone", async () => {
    const d = dir();
    mkdirSync(join(d, "run"));
    const path = v1File(join(d, "state", "agent", "knowledge.db"));
    const raw = new Database(path);
    raw.run("PRAGMA user_version = 9");
    raw.close();
    const sum = sha256(path);
    const { out, status, code } = await runAgent(d);
    expect(out).toContain(`paio-agent: knowledge base not used: ${path}: the knowledge base is at schema version 9`);
    expect(out).toMatch(/running without it: incidents, audit records and what I learn are kept in memory until the agent stops; retraining is off/);
    expect(out).toContain("paio-agent: ready");
    expect(status.knowledge).toMatchObject({ state: "memory", path, reason: expect.stringContaining("Boot the newer version again") });
    expect(code).toBe(0);
    expect(sha256(path)).toBe(sum);
  });

  test("a data partition in a newer format: no knowledge base is created on it", async () => {
    const d = dir();
    mkdirSync(join(d, "run"));
    mkdirSync(join(d, "state"));
    writeFileSync(join(d, "state", "FORMAT"), "# PAIO data partition format\n2\n");
    const { out, status } = await runAgent(d);
    expect(out).toMatch(/knowledge base not used: .*FORMAT: the data partition is in format 2, newer than this PAIO version knows \(up to 1\)/);
    expect(status.knowledge?.state).toBe("memory");
    expect(existsSync(join(d, "state", "agent"))).toBe(false);
  });

  test("a file of this version: the status names it and its schema version; one of version 1 is migrated and says so", async () => {
    const d = dir();
    mkdirSync(join(d, "run"));
    const path = v1File(join(d, "state", "agent", "knowledge.db"));
    let { out, status } = await runAgent(d);
    expect(out).toContain(`paio-agent: knowledge base ${path} (schema version ${SCHEMA_VERSION}, migrated from version 1; integrity ok)`);
    expect(status.knowledge).toEqual({ state: "file", path, schema: SCHEMA_VERSION });
    ({ out, status } = await runAgent(d));
    expect(out).toContain(`paio-agent: knowledge base ${path} (schema version ${SCHEMA_VERSION}; integrity ok)`);
    expect(status.knowledge).toEqual({ state: "file", path, schema: SCHEMA_VERSION });
  });
});

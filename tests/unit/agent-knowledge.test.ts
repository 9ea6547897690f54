// The knowledge base and its audit chain, on a real SQLite file.
import { afterEach, describe, expect, test } from "vitest";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Knowledge } from "../../agents/knowledge/store.ts";
import { canonicalJson } from "../../agents/knowledge/canonical.ts";

const dirs: string[] = [];
function fresh(opts = {}): Knowledge {
  const d = mkdtempSync(join(tmpdir(), "paio-kb-"));
  dirs.push(d);
  return new Knowledge(join(d, "agent", "knowledge.db"), opts);
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fill(k: Knowledge, n: number): void {
  for (let i = 0; i < n; i++) k.audit.append(i % 2 ? "decision" : "incident", "demo", { i, justification: `record ${i}` }, 1_000 + i);
}

describe("canonical JSON", () => {
  test("sorts keys and drops undefined, so equal values hash equally", () => {
    expect(canonicalJson({ b: 1, a: [1, { d: undefined, c: "x" }] })).toBe('{"a":[1,{"c":"x"}],"b":1}');
    expect(canonicalJson({ x: NaN })).toBe('{"x":null}');
  });
});

describe("audit chain", () => {
  test("an untouched chain verifies", () => {
    const k = fresh();
    fill(k, 20);
    expect(k.audit.verify()).toEqual({ ok: true, records: 20, head: k.audit.get(20)!.hash });
  });

  test("one changed byte in one record is found and named", () => {
    const k = fresh();
    fill(k, 20);
    const row = k.db.query<{ body: string }, []>("SELECT body FROM audit WHERE seq = 7").get()!;
    k.db.run("UPDATE audit SET body = ? WHERE seq = 7", [row.body.replace("record 6", "record 8")]);
    const v = k.audit.verify();
    expect(v).toMatchObject({ ok: false, badSeq: 7 });
    expect(!v.ok && v.problem).toMatch(/record 7 was changed/);
  });

  test("a removed record is found", () => {
    const k = fresh();
    fill(k, 20);
    k.db.run("DELETE FROM audit WHERE seq = 12");
    const v = k.audit.verify();
    expect(v).toMatchObject({ ok: false, badSeq: 12 });
    expect(!v.ok && v.problem).toMatch(/record 12 missing/);
  });

  test("records cut off the end are found through the head file", () => {
    const k = fresh();
    fill(k, 20);
    k.db.run("DELETE FROM audit WHERE seq >= 18");
    const v = k.audit.verify();
    expect(v).toMatchObject({ ok: false, badSeq: 18 });
    expect(!v.ok && v.problem).toMatch(/18\.\.20 missing/);
  });

  test("reordered records are found", () => {
    const k = fresh();
    fill(k, 10);
    // Swap the contents of records 4 and 5 (each keeps its own seq, so the hashes no longer fit).
    const a = k.db.query<Record<string, unknown>, []>("SELECT * FROM audit WHERE seq = 4").get()!;
    const b = k.db.query<Record<string, unknown>, []>("SELECT * FROM audit WHERE seq = 5").get()!;
    k.db.run("UPDATE audit SET time = ?, kind = ?, body = ?, prev = ?, hash = ? WHERE seq = 4", [b.time, b.kind, b.body, b.prev, b.hash] as never);
    k.db.run("UPDATE audit SET time = ?, kind = ?, body = ?, prev = ?, hash = ? WHERE seq = 5", [a.time, a.kind, a.body, a.prev, a.hash] as never);
    expect(k.audit.verify()).toMatchObject({ ok: false, badSeq: 4 });
  });

  test("a rewritten record with a recomputed hash still breaks the link to the next", () => {
    const k = fresh();
    fill(k, 10);
    const r = k.audit.get(3)!;
    const forged = { ...r, body: { ...r.body, justification: "forged" } };
    const { recordHash } = require("../../agents/knowledge/audit.ts") as typeof import("../../agents/knowledge/audit.ts");
    const hash = recordHash(forged);
    k.db.run("UPDATE audit SET body = ?, hash = ? WHERE seq = 3", [canonicalJson(forged.body), hash]);
    const v = k.audit.verify();
    expect(v).toMatchObject({ ok: false, badSeq: 4 });
    expect(!v.ok && v.problem).toMatch(/does not follow record 3/);
  });
});

describe("metric history", () => {
  test("frames round-trip, fold into minutes after the fine retention, and respect the size cap", () => {
    const k = fresh({ fineRetentionMs: 120_000, maxBytes: 256 * 1024 });
    const t0 = 1_700_000_040_000; // on a minute boundary
    for (let i = 0; i < 600; i++) {
      const values: Record<string, number> = { "sys.cpu_pct": i % 100 };
      for (let u = 0; u < 40; u++) values[`unit.u${u}.mem_mb`] = u + i / 1000;
      k.addFrame({ ts: t0 + i * 1000, values });
    }
    expect(k.frames(t0, t0 + 2000)).toHaveLength(3);
    expect(k.frames(t0 + 5000, t0 + 5000)[0]!.values["sys.cpu_pct"]).toBe(5);
    const r = k.compact(t0 + 600_000);
    // Everything older than two minutes is folded into 1-minute means.
    expect(k.frames(0, t0 + 600_000).length).toBeLessThanOrEqual(121);
    const minutes = k.frames(0, Infinity, "frames_1m");
    expect(minutes.length).toBeGreaterThan(0);
    expect(minutes[0]!.values["sys.cpu_pct"]).toBeCloseTo(29.5, 1);
    expect(r.bytes).toBeLessThanOrEqual(256 * 1024);
    expect(k.integrityCheck()).toBe("ok");
  });
});

describe("size cap", () => {
  test("over the cap, the oldest history is dropped until the database fits; the audit log is kept", () => {
    const k = fresh({ maxBytes: 200 * 1024 });
    fill(k, 50);
    const t0 = 1_700_000_040_000;
    for (let i = 0; i < 3000; i++) {
      const values: Record<string, number> = {};
      for (let u = 0; u < 60; u++) values[`unit.u${u}.cpu_pct`] = Math.random();
      k.addFrame({ ts: t0 + i * 1000, values });
    }
    expect(k.sizeBytes()).toBeGreaterThan(600 * 1024);
    const r = k.compact(t0 + 3000 * 1000);
    expect(r.dropped).toBeGreaterThan(0);
    expect(r.bytes).toBeLessThanOrEqual(200 * 1024);
    // The newest second-by-second history survives; the oldest went first.
    expect(k.frames(t0 + 2999_000, t0 + 2999_000)).toHaveLength(1);
    expect(k.audit.verify()).toMatchObject({ ok: true, records: 50 });
  });
});

describe("learning", () => {
  test("outcomes are counted per signature and remedy; new signatures are counted per hour", () => {
    const k = fresh();
    const id = k.recordAction({ incident: null, time: 1, signature: "crash:demo:exit=3", remedy: "restart", tool: "unit.restart", args: {} });
    k.recordOutcome(id, "crash:demo:exit=3", "restart", "failure");
    k.recordOutcome(k.recordAction({ incident: null, time: 2, signature: "crash:demo:exit=3", remedy: "restart-with-limits", tool: "x", args: {} }), "crash:demo:exit=3", "restart-with-limits", "success");
    expect(k.remedyStats("crash:demo:exit=3").sort((a, b) => a.remedy.localeCompare(b.remedy))).toEqual([
      { remedy: "restart", attempts: 1, successes: 0, contained: 0 },
      { remedy: "restart-with-limits", attempts: 1, successes: 1, contained: 0 },
    ]);
    const now = 10 * 3600_000;
    expect(k.seeSignature("a", now - 1000)).toBe(true);
    expect(k.seeSignature("a", now - 500)).toBe(false);
    expect(k.seeSignature("b", now - 2 * 3600_000 + 10)).toBe(true);
  });

  test("a database written by another process is read back intact (WAL)", () => {
    const k = fresh();
    fill(k, 5);
    const other = new Database(k.path, { readonly: true });
    expect(other.query<{ n: number }, []>("SELECT COUNT(*) AS n FROM audit").get()!.n).toBe(5);
    other.close();
    writeFileSync(join(k.path, "..", "unrelated"), "x");
  });
});

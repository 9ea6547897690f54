// Links planted in PAIO's own folders (issue: privilege and tampering). The
// supervisor and the agent run as root; a symbolic link, a hard link or a
// FIFO left under the name of a unit log, a unit file, a model or the audit
// head must not make them read or write another file, nor stall them. Each
// case plants the entry next to a "secret" file and checks that the secret is
// unchanged and was not read, and that the real file is made anew.
import { afterEach, describe, expect, test } from "vitest";
import { closeSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { appendUnitLog, openUnitLog, rotateIfLarge, tailLines } from "../../init/supervisor/unit-log.ts";
import { loadUnits } from "../../init/supervisor/supervisor.ts";
import { checkModelFile } from "../../agents/models/manifest.ts";
import { writeSynced } from "../../agents/models/retrain.ts";
import { Knowledge } from "../../agents/knowledge/store.ts";
import { AuditLog, parseAnchor } from "../../agents/knowledge/audit.ts";
import { PlantedFileError, openOwnFile, readOwnFile } from "../../lib/own-file.ts";

const dirs: string[] = [];
function scratch(): { dir: string; secret: string } {
  const dir = mkdtempSync(join(tmpdir(), "paio-planted-"));
  dirs.push(dir);
  const secret = join(dir, "secret");
  writeFileSync(secret, "root-only secret\n");
  return { dir, secret };
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("unit logs", () => {
  test("a symbolic link under a log's name is moved aside at the unit's start; the unit's output never reaches its target", () => {
    const { dir, secret } = scratch();
    symlinkSync(secret, join(dir, "cam.log"));
    const said: string[] = [];
    const fd = openUnitLog(dir, "cam", (l) => said.push(l));
    expect(fd).not.toBe("ignore");
    writeSync(fd as number, "unit output\n");
    closeSync(fd as number);
    appendUnitLog(dir, "cam", ["paio: a supervisor line"]);
    expect(readFileSync(secret, "utf8")).toBe("root-only secret\n");
    expect(readFileSync(join(dir, "cam.log"), "utf8")).toBe("unit output\npaio: a supervisor line\n");
    expect(lstatSync(join(dir, "cam.log.refused")).isSymbolicLink()).toBe(true);
    expect(said.join("\n")).toContain(`cam: its log ${join(dir, "cam.log")} was a symbolic link to ${secret}; moved aside to ${join(dir, "cam.log.refused")}`);
  });

  test("a hard link to another file under a log's name is moved aside too; the other file keeps its contents", () => {
    const { dir, secret } = scratch();
    linkSync(secret, join(dir, "cam.log"));
    const said: string[] = [];
    const fd = openUnitLog(dir, "cam", (l) => said.push(l));
    writeSync(fd as number, "unit output\n");
    closeSync(fd as number);
    expect(readFileSync(secret, "utf8")).toBe("root-only secret\n");
    expect(readFileSync(join(dir, "cam.log"), "utf8")).toBe("unit output\n");
    expect(said.join("\n")).toContain("was a hard link (2 names for one file)");
  });

  test("'paio logs' (tailLines) does not read through a link, so a reader in group paio cannot see the target", () => {
    const { dir, secret } = scratch();
    symlinkSync(secret, join(dir, "cam.log"));
    expect(tailLines(dir, "cam", 10)).toEqual([]);
    rmSync(join(dir, "cam.log"));
    linkSync(secret, join(dir, "cam.log"));
    expect(tailLines(dir, "cam", 10)).toEqual([]);
    writeFileSync(join(dir, "web.log"), "a\nb\n");
    expect(tailLines(dir, "web", 10)).toEqual(["a", "b"]);
  });

  test("rotation makes <unit>.log.1 anew: a link planted under that name is replaced, its target untouched", () => {
    const { dir, secret } = scratch();
    writeFileSync(join(dir, "cam.log"), "x".repeat(2000) + "\n");
    symlinkSync(secret, join(dir, "cam.log.1"));
    expect(rotateIfLarge(dir, "cam", 1000)).toBe(true);
    expect(readFileSync(secret, "utf8")).toBe("root-only secret\n");
    expect(lstatSync(join(dir, "cam.log.1")).isFile()).toBe(true);
    expect(readFileSync(join(dir, "cam.log.1"), "utf8")).toHaveLength(2001);
    expect(readFileSync(join(dir, "cam.log"), "utf8")).toBe("");
  });

  test("a FIFO under a log's name stalls nothing: it is moved aside and a log is made", () => {
    const { dir } = scratch();
    expect(Bun.spawnSync(["mkfifo", join(dir, "cam.log")]).exitCode).toBe(0);
    const fd = openUnitLog(dir, "cam");
    expect(fd).not.toBe("ignore");
    closeSync(fd as number);
    expect(lstatSync(join(dir, "cam.log")).isFile()).toBe(true);
    expect(lstatSync(join(dir, "cam.log.refused")).isFIFO()).toBe(true);
  });
});

describe("unit files", () => {
  test("a symbolic or hard link in the units folder is refused with the fix; a plain file beside it loads", () => {
    const { dir, secret } = scratch();
    const units = join(dir, "units");
    mkdirSync(units);
    writeFileSync(join(dir, "outside.toml"), 'exec = ["/bin/true"]\n');
    symlinkSync(join(dir, "outside.toml"), join(units, "sym.toml"));
    linkSync(join(dir, "outside.toml"), join(units, "hard.toml"));
    symlinkSync(secret, join(units, "secret.toml"));
    writeFileSync(join(units, "good.toml"), 'exec = ["/bin/true"]\n');
    const r = loadUnits([units]);
    expect([...r.units.keys()]).toEqual(["good"]);
    const errors = r.errors.join("\n");
    expect(errors).toContain(`${join(units, "sym.toml")}: a symbolic link to ${join(dir, "outside.toml")}; PAIO reads only regular files with one name in this folder (a link could lead it to another file): replace it with a copy of the file`);
    expect(errors).toContain(`${join(units, "hard.toml")}: a hard link (2 names for one file)`);
    // Nothing of the target's text reaches an error message.
    expect(errors).not.toContain("root-only secret");
  });
});

describe("models", () => {
  test("a model file that is a link (to /dev/zero, or to a file elsewhere) is refused at once, without reading it", () => {
    const { dir, secret } = scratch();
    symlinkSync("/dev/zero", join(dir, "zero.onnx"));
    symlinkSync(secret, join(dir, "other.onnx"));
    const t0 = performance.now();
    const zero = checkModelFile(dir, { name: "z", file: "zero.onnx", sha256: "0".repeat(64) } as never);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(zero).toEqual({ ok: false, reason: `${join(dir, "zero.onnx")}: a symbolic link to /dev/zero; PAIO opens only regular files with one name here, so a link cannot lead it to another file` });
    const other = checkModelFile(dir, { name: "o", file: "other.onnx", sha256: "0".repeat(64) } as never);
    expect(other.ok).toBe(false);
    expect(!other.ok && other.reason).toContain("a symbolic link to");
  });

  test("a retrained model is written anew, never through a link planted under its name", () => {
    const { dir, secret } = scratch();
    symlinkSync(secret, join(dir, "anomaly.onnx.tmp"));
    writeSynced(join(dir, "anomaly.onnx.tmp"), "model bytes");
    expect(readFileSync(secret, "utf8")).toBe("root-only secret\n");
    expect(readFileSync(join(dir, "anomaly.onnx.tmp"), "utf8")).toBe("model bytes");
  });

  test("a file over the size bound is refused before it is read", () => {
    const { dir } = scratch();
    writeFileSync(join(dir, "big"), Buffer.alloc(5000));
    expect(() => readOwnFile(join(dir, "big"), 4096)).toThrow(/5000 bytes, more than the 4096 allowed/);
    expect(() => openOwnFile("/dev/null", "read")).toThrow(PlantedFileError);
  });
});

describe("the audit log", () => {
  function kb(): { k: Knowledge; dir: string; secret: string } {
    const s = scratch();
    return { ...s, k: new Knowledge(join(s.dir, "knowledge.db")) };
  }
  const fill = (log: AuditLog, n: number) => {
    for (let i = 0; i < n; i++) log.append("decision", "demo", { i }, 1_000 + i);
  };

  test("the head file is written anew, not through a link planted beside it", () => {
    const { k, dir, secret } = kb();
    symlinkSync(secret, join(dir, "audit.head.tmp"));
    fill(k.audit, 3);
    expect(readFileSync(secret, "utf8")).toBe("root-only secret\n");
    expect(readFileSync(join(dir, "audit.head"), "utf8")).toMatch(/^3 [0-9a-f]{64}\n$/);
    expect(k.audit.verify()).toMatchObject({ ok: true, records: 3 });
  });

  test("a head file replaced by a link is not trusted", () => {
    const { k, dir } = kb();
    fill(k.audit, 3);
    rmSync(join(dir, "audit.head"));
    symlinkSync("/dev/zero", join(dir, "audit.head"));
    const v = k.audit.verify();
    expect(v).toMatchObject({ ok: false });
    expect(!v.ok && v.problem).toContain("the head file cannot be trusted: ");
  });

  test("a log cut and its head file rewritten to match pass on the device alone; a head kept off the device catches them", () => {
    const { k, dir } = kb();
    fill(k.audit, 10);
    const anchor = parseAnchor(k.audit.headAnchor())!;
    expect(anchor.seq).toBe(10);
    fill(k.audit, 2);
    // Someone with the data partition cuts records 6..12 and rewrites the head to match.
    k.db.run("DELETE FROM audit WHERE seq >= 6");
    const last = k.db.query<{ hash: string }, []>("SELECT hash FROM audit WHERE seq = 5").get()!;
    writeFileSync(join(dir, "audit.head"), `5 ${last.hash}\n`);
    expect(k.audit.verify()).toMatchObject({ ok: true, records: 5 }); // the limit docs/agent.md states
    const v = k.audit.verify(anchor);
    expect(v).toMatchObject({ ok: false, badSeq: 6 });
    expect(!v.ok && v.problem).toContain("records 6..10 missing: the head recorded off the device says the log reached record 10");

    // Rebuilt to the same length with other contents: the recorded hash differs.
    const db = new Database(join(dir, "knowledge.db"));
    db.run("DELETE FROM audit");
    db.close();
    const forged = new AuditLog(k.db, join(dir, "audit.head"));
    for (let i = 0; i < 12; i++) forged.append("decision", "demo", { forged: i }, 5_000 + i);
    expect(k.audit.verify()).toMatchObject({ ok: true, records: 12 });
    const w = k.audit.verify(anchor);
    expect(w).toMatchObject({ ok: false, badSeq: 10 });
    expect(!w.ok && w.problem).toContain("record 10 differs from the one recorded off the device");
  });

  test("an anchor is SEQ:HASH and nothing else", () => {
    expect(parseAnchor(`7:${"a".repeat(64)}`)).toEqual({ seq: 7, hash: "a".repeat(64) });
    for (const bad of ["", "7", `7:${"a".repeat(63)}`, `x:${"a".repeat(64)}`, `7:${"A".repeat(64)}`, `-1:${"a".repeat(64)}`]) expect(parseAnchor(bad)).toBeUndefined();
  });
});

// A unit's log after a power cut: ext4 may have recorded the new length of
// the file but not the appended data, so the log ends in zero bytes. The
// supervisor cuts them off before the unit writes again and says so in one
// line; a last line without its newline is ended, with a line that says so;
// a whole log is never touched.
import { describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync, closeSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CUT_SHORT_NOTE, openUnitLog, repairTornTail } from "../../init/supervisor/unit-log.ts";

describe("a log's torn tail", () => {
  test("zero bytes at the end are removed, with a line that says how many, and the unit appends after it", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-log-"));
    writeFileSync(join(dir, "cam.log"), Buffer.concat([Buffer.from("line 1\nline 2\nli"), Buffer.alloc(8192)]));
    const fd = openUnitLog(dir, "cam");
    expect(fd).not.toBe("ignore");
    writeSync(fd as number, "line 3\n");
    closeSync(fd as number);
    expect(readFileSync(join(dir, "cam.log"), "utf8")).toBe("line 1\nline 2\nli\npaio: 8192 zero bytes at the end of this log (writes a power cut interrupted) were removed\nline 3\n");
  });

  test("a last line without its newline is ended, with a line that says it was cut short, and the unit's next line starts a line of its own", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-log-"));
    writeFileSync(join(dir, "cam.log"), "line 1\nline 2\nli");
    const fd = openUnitLog(dir, "cam");
    expect(fd).not.toBe("ignore");
    writeSync(fd as number, "line 3\n");
    closeSync(fd as number);
    expect(readFileSync(join(dir, "cam.log"), "utf8")).toBe(`line 1\nline 2\nli\n${CUT_SHORT_NOTE}line 3\n`);
  });

  test("a whole log, an empty one and a missing one are left as they are", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-log-"));
    writeFileSync(join(dir, "a.log"), "line 1\nline 2\n");
    writeFileSync(join(dir, "b.log"), "");
    expect(repairTornTail(join(dir, "a.log"))).toBe(0);
    expect(repairTornTail(join(dir, "b.log"))).toBe(0);
    expect(repairTornTail(join(dir, "c.log"))).toBe(0);
    expect(readFileSync(join(dir, "a.log"), "utf8")).toBe("line 1\nline 2\n");
  });

  test("a log that is nothing but zeros is emptied down to the note", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-log-"));
    writeFileSync(join(dir, "z.log"), Buffer.alloc(100));
    expect(repairTornTail(join(dir, "z.log"))).toBe(100);
    expect(readFileSync(join(dir, "z.log"), "utf8")).toBe("paio: 100 zero bytes at the end of this log (writes a power cut interrupted) were removed\n");
  });
});

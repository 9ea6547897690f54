// The data partition's format marker (FORMAT under the state directory): a
// new partition gets it, the same format passes, a newer or unreadable one
// is said clearly and nothing on the partition is rewritten in its place:
// the supervisor still runs its units, the first-boot settings are not
// imported. docs/image.md, "Data across versions".
import { afterEach, describe, expect, test } from "vitest";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkDataFormat, DATA_FORMAT, dataFormatPath, dataFormatProblem, formatFileText, readDataFormat } from "../../lib/data-format.ts";
import { firstBoot } from "../../lib/provision/firstboot.ts";
import { startSupervisor, tempDir, unit } from "../helpers/host-supervisor.ts";

const dirs: string[] = [];
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), "paio-format-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

function check(state: string): { result: ReturnType<typeof checkDataFormat>; said: string[] } {
  const said: string[] = [];
  return { result: checkDataFormat(state, (l) => said.push(l)), said };
}

describe("the format marker", () => {
  test("missing: written (a comment line and the number), and said once", () => {
    const state = join(stateDir(), "paio");
    const { result, said } = check(state);
    expect(result).toEqual({ state: "missing", path: join(state, "FORMAT") });
    const text = readFileSync(join(state, "FORMAT"), "utf8");
    expect(text).toBe(formatFileText());
    expect(text.split("\n")).toEqual([expect.stringMatching(/^# PAIO data partition format/), String(DATA_FORMAT), ""]);
    expect(said).toEqual([`data partition: format ${DATA_FORMAT}, marked in ${join(state, "FORMAT")}`]);
    expect(existsSync(join(state, "FORMAT.tmp"))).toBe(false);
    expect(check(state)).toEqual({ result: { state: "same", path: join(state, "FORMAT"), format: DATA_FORMAT }, said: [] });
  });

  test("the same format: accepted without a word, the file untouched (comments and blank lines allowed)", () => {
    const state = stateDir();
    writeFileSync(join(state, "FORMAT"), `# written by hand\n\n  ${DATA_FORMAT}  \n`);
    const before = statSync(join(state, "FORMAT")).mtimeMs;
    const sum = sha256(join(state, "FORMAT"));
    expect(check(state)).toEqual({ result: { state: "same", path: join(state, "FORMAT"), format: DATA_FORMAT }, said: [] });
    expect(dataFormatProblem(state)).toBeUndefined();
    expect(sha256(join(state, "FORMAT"))).toBe(sum);
    expect(statSync(join(state, "FORMAT")).mtimeMs).toBe(before);
  });

  test("an older format is brought up to this one", () => {
    const state = stateDir();
    writeFileSync(join(state, "FORMAT"), "1\n");
    const said: string[] = [];
    expect(checkDataFormat(state, (l) => said.push(l), 3)).toMatchObject({ state: "older", format: 1 });
    expect(readFileSync(join(state, "FORMAT"), "utf8")).toBe(formatFileText(3));
    expect(said).toEqual([`data partition: format 1 is now format 3 (${join(state, "FORMAT")})`]);
  });

  test("a newer format: refused with the file, both formats and what to do; the file is not rewritten", () => {
    const state = stateDir();
    writeFileSync(join(state, "FORMAT"), "# PAIO data partition format\n2\n");
    const sum = sha256(join(state, "FORMAT"));
    const { result, said } = check(state);
    expect(result.state).toBe("newer");
    expect(said).toHaveLength(1);
    const msg = said[0]!;
    expect(msg).toContain(`data partition: ${join(state, "FORMAT")}: the data partition is in format 2, newer than this PAIO version knows (up to ${DATA_FORMAT}): a newer PAIO version used it.`);
    expect(msg).toContain("the knowledge base, first-boot settings, device models and keys on it are left alone");
    expect(msg).toContain("Boot the newer version again to use them");
    expect(dataFormatProblem(state)).toBe((result as { problem: string }).problem);
    expect(sha256(join(state, "FORMAT"))).toBe(sum);
  });

  test.each([
    ["a word", "banana\n", 'found "banana"'],
    ["two numbers", "1\n2\n", 'found "1 2"'],
    ["only a comment", "# nothing else\n", "found no number"],
    ["an empty file", "", "found no number"],
    ["zero", "0\n", 'found "0"'],
    ["a negative number", "-1\n", 'found "-1"'],
    ["a fraction", "1.5\n", 'found "1.5"'],
  ])("garbage (%s): a clear error naming the file and the fix; the file is kept", (_what, text, found) => {
    const state = stateDir();
    const path = join(state, "FORMAT");
    writeFileSync(path, text);
    const { result, said } = check(state);
    expect(result.state).toBe("unreadable");
    expect(said).toEqual([`data partition: ${(result as { problem: string }).problem}`]);
    expect(said[0]).toContain(`${path}: not a data format marker (expected one whole number such as ${DATA_FORMAT} after '#' comment lines; ${found})`);
    expect(said[0]).toContain(`echo ${DATA_FORMAT} > ${path}`);
    expect(said[0]).toContain("remove the file (it is written again at the next start)");
    expect(dataFormatProblem(state)).toBeDefined();
    expect(readFileSync(path, "utf8")).toBe(text);
  });

  test("a FIFO in its place is refused without blocking; so is a directory", () => {
    const state = stateDir();
    execFileSync("mkfifo", [join(state, "FORMAT")]);
    expect(readDataFormat(state)).toMatchObject({ state: "unreadable", problem: expect.stringContaining(`${join(state, "FORMAT")}: a FIFO (named pipe), not a regular file`) });
    const other = stateDir();
    mkdirSync(join(other, "FORMAT"));
    expect(check(other).said[0]).toContain(`${join(other, "FORMAT")}: a directory, not a regular file`);
  });

  test("a partition that cannot be written is said, not thrown", () => {
    const d = stateDir();
    writeFileSync(join(d, "not-a-dir"), "");
    const { result, said } = check(join(d, "not-a-dir", "paio"));
    expect(result.state).toBe("missing");
    expect(said).toEqual([`data partition: cannot write the format marker ${join(d, "not-a-dir", "paio", "FORMAT")}: a path component is not a directory (ENOTDIR)`]);
  });

  test("the marker's place follows PAIO_STATE_DIR", () => {
    const before = process.env.PAIO_STATE_DIR;
    process.env.PAIO_STATE_DIR = "/somewhere/else";
    try {
      expect(dataFormatPath()).toBe("/somewhere/else/FORMAT");
    } finally {
      if (before === undefined) delete process.env.PAIO_STATE_DIR;
      else process.env.PAIO_STATE_DIR = before;
    }
  });
});

describe("at boot", () => {
  test("the supervisor marks a new data partition", async () => {
    const d = tempDir();
    const s = startSupervisor(d);
    await s.waitFor(new RegExp(`paio: data partition: format ${DATA_FORMAT}, marked in ${join(d, "state", "FORMAT")}`));
    await s.waitFor(/supervisor ready/);
    expect(readFileSync(join(d, "state", "FORMAT"), "utf8")).toBe(formatFileText());
  });

  test("a newer format: the supervisor says so and still runs its units; the marker stays as it is", async () => {
    const d = tempDir();
    writeFileSync(join(d, "state", "FORMAT"), "# PAIO data partition format\n5\n");
    unit(d, "svc", 'exec = ["/bin/sh", "-c", "sleep 100"]\n');
    const s = startSupervisor(d);
    const line = await s.waitFor(/data partition: /);
    expect(line).toContain("the data partition is in format 5, newer than this PAIO version knows");
    await s.waitFor(/svc: started/);
    await s.waitFor(/supervisor ready \(uptime [\d.]+ s, 1 units started\)/);
    expect(readFileSync(join(d, "state", "FORMAT"), "utf8")).toBe("# PAIO data partition format\n5\n");
  });

  test("a newer format: first-boot settings are not imported (nothing mounted, nothing written), and that is said", () => {
    const state = stateDir();
    const run = join(stateDir(), "run");
    writeFileSync(join(state, "FORMAT"), "2\n");
    const said: string[] = [];
    expect(firstBoot({ runDir: run, state, say: (l) => said.push(l) })).toBeUndefined();
    expect(said).toEqual(["first-boot settings: not imported: the data partition is in a format this version does not know (see above); they stay on the boot partition"]);
    expect(existsSync(run)).toBe(false);
  });
});

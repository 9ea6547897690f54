// KeptFiles: the monitor's open-once, read-again-from-offset-0 reader of
// cgroup and /proc files. It must give the file as it is now, never a copy
// from an earlier read; a file whose kernel object went away must read as
// missing (not as its last value); and a missing file is looked for again.
import { afterEach, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { KeptFiles, cgroupSample } from "../../agents/monitor/procfs.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "paio-kept-"));
  dirs.push(d);
  return d;
}

describe("KeptFiles", () => {
  test("reads what the file holds now, through the same open file", () => {
    const d = tmp();
    const f = join(d, "memory.current");
    writeFileSync(f, "1000\n");
    const files = new KeptFiles();
    expect(files.read(f)).toBe("1000\n");
    expect(files.open).toBe(1);
    // Rewritten in place (a counter that changed): the next read sees it, shorter or longer.
    writeFileSync(f, "7\n");
    expect(files.read(f)).toBe("7\n");
    writeFileSync(f, "123456789\n");
    expect(files.read(f)).toBe("123456789\n");
    expect(files.open).toBe(1);
  });

  test("a kernel file whose object is gone reads as missing, not as its last value", async () => {
    const child = spawn("sleep", ["30"]);
    const pid = child.pid!;
    const files = new KeptFiles();
    const path = `/proc/${pid}/stat`;
    expect(files.read(path)).toMatch(new RegExp(`^${pid} \\(sleep\\) `));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    // Reaped: /proc/PID is gone, and the kept file fails instead of repeating its old text.
    expect(files.read(path)).toBeUndefined();
    expect(files.open).toBe(0);
  });

  test("a missing file is looked for again after the retry time, and forget closes a folder's files", () => {
    const d = tmp();
    const f = join(d, "cpu.wait.stat");
    let now = 1_000_000;
    const files = new KeptFiles(60_000);
    expect(files.read(f, now)).toBeUndefined();
    writeFileSync(f, "wait_usec 5\n");
    // Within the minute it is not looked for (a stock kernel has no such file: no open at every tick).
    expect(files.read(f, now + 30_000)).toBeUndefined();
    now += 60_001;
    expect(files.read(f, now)).toBe("wait_usec 5\n");
    expect(files.open).toBe(1);
    files.forget(d);
    expect(files.open).toBe(0);
  });

  test("cgroupSample reads the same figures with kept files as without", () => {
    const d = tmp();
    writeFileSync(join(d, "cpu.stat"), "usage_usec 4200\nuser_usec 4000\nsystem_usec 200\n");
    writeFileSync(join(d, "memory.current"), "52428800\n");
    writeFileSync(join(d, "memory.max"), "max\n");
    writeFileSync(join(d, "pids.current"), "3\n");
    const files = new KeptFiles();
    const kept = cgroupSample(d, files);
    expect(kept).toEqual(cgroupSample(d));
    expect(kept).toMatchObject({ cpuUsageUs: 4200, memoryCurrent: 52428800, memoryMax: Infinity, pidsCurrent: 3 });
    writeFileSync(join(d, "memory.current"), "1048576\n");
    expect(cgroupSample(d, files).memoryCurrent).toBe(1048576);
  });
});

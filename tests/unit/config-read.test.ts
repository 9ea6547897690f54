// Configuration files are read without ever blocking: a FIFO, a device or a
// link to one is refused before it is opened, with the path and what to do.
import { afterAll, describe, expect, test } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONFIG_MAX_BYTES, readConfigFile, readOptionalConfig } from "../../lib/config/read.ts";

const dir = mkdtempSync(join(tmpdir(), "paio-read-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Reads in a child process with a deadline, so a reader that blocks fails the
 * test instead of hanging it: the answer is the child's JSON, or "HUNG".
 */
function readInChild(path: string): string {
  const code = `import { readConfigFile } from ${JSON.stringify(join(import.meta.dirname, "../../lib/config/read.ts"))};
console.log(JSON.stringify(readConfigFile(${JSON.stringify(path)})));`;
  const r = Bun.spawnSync(["timeout", "10", process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe" });
  return r.exitCode === 124 ? "HUNG" : r.stdout.toString().trim() + r.stderr.toString();
}

describe("readConfigFile", () => {
  test("a regular file is read as UTF-8 text, also through a symbolic link", () => {
    writeFileSync(join(dir, "good.toml"), 'exec = ["/bin/true"] # é\n');
    symlinkSync(join(dir, "good.toml"), join(dir, "link.toml"));
    expect(readConfigFile(join(dir, "good.toml"))).toEqual({ ok: true, text: 'exec = ["/bin/true"] # é\n' });
    expect(readConfigFile(join(dir, "link.toml"))).toEqual({ ok: true, text: 'exec = ["/bin/true"] # é\n' });
  });

  test("a FIFO is refused at once, naming the file and the fix", () => {
    const fifo = join(dir, "fifo.toml");
    Bun.spawnSync(["mkfifo", fifo]);
    const out = readInChild(fifo);
    expect(out).not.toBe("HUNG");
    const r = JSON.parse(out);
    expect(r.ok).toBe(false);
    expect(r.error).toBe(`${fifo}: a FIFO (named pipe), not a regular file; remove it or replace it with a text file`);
  });

  test("a symbolic link to /dev/zero is refused without being opened", () => {
    const link = join(dir, "zero.toml");
    symlinkSync("/dev/zero", link);
    const out = readInChild(link);
    expect(out).not.toBe("HUNG");
    expect(JSON.parse(out).error).toBe(`${link}: a character device, not a regular file; remove it or replace it with a text file`);
  });

  test("a directory, a file too large, a file that is not UTF-8 and a missing file each get their own error", () => {
    mkdirSync(join(dir, "sub.toml"));
    writeFileSync(join(dir, "big.toml"), Buffer.alloc(CONFIG_MAX_BYTES + 1, 0x20));
    writeFileSync(join(dir, "latin1.toml"), Buffer.from([0x23, 0x20, 0xe9, 0x0a]));
    expect(readConfigFile(join(dir, "sub.toml"))).toEqual({ ok: false, error: `${join(dir, "sub.toml")}: a directory, not a regular file; remove it or replace it with a text file` });
    expect((readConfigFile(join(dir, "big.toml")) as { error: string }).error).toMatch(/big\.toml: too large \(1048577 bytes, at most 1048576 allowed/);
    expect(readConfigFile(join(dir, "latin1.toml"))).toEqual({ ok: false, error: `${join(dir, "latin1.toml")}: not UTF-8 text; save it as UTF-8` });
    expect(readConfigFile(join(dir, "none.toml"))).toEqual({ ok: false, error: `${join(dir, "none.toml")}: cannot read: no such file or directory (ENOENT)` });
  });

  test("readOptionalConfig: undefined when absent, the error when present but unreadable", () => {
    expect(readOptionalConfig(join(dir, "absent.toml"))).toBeUndefined();
    Bun.spawnSync(["mkfifo", join(dir, "policy.toml")]);
    expect(() => readOptionalConfig(join(dir, "policy.toml"))).toThrow(/policy\.toml: a FIFO/);
  });
});

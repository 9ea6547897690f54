// lib/process-name.ts: a PAIO program names itself in the kernel's process
// list, seen from another process, and its command line stays as it was.
import { describe, expect, test } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { nameProcess } from "../../lib/process-name.ts";

const LIB = join(import.meta.dirname, "../../lib/process-name.ts");

describe("nameProcess", () => {
  test("another process sees the new name in /proc/PID/comm; the command line is unchanged", async () => {
    const child = Bun.spawn([process.execPath, "-e", `const { nameProcess } = await import(${JSON.stringify(LIB)}); const err = nameProcess("paio-test"); console.log(err ?? "named"); await Bun.sleep(30000);`], { stdout: "pipe" });
    try {
      const reader = child.stdout.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first.trim()).toBe("named");
      expect(readFileSync(`/proc/${child.pid}/comm`, "utf8")).toBe("paio-test\n");
      expect(readFileSync(`/proc/${child.pid}/cmdline`, "utf8")).toContain("nameProcess");
    } finally {
      child.kill();
    }
  });

  test("a name the kernel would cut or that holds odd characters is refused with a sentence", () => {
    expect(() => nameProcess("paio-supervisor-x")).toThrow(/use 1 to 15 of a-z, 0-9 and '-'/);
    expect(() => nameProcess("bad name\n")).toThrow(/process name/);
  });
});

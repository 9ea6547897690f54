// The per-task latency hint's system calls on this host, for real: its
// kernel is a stock one, so the probe says the hint is absent, sched_getattr
// answers the 56-byte struct, and setting a hint is refused with a sentence
// that says why; and the module, where bun:ffi cannot be loaded (bundled for
// Node), answers "unavailable". (The patched kernel's side:
// tests/e2e/kernel-hooks.test.ts.)
import { describe, expect, test } from "vitest";
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/host-supervisor.ts";

/** A real Node, not the `node` that `bun --bun` puts first on PATH (Bun itself). */
const NODE = ["/usr/bin/node", "/usr/local/bin/node"].find((p) => {
  try {
    return !realpathSync(p).endsWith("/bun");
  } catch {
    return false;
  }
});
import { get, isLatencyNice, probe, set, setNice } from "../../lib/sched-latency.ts";

describe("per-task latency hint on a stock kernel", () => {
  test("the probe says absent, from the 56-byte struct the kernel reports", () => {
    const p = probe();
    expect(p.state).toBe("absent");
    expect(p.why).toBe("sched_attr is 56 bytes, not 60: this kernel has no per-task latency hint");
  });

  test("get() on this process: the stock 56-byte answer, its nice, no hint", () => {
    const r = get(0);
    expect(r).toMatchObject({ ok: true, size: 56, policy: 0 });
    if (!r.ok) return;
    expect(r.latencyNice).toBeUndefined();
    const stat = readFileSync("/proc/self/stat", "utf8");
    expect(r.nice).toBe(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]));
    expect(get(process.pid)).toEqual(r);
  });

  test("set() is refused: EINVAL for the unknown flag (E2BIG for a struct longer than the kernel's), said as a sentence", () => {
    const zero = set(0, 0);
    expect(zero).toEqual({
      ok: false,
      code: "EINVAL",
      message: "this kernel has no per-task latency hint (sched_attr is 56 bytes, not 60; sched_setattr refused SCHED_FLAG_LATENCY_NICE with EINVAL): use cpu.latency.nice on a patched kernel, or nice",
    });
    const lower = set(process.pid, -5);
    expect(lower.ok).toBe(false);
    if (lower.ok) return;
    expect(["EINVAL", "E2BIG"]).toContain(lower.code);
    expect(lower.message).toMatch(/^this kernel has no per-task latency hint \(sched_attr is 56 bytes, not 60; /);
    // Nothing changed: the task's nice is what it was.
    expect(get(0)).toMatchObject({ ok: true, size: 56 });
  });

  test("out of range, not a number, or no such task: refused before or by the kernel, with what to do", () => {
    for (const v of [-21, 20, 1.5, Number.NaN]) {
      expect(set(0, v)).toEqual({ ok: false, code: "EINVAL", message: `latency nice must be a whole number from -20 to 19, got ${JSON.stringify(v)}` });
    }
    expect(isLatencyNice(-20) && isLatencyNice(19) && !isLatencyNice("-3")).toBe(true);
    // A pid far above pid_max is no task.
    expect(set(99_999_999, 3)).toEqual({ ok: false, code: "ESRCH", message: "no task 99999999 (ESRCH): it has exited" });
    expect(get(99_999_999)).toEqual({ ok: false, code: "ESRCH", message: "no task 99999999 (ESRCH): it has exited" });
    expect(setNice(99_999_999, 3)).toEqual({ ok: false, code: "ESRCH", message: "no process 99999999 (ESRCH): it has exited" });
  });

  test("plain nice, the fallback, is set and read back on a child process", async () => {
    const child = Bun.spawn(["sleep", "10"]);
    try {
      expect(setNice(child.pid, 7)).toEqual({ ok: true });
      expect(get(child.pid)).toMatchObject({ ok: true, nice: 7 });
    } finally {
      child.kill();
      await child.exited;
    }
  });

  // Node has no bun:ffi: the same module, bundled for Node, loads and says so.
  test.skipIf(!NODE)("where bun:ffi cannot be loaded, every call answers 'unavailable' instead of throwing", async () => {
    const d = tempDir();
    const built = await Bun.build({ entrypoints: [join(import.meta.dirname, "../../lib/sched-latency.ts")], target: "node", format: "esm", outdir: d });
    expect(built.success).toBe(true);
    const script = `import { probe, get, set, setNice } from "${join(d, "sched-latency.js")}"; console.log(JSON.stringify([probe(), get(0), set(0, -3), setNice(0, 1)]));`;
    const p = Bun.spawnSync([NODE!, "--input-type=module", "-e", script], { stdout: "pipe", stderr: "pipe" });
    expect(p.stderr.toString()).toBe("");
    const why = "bun:ffi is not available here (Cannot find module 'bun:ffi')";
    expect(JSON.parse(p.stdout.toString())).toEqual([
      { state: "unavailable", why },
      { ok: false, code: "unavailable", message: why },
      { ok: false, code: "unavailable", message: why },
      { ok: false, code: "unavailable", message: why },
    ]);
  });
});

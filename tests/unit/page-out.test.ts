// Giving back the pages used only at start (lib/page-out.ts), in a real Bun
// process that has loaded onnxruntime and a model: its resident memory must
// drop, and the model must still answer the same afterwards (the pages it
// needs come back as they are touched).
import { describe, expect, test } from "vitest";
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { cleanFileMappings, fileMappings } from "../../lib/page-out.ts";
import { encodeModel, floatTensor } from "../../agents/models/onnx.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

describe("fileMappings", () => {
  test("takes read-only mappings of files only: not anonymous memory, not writable or shared-writable mappings", () => {
    const maps = [
      "55d0c0000000-55d0c2000000 r-xp 00000000 08:01 1311 /usr/bin/bun",
      "55d0c2000000-55d0c2100000 r--p 02000000 08:01 1311 /usr/bin/bun",
      "55d0c2100000-55d0c2200000 rw-p 02100000 08:01 1311 /usr/bin/bun",
      "55d0c2200000-55d0c2400000 rw-p 00000000 00:00 0 [heap]",
      "7f00000000-7f00008000 rw-s 00000000 08:02 77 /var/lib/paio/agent/knowledge.db-shm",
      "7f10000000-7f10400000 r-xp 00000000 08:01 4242 /usr/lib/x86_64-linux-gnu/libonnxruntime.so.1",
      "7f20000000-7f20001000 r--p 00000000 00:00 0 ",
      "7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]",
      "7f30000000-7f30001000 r--p 00000000 08:01 99 /tmp/a name with spaces (deleted)",
    ].join("\n");
    expect(fileMappings(maps).map((m) => [m.start.toString(16), m.end.toString(16), m.file])).toEqual([
      ["55d0c0000000", "55d0c2000000", "/usr/bin/bun"],
      ["55d0c2000000", "55d0c2100000", "/usr/bin/bun"],
      ["7f10000000", "7f10400000", "/usr/lib/x86_64-linux-gnu/libonnxruntime.so.1"],
      ["7f30000000", "7f30001000", "/tmp/a name with spaces (deleted)"],
    ]);
  });
});

describe("cleanFileMappings", () => {
  test("takes the read-only file mappings with resident pages and no page of the process's own", () => {
    const smaps = [
      "55d0c0000000-55d0c2000000 r-xp 00000000 08:01 1311 /usr/bin/bun",
      "Size:              32768 kB",
      "Rss:                9000 kB",
      "Anonymous:             0 kB",
      "VmFlags: rd ex mr mw me",
      // Relocated data: pages copied on write; dropping them would undo the relocations.
      "55d0c2000000-55d0c2100000 r--p 02000000 08:01 1311 /usr/bin/bun",
      "Rss:                1024 kB",
      "Anonymous:           900 kB",
      "55d0c2100000-55d0c2200000 rw-p 02100000 08:01 1311 /usr/bin/bun",
      "Rss:                 512 kB",
      "Anonymous:             0 kB",
      "7f10000000-7f10400000 r-xp 00000000 08:01 4242 /usr/lib/libonnxruntime.so.1",
      "Rss:                   0 kB",
      "Anonymous:             0 kB",
      "7f20000000-7f20100000 r--p 00000000 00:00 0 ",
      "Rss:                  64 kB",
      "Anonymous:             0 kB",
      "7f30000000-7f30100000 r--p 00000000 08:01 77 /usr/share/zoneinfo/UTC",
      "Rss:                   4 kB",
      "Anonymous:             0 kB",
    ].join("\n");
    expect(cleanFileMappings(smaps).map((m) => [m.start.toString(16), m.file])).toEqual([
      ["55d0c0000000", "/usr/bin/bun"],
      ["7f30000000", "/usr/share/zoneinfo/UTC"],
    ]);
  });
});

describe("giveBackFilePages", () => {
  test("a page the process wrote in a private mapping, then made read-only, keeps what was written", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-pageout-"));
    const file = join(dir, "data.bin");
    writeFileSync(file, Buffer.alloc(8192, 0x41));
    const script = join(dir, "child.ts");
    writeFileSync(script, `
      import { dlopen, FFIType, toArrayBuffer } from "bun:ffi";
      import { openSync } from "node:fs";
      import { giveBackFilePages } from "${join(REPO, "lib/page-out.ts")}";
      const c = dlopen("libc.so.6", {
        mmap: { args: [FFIType.u64, FFIType.u64, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.u64], returns: FFIType.ptr },
        mprotect: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
      });
      // PROT_READ|PROT_WRITE, MAP_PRIVATE: a copy-on-write mapping of the file, like a library's relocated data.
      const p = c.symbols.mmap(0n, 8192n, 3, 2, openSync("${file}", "r"), 0n)!;
      const view = new Uint8Array(toArrayBuffer(p, 0, 8192));
      view[0] = 0x5a;
      view[4096] = 0x5b;
      if (c.symbols.mprotect(p, 8192n, 1) !== 0) throw new Error("mprotect failed");
      const r = giveBackFilePages();
      console.log(JSON.stringify({ ok: r.ok, text: r.text, a: view[0], b: view[4096], c: view[1] }));
    `);
    const out = spawnSync(process.execPath, [script], { encoding: "utf8" });
    rmSync(dir, { recursive: true, force: true });
    expect(out.status, out.stderr).toBe(0);
    const got = JSON.parse(out.stdout.trim().split("\n").pop()!);
    expect(got.ok, got.text).toBe(true);
    expect([got.a, got.b, got.c]).toEqual([0x5a, 0x5b, 0x41]);
  }, 60_000);

  test("a process with onnxruntime loaded gives back file pages, and its model still answers the same", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-pageout-"));
    // y = x·W + b, a real ONNX file from the project's own writer.
    const model = join(dir, "lin.onnx");
    writeFileSync(model, encodeModel({
      name: "lin",
      inputs: [{ name: "x", shape: [1, 4] }],
      outputs: [{ name: "y", shape: [1, 1] }],
      initializers: [floatTensor("W", [4, 1], [1, 2, 3, 4]), floatTensor("b", [1], [0.5])],
      nodes: [{ op: "MatMul", inputs: ["x", "W"], outputs: ["xw"] }, { op: "Add", inputs: ["xw", "b"], outputs: ["y"] }],
    }));
    // A copy of onnxruntime-node of its own: pages that another process maps too (the test runner's workers load the
    // same library) are left where they are by the kernel, and the test must not depend on what else runs.
    const pkg = join(dir, "node_modules", "onnxruntime-node");
    const native = `bin/napi-v6/linux/${process.arch}`;
    for (const part of ["package.json", "dist", native]) cpSync(join(REPO, "node_modules/onnxruntime-node", part), join(pkg, part), { recursive: true });
    symlinkSync(join(REPO, "node_modules/onnxruntime-common"), join(dir, "node_modules", "onnxruntime-common"));
    const script = join(dir, "child.ts");
    writeFileSync(script, `
      import * as ort from "onnxruntime-node";
      import { readFileSync, realpathSync } from "node:fs";
      import { giveBackFilePages, residentKiB } from "${join(REPO, "lib/page-out.ts")}";
      const s = await ort.InferenceSession.create("${model}", { intraOpNumThreads: 1, interOpNumThreads: 1 });
      const run = async () => Array.from((await s.run({ x: new ort.Tensor("float32", new Float32Array([1, 1, 1, 1]), [1, 4]) })).y.data);
      const first = await run();
      // Bun's own code: the test runner maps the same binary, so these pages are shared.
      const exe = () => {
        const exe = realpathSync("/proc/self/exe");
        let kb = 0, mine = false;
        for (const l of readFileSync("/proc/self/smaps", "utf8").split("\\n")) {
          if (/^[0-9a-f]+-[0-9a-f]+ /.test(l)) mine = / r-xp /.test(l) && l.endsWith(exe);
          else if (mine && l.startsWith("Rss:")) kb += Number(/(\\d+)/.exec(l)![1]);
        }
        return kb;
      };
      const before = residentKiB();
      const bunBefore = exe();
      const r = giveBackFilePages();
      const bunAfter = exe();
      const after = residentKiB();
      const bun = { before: bunBefore, after: bunAfter };
      const again = await run();
      const ownCopy = readFileSync("/proc/self/maps", "utf8").includes("${join(pkg, native, "libonnxruntime.so.1")}");
      console.log(JSON.stringify({ r, before, after, first, again, ownCopy, bun }));
    `);
    const out = spawnSync(process.execPath, [script], { encoding: "utf8", env: { ...process.env, ORT_DISABLE_TELEMETRY: "1" } });
    expect(out.status, out.stderr).toBe(0);
    const { r, before, after, first, again, ownCopy, bun } = JSON.parse(out.stdout.trim().split("\n").pop()!);
    expect(ownCopy).toBe(true);
    expect(r.ok, r.text).toBe(true);
    expect(r.text).toMatch(/^gave back the file pages used only at start: resident [\d.]+ MiB -> [\d.]+ MiB/);
    // At least 8 MiB of onnxruntime's and Bun's file pages went (on this machine, tens of MiB).
    expect(before.file - after.file).toBeGreaterThan(8 * 1024);
    expect(after.rss).toBeLessThan(before.rss);
    // Bun's code that other processes map too left this process as well (and came back only in part).
    expect(bun.before - bun.after).toBeGreaterThan(4 * 1024);
    expect(first).toEqual([10.5]);
    expect(again).toEqual(first);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});

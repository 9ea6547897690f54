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
import { fileMappings } from "../../lib/page-out.ts";
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

describe("giveBackFilePages", () => {
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
      import { readFileSync } from "node:fs";
      import { giveBackFilePages, residentKiB } from "${join(REPO, "lib/page-out.ts")}";
      const s = await ort.InferenceSession.create("${model}", { intraOpNumThreads: 1, interOpNumThreads: 1 });
      const run = async () => Array.from((await s.run({ x: new ort.Tensor("float32", new Float32Array([1, 1, 1, 1]), [1, 4]) })).y.data);
      const first = await run();
      const before = residentKiB();
      const r = giveBackFilePages();
      const after = residentKiB();
      const again = await run();
      const ownCopy = readFileSync("/proc/self/maps", "utf8").includes("${join(pkg, native, "libonnxruntime.so.1")}");
      console.log(JSON.stringify({ r, before, after, first, again, ownCopy }));
    `);
    const out = spawnSync(process.execPath, [script], { encoding: "utf8", env: { ...process.env, ORT_DISABLE_TELEMETRY: "1" } });
    expect(out.status, out.stderr).toBe(0);
    const { r, before, after, first, again, ownCopy } = JSON.parse(out.stdout.trim().split("\n").pop()!);
    expect(ownCopy).toBe(true);
    expect(r.ok, r.text).toBe(true);
    expect(r.text).toMatch(/^gave back the file pages used only at start: resident [\d.]+ MiB -> [\d.]+ MiB/);
    // At least 8 MiB of onnxruntime's and Bun's file pages went (on this machine, tens of MiB).
    expect(before.file - after.file).toBeGreaterThan(8 * 1024);
    expect(after.rss).toBeLessThan(before.rss);
    expect(first).toEqual([10.5]);
    expect(again).toEqual(first);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});

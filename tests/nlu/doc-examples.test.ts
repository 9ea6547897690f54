// The examples docs/tools.md gives for each tool ("say, for example") are
// understood as that tool, with a plan and no question back.
import { beforeAll, expect, test } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Understander } from "../../agents/nlu/understand.ts";

const REPO = join(import.meta.dirname, "../..");
const UNITS = ["camera", "nginx", "mqtt-bridge", "demo", "db", "web", "web-ui"];
let nlu: Understander;

beforeAll(async () => {
  const r = Bun.spawnSync([process.execPath, join(REPO, "agents/models/build.ts")], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  nlu = await Understander.load(join(REPO, "out/models"), join(REPO, "out/models"));
}, 180_000);

test("every example in docs/tools.md's table means its tool", async () => {
  const rows = readFileSync(join(REPO, "docs/tools.md"), "utf8").split("\n").filter((l) => /^\| `[a-z_.-]+` \|/.test(l));
  const examples = rows.flatMap((l) => {
    const tool = /^\| `([^`]+)`/.exec(l)![1]!;
    const say = l.split("|").at(-2)!;
    return [...say.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => ({ tool, text: m[1]!.replace(/\\"/g, '"') }));
  });
  expect(examples.length).toBeGreaterThan(25);
  const wrong: string[] = [];
  for (const { tool, text } of examples) {
    const u = await nlu.understand(text, UNITS);
    if (u.intent !== tool || u.clarify) wrong.push(`"${text}": want ${tool}, got ${u.intent} (${u.confidence}${u.clarify ? `, asked: ${u.reply}` : ""})`);
  }
  expect(wrong).toEqual([]);
});

// The embedded language model against the hand-written held-out set
// (tests/nlu/heldout.tsv, written apart from the generator): intent accuracy
// must reach 95% and exact-slot accuracy 90%. Both are printed.
import { beforeAll, expect, test } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Understander } from "../../agents/nlu/understand.ts";

const REPO = join(import.meta.dirname, "../..");
const MODELS = join(REPO, "out/models");
const UNITS = ["camera", "nginx", "mqtt-bridge", "demo", "sensor-hub", "db", "web"];
let nlu: Understander;

beforeAll(async () => {
  const r = Bun.spawnSync([process.execPath, join(REPO, "agents/models/build.ts")], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  nlu = await Understander.load(MODELS, MODELS);
}, 180_000);

test("held-out intent accuracy ≥ 95% and exact-slot accuracy ≥ 90%", async () => {
  const rows = readFileSync(join(import.meta.dirname, "heldout.tsv"), "utf8").split("\n").filter((l) => l.trim() && !l.startsWith("#")).map((l) => l.split("\t"));
  let intentRight = 0;
  let slotsRight = 0;
  const misses: string[] = [];
  for (const [text, intent, slots] of rows) {
    const u = await nlu.understand(text!, UNITS);
    const gotSlots = JSON.stringify(Object.fromEntries(Object.entries(u.slots).sort()));
    const wantSlots = JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(slots!)).sort()));
    if (u.intent === intent) intentRight++;
    if (u.intent === intent && gotSlots === wantSlots && !u.clarify) slotsRight++;
    else misses.push(`  "${text}": want ${intent} ${wantSlots}, got ${u.intent} ${gotSlots} (${u.confidence}${u.clarify ? ", asked to clarify" : ""})`);
  }
  const n = rows.length;
  console.log(`held-out set: intent accuracy ${((100 * intentRight) / n).toFixed(1)}% (${intentRight}/${n}), exact-slot accuracy ${((100 * slotsRight) / n).toFixed(1)}% (${slotsRight}/${n})`);
  if (misses.length) console.log(`misses:\n${misses.join("\n")}`);
  expect(n).toBeGreaterThanOrEqual(200);
  expect(intentRight / n).toBeGreaterThanOrEqual(0.95);
  expect(slotsRight / n).toBeGreaterThanOrEqual(0.9);
});

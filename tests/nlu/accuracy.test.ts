// The embedded language model against the hand-written held-out sets
// (tests/nlu/heldout.tsv, and the blind sets, each written after the
// generator's last change of its time; the overlap test checks all of them are
// apart from the generator).
// Prints intent accuracy, exact-slot accuracy, the figures per intent and the
// confusion of the misses. The goal is 97% intent and 95% exact slots; the
// thresholds below are what the model reaches today, under the goal: a change
// that loses accuracy fails, and one that gains should raise them.
import { beforeAll, expect, test } from "vitest";
import { join } from "node:path";
import { Understander } from "../../agents/nlu/understand.ts";
import { heldOut, SETS, UNITS } from "./heldout-rows.ts";

const REPO = join(import.meta.dirname, "../..");
const MODELS = join(REPO, "out/models");
/** The goal. */
const GOAL = { intent: 0.97, slots: 0.95 };
/**
 * Reached (main set: 337/347 and 336/347; blind set: 125/134 and 123/134;
 * second blind set: 162/167 and 156/167). On 2026-12-07 the rows of these
 * three sets that the generator had learned to write were taken out of them
 * (21 rows, named in each file), so their figures are not comparable with
 * earlier ones. The training is seeded, so these figures repeat exactly.
 */
const MAIN_INTENT = 0.97;
const MAIN_SLOTS = 0.96;
const BLIND_INTENT = 0.93;
const BLIND_SLOTS = 0.91;
const BLIND2_INTENT = 0.96;
const BLIND2_SLOTS = 0.93;
/**
 * The fourth set (heldout-blind-3.tsv), the figure to quote: measured once
 * when it was written, after the generator's last change: 158/167 intents and
 * 157/167 exact slots. One slot miss was a bug in reading the passphrase ("the
 * password being X" took "being"); with it mended, 158/167 and 158/167.
 * Then the generator learned requests that name no unit ("show me the logs",
 * to be asked which unit): the same again, 158/167 and 158/167.
 */
const BLIND3_INTENT = 0.94;
const BLIND3_SLOTS = 0.94;
let nlu: Understander;

beforeAll(async () => {
  const r = Bun.spawnSync([process.execPath, join(REPO, "agents/models/build.ts")], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  nlu = await Understander.load(MODELS, MODELS);
}, 180_000);

const sorted = (o: object) => JSON.stringify(Object.fromEntries(Object.entries(o).sort()));
const pct = (a: number, n: number) => `${((100 * a) / n).toFixed(1)}% (${a}/${n})`;

/** Understands every row of a held-out set; prints the figures, per intent, the confusion and the misses; returns the two accuracies. */
async function measure(file: (typeof SETS)[number]): Promise<{ n: number; intent: number; slots: number }> {
  const rows = heldOut(file);
  let intentRight = 0;
  let slotsRight = 0;
  const misses: string[] = [];
  const per = new Map<string, { n: number; intent: number; slots: number }>();
  const confusion = new Map<string, number>();
  for (const row of rows) {
    const u = await nlu.understand(row.text, UNITS);
    const got = sorted(u.slots);
    const want = sorted(row.slots);
    const p = per.get(row.intent) ?? { n: 0, intent: 0, slots: 0 };
    per.set(row.intent, p);
    p.n++;
    const intentOk = u.intent === row.intent;
    // Exact slots: the right intent, the same slots, and an answer (not a question back).
    const slotsOk = intentOk && got === want && !u.clarify;
    if (intentOk) {
      intentRight++;
      p.intent++;
    } else confusion.set(`${row.intent} → ${u.intent}`, (confusion.get(`${row.intent} → ${u.intent}`) ?? 0) + 1);
    if (slotsOk) {
      slotsRight++;
      p.slots++;
    } else misses.push(`  line ${row.line} "${row.text}": want ${row.intent} ${want}, got ${u.intent} ${got} (${u.confidence}${u.clarify ? ", asked to clarify" : ""})`);
  }
  const n = rows.length;
  const lines = [`${file}: ${n} utterances; intent accuracy ${pct(intentRight, n)}, exact-slot accuracy ${pct(slotsRight, n)} (goal ${GOAL.intent * 100}% and ${GOAL.slots * 100}%)`];
  lines.push("per intent (intent, exact slots):");
  for (const [intent, p] of [...per].sort()) lines.push(`  ${intent.padEnd(18)} ${String(p.n).padStart(3)}  ${pct(p.intent, p.n).padEnd(15)} ${pct(p.slots, p.n)}`);
  if (confusion.size) lines.push("confusion of the intent misses (wanted → got):", ...[...confusion].sort((a, b) => b[1] - a[1]).map(([k, v]) => `  ${v}× ${k}`));
  if (misses.length) lines.push("misses:", ...misses);
  console.log(lines.join("\n"));
  return { n, intent: intentRight / n, slots: slotsRight / n };
}

test(`held-out set: intent accuracy ≥ ${MAIN_INTENT * 100}% and exact-slot accuracy ≥ ${MAIN_SLOTS * 100}%`, async () => {
  const m = await measure("heldout.tsv");
  expect(m.n).toBeGreaterThanOrEqual(250);
  expect(m.intent).toBeGreaterThanOrEqual(MAIN_INTENT);
  expect(m.slots).toBeGreaterThanOrEqual(MAIN_SLOTS);
});

test(`blind held-out set: intent accuracy ≥ ${BLIND_INTENT * 100}% and exact-slot accuracy ≥ ${BLIND_SLOTS * 100}%`, async () => {
  const m = await measure("heldout-blind.tsv");
  expect(m.intent).toBeGreaterThanOrEqual(BLIND_INTENT);
  expect(m.slots).toBeGreaterThanOrEqual(BLIND_SLOTS);
});

test(`second blind held-out set: intent accuracy ≥ ${BLIND2_INTENT * 100}% and exact-slot accuracy ≥ ${BLIND2_SLOTS * 100}%`, async () => {
  const m = await measure("heldout-blind-2.tsv");
  expect(m.n).toBeGreaterThanOrEqual(150);
  expect(m.intent).toBeGreaterThanOrEqual(BLIND2_INTENT);
  expect(m.slots).toBeGreaterThanOrEqual(BLIND2_SLOTS);
});

test(`fourth blind held-out set: intent accuracy ≥ ${BLIND3_INTENT * 100}% and exact-slot accuracy ≥ ${BLIND3_SLOTS * 100}%`, async () => {
  const m = await measure("heldout-blind-3.tsv");
  expect(m.n).toBeGreaterThanOrEqual(150);
  expect(m.intent).toBeGreaterThanOrEqual(BLIND3_INTENT);
  expect(m.slots).toBeGreaterThanOrEqual(BLIND3_SLOTS);
});

// The held-out set must be held out: no row may be something the generator
// can produce, nor a row of the training set. Both sides are brought to one
// form the same way: the Wi-Fi name and passphrase, the unit, numbers (in
// digits or words, with their units of measure left as words), paths and
// URLs become placeholders; words are lower-cased without punctuation; casual
// spellings ("u", "gimme") become the words they stand for; "the camera
// service" is the unit. Every template is expanded in full (every
// alternative, every optional part). A row is the generator's when, after
// undoing what the generator does to an expansion — one typo, a clause of
// context before or after it, up to two filler words, an opening and an
// ending — it equals an expansion. The
// random letters the generator also writes (a gibberish request, or one
// made-up word dropped into a request) are left out: a row matches them only
// by chance. Words of the classes the generator fills in (everyday nouns,
// verbs, adjectives, for requests outside PAIO's reach) count as their class.
import { describe, expect, test } from "vitest";
import { editDistance } from "../../lib/config/toml.ts";
import { CASUAL, CONTEXT, expansions, FILLER_WORDS, INTENTS, NUM, POLITE_PREFIX, POLITE_SUFFIX, TEMPLATES, UNIT, WORD_CLASSES } from "../../agents/nlu/generator.ts";
import { memberSeeds, trainingExamples } from "../../agents/nlu/intent-model.ts";
import { placeholderTokens } from "../../agents/nlu/features.ts";
import { findUnit, numberAt, tokens } from "../../agents/nlu/text.ts";
import { wifiWords } from "../../agents/nlu/wifi.ts";
import { heldOut, SETS, UNITS } from "./heldout-rows.ts";

const PATH = "xpathx";
const FORMAL = new Map(CASUAL.filter(([, c]) => !c.includes(" ")).map(([f, c]) => [c, tokens(f)]));
// A word of a class the generator fills in (NOUN, VERB, ADJ) is that class: the templates hold the class.
const CLASS_OF = new Map(Object.entries(WORD_CLASSES).flatMap(([c, words]) => words.map((w) => [w, c] as const)));

/** The comparable form of an utterance: placeholders for names, numbers, paths; lower-case words. */
function canonical(text: string, units: readonly string[]): string[] {
  const model = wifiWords(text).model.replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+|(?<![\w.])\/[^\s,]*/gi, ` ${PATH} `);
  const t = tokens(model).flatMap((w) => FORMAL.get(w) ?? [w]);
  const p = placeholderTokens(t, findUnit(t, units));
  const out: string[] = [];
  for (let i = 0; i < p.length; i++) {
    const n = numberAt(p, i);
    if (n && p[i] !== "a" && p[i] !== "an") {
      out.push(NUM);
      i += n.used - 1;
    } else out.push(p[i]!);
  }
  // "the xunitx service", "my xunitx": the unit.
  return out.map((w) => CLASS_OF.get(w) ?? w).filter((w, i) => !(["the", "my", "our"].includes(w) && out[i + 1] === UNIT) && !(["service", "unit", "app"].includes(w) && out[i - 1] === UNIT));
}

const key = (words: string[]) => words.join(" ");

// Every expansion of every template, in canonical form, with its intent.
const EXPANDED = new Map<string, string>();
for (const intent of INTENTS) for (const tpl of TEMPLATES[intent]!) for (const e of expansions(tpl)) EXPANDED.set(key(canonical(e, [])), intent);
const PREFIXES = [...new Set(POLITE_PREFIX.map((p) => key(canonical(p, []))))].map((k) => (k ? k.split(" ") : []));
const SUFFIXES = [...new Set(POLITE_SUFFIX.map((s) => key(canonical(s, []))))].map((k) => (k ? k.split(" ") : []));
const FILLERS = new Set(FILLER_WORDS.flatMap((w) => canonical(w, [])));
const CLAUSES = [...new Set(CONTEXT.flatMap((c) => expansions(c)).map((c) => key(canonical(c, []))))].map((k) => k.split(" "));
// Words a typo can reach (longer than three letters): the templates', the wrappers', the fillers'.
const VOCABULARY = [...new Set([...EXPANDED.keys(), ...PREFIXES.map(key), ...SUFFIXES.map(key), ...FILLERS, ...CLAUSES.map(key), ...CLASS_OF.keys()].flatMap((k) => k.split(" ")))].filter((w) => w.length > 3 && !/^x(unit|num|ssid|psk|path|noun|verb|adj)x$/.test(w));
const near = new Map<string, string[]>();
const neighbours = (w: string) => {
  let n = near.get(w);
  if (!n) near.set(w, (n = VOCABULARY.filter((v) => v !== w && Math.abs(v.length - w.length) <= 1 && editDistance(v, w) <= 1)));
  return n;
};

const startsWith = (w: string[], p: string[]) => p.every((x, i) => w[i] === x);
const endsWith = (w: string[], s: string[]) => s.every((x, i) => w[w.length - s.length + i] === x);

/** The template expansion a canonical utterance equals with an opening and an ending taken off: or undefined. */
function unwrapped(words: string[]): string | undefined {
  for (const p of PREFIXES) {
    if (!startsWith(words, p)) continue;
    for (const s of SUFFIXES) {
      if (p.length + s.length > words.length || !endsWith(words, s)) continue;
      const core = key(words.slice(p.length, words.length - s.length));
      if (EXPANDED.has(core)) return core;
    }
  }
  return undefined;
}

/** The words without a clause of context at the start or the end (and as they are). */
function clauseStripped(words: string[]): string[][] {
  const out = [words];
  for (const c of CLAUSES) {
    if (c.length >= words.length) continue;
    if (startsWith(words, c)) out.push(words.slice(c.length));
    if (endsWith(words, c)) out.push(words.slice(0, words.length - c.length));
  }
  return out;
}

/** The same with a clause of context taken off, and up to two filler words taken out. */
function withoutFillers(words: string[]): string | undefined {
  for (const w of clauseStripped(words)) {
    const hit = withoutFillersOnly(w);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

/** The same with up to two filler words taken out. */
function withoutFillersOnly(words: string[]): string | undefined {
  const hit = unwrapped(words);
  if (hit !== undefined) return hit;
  const at = words.flatMap((w, i) => (FILLERS.has(w) ? [i] : []));
  for (const i of at) {
    const one = words.filter((_, k) => k !== i);
    const h1 = unwrapped(one);
    if (h1 !== undefined) return h1;
    for (const j of at) {
      if (j <= i) continue;
      const h2 = unwrapped(words.filter((_, k) => k !== i && k !== j));
      if (h2 !== undefined) return h2;
    }
  }
  return undefined;
}

/** What the generator could have written this as: an expansion, maybe with one typo. */
export function producedBy(words: string[]): string | undefined {
  const exact = withoutFillers(words);
  if (exact !== undefined) return exact;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w.length < 3) continue;
    for (const v of neighbours(w)) {
      const hit = withoutFillers(words.map((x, j) => (j === i ? CLASS_OF.get(v) ?? v : x)));
      if (hit !== undefined) return `${hit} (with the typo '${w}' for '${v}')`;
    }
  }
  return undefined;
}

describe("the held-out sets are held out", () => {
  const rows = SETS.flatMap((f) => heldOut(f));

  test("canonical forms put placeholders in the same way on both sides", () => {
    expect(key(canonical("limit camra to two cores and 1.5 GB please", UNITS))).toBe(`limit ${UNIT} to ${NUM} cores and ${NUM} gb please`);
    expect(key(canonical(`limit ${UNIT} to ${NUM} cores`, []))).toBe(`limit ${UNIT} to ${NUM} cores`);
    expect(key(canonical('join wifi "My Net" password "a b c d e f"', []))).toBe("join wifi xssidx password xpskx");
    expect(key(canonical("install the update from https://example.org/paio.raucb", []))).toBe(`install the update from ${PATH}`);
    expect(key(canonical("install /data/paio-1.2.raucb now", []))).toBe(`install ${PATH} now`);
    // The check itself finds what the generator writes, wrapped and with a typo.
    expect(producedBy(canonical("could you restart the service nginx please", UNITS))).toBeDefined();
    expect(producedBy(canonical("pls restrat nginx now", UNITS))).toBeDefined();
    expect(producedBy(canonical("so could u just restart the nginx service again", UNITS))).toBeDefined();
    expect(producedBy(canonical("restart nginx, no rush", UNITS))).toBeDefined();
    expect(producedBy(canonical("its urgent restart the nginx service", UNITS))).toBeDefined();
    expect(producedBy(canonical("the camera froze, give it a restart", UNITS))).toBeUndefined();
  });

  test("no held-out utterance can be produced by the generator's templates", () => {
    const produced = rows.map((r) => ({ r, by: producedBy(canonical(r.text, UNITS)) })).filter((x) => x.by !== undefined);
    expect(produced.map(({ r, by }) => `${r.file} line ${r.line} "${r.text}" = template expansion "${by}" (${EXPANDED.get(by!.replace(/ \(with the typo.*$/, ""))})`)).toEqual([]);
  });

  test("every row of a unit's tool names its unit (the check above does not undo the generator's leaving a unit unnamed)", () => {
    const unnamed = rows.filter((r) => ["unit.logs", "unit.start", "unit.stop", "unit.restart"].includes(r.intent) && r.slots.unit === undefined);
    expect(unnamed.map((r) => `${r.file} line ${r.line} "${r.text}"`)).toEqual([]);
  });

  test("the held-out set and the training set share no row", () => {
    // The training sets of every network of the model.
    const training = new Set(memberSeeds().flatMap((s) => trainingExamples(s)).map((e) => key(canonical(e.text, []))));
    const shared = rows.filter((r) => training.has(key(canonical(r.text, UNITS))));
    expect(shared.map((r) => `${r.file} line ${r.line} "${r.text}"`)).toEqual([]);
  });

  test("every tool a person can ask for has held-out utterances, and out-of-scope requests are there too", async () => {
    const { PERSON_TOOLS } = await import("../../agents/tools/catalog.ts");
    const main = heldOut();
    const count = new Map<string, number>();
    for (const r of main) count.set(r.intent, (count.get(r.intent) ?? 0) + 1);
    const thin = PERSON_TOOLS.map((t) => t.name).filter((n) => (count.get(n) ?? 0) < (n === "none" ? 30 : 10));
    expect(thin).toEqual([]);
    expect([...count.keys()].filter((i) => !INTENTS.includes(i))).toEqual([]);
    expect(main.length).toBeGreaterThanOrEqual(250);
    const blind = new Set(heldOut("heldout-blind.tsv").map((r) => r.intent));
    expect(PERSON_TOOLS.map((t) => t.name).filter((n) => !blind.has(n))).toEqual([]);
    // No row twice, in one set or across both.
    const seen = new Set<string>();
    expect(rows.filter((r) => seen.size === seen.add(r.text.toLowerCase()).size).map((r) => r.text)).toEqual([]);
  });
});

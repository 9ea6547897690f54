// Configuration files under mutation: 1,000 mutants each of the documented
// unit file, network.toml and policy example (lines dropped, doubled or
// swapped, characters flipped, garbage and control bytes inserted). Each
// mutant is either accepted or refused with an error that starts with the
// file's path; no parser throws anything else, and none takes long.
import { afterAll, describe, expect, test } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { rng } from "../../agents/models/train.ts";
import { mutate as mutateLines } from "../fuzz/mutate.ts";
import { parseUnitFile } from "../../init/supervisor/unit-file.ts";
import { parseNetworkFile } from "../../lib/config/network.ts";
import { parsePolicy, PolicyError } from "../../agents/guard/policy.ts";
import { missed, writeFuzzResult, type FuzzResult } from "../fuzz/results.ts";

const REPO = join(import.meta.dirname, "../..");
const MUTANTS = Number(process.env.PAIO_FUZZ_MUTANTS ?? 1000);
const SEED = Number(process.env.PAIO_FUZZ_SEED ?? 20261129);

/** The first ```toml block of a document after `heading`. */
function example(doc: string, heading: string): string {
  const text = readFileSync(join(REPO, doc), "utf8");
  const from = text.indexOf(heading);
  const m = /```toml\n([\s\S]*?)```/.exec(text.slice(from));
  if (from < 0 || !m) throw new Error(`no toml example under '${heading}' in ${doc}`);
  return m[1]!;
}

const JUNK = ["=", "[", "]]", "\"", "'''", "\\u0000", "\u0000", "\u001b[2J", "\u202e", "#", "{", "}", ",", "\n", "999999999999999999999", "-1", "nan", "inf", "é", "\ud800", "[interface.]", "ports = [0]", "psk = \"\""];

function mutate(text: string, r: () => number): string {
  return mutateLines(text, r, JUNK);
}

type Outcome = "accepted" | "refused";

/** The whole run, for the reliability report: every file's mutants together. */
const tally: FuzzResult = { name: "config", seed: SEED, cases: 0, clients: 1, refused: 0, crashes: 0, hangs: 0, bad: [], ms: 0, notes: {} };
afterAll(() => {
  writeFuzzResult(tally);
});

/** A parse that takes longer than this counts as a hang (a read of a configuration file must never block). */
const HANG_MS = 2000;

function run(name: string, text: string, parse: (t: string) => Outcome, path: string): void {
  test(`${MUTANTS} mutants of the ${name}: accepted or refused naming ${path}, nothing thrown (seed ${SEED})`, () => {
    expect(parse(text)).toBe("accepted"); // the documented example itself is valid
    const t0 = Date.now();
    const r = rng(SEED);
    const counts = { accepted: 0, refused: 0 };
    const bad: string[] = [];
    let slowest = 0;
    for (let i = 0; i < MUTANTS; i++) {
      const m = mutate(text, r);
      const t1 = performance.now();
      try {
        counts[parse(m)]++;
      } catch (e) {
        // A parser that throws (a crash), or an error that does not name the file.
        if (!/^error does not name the file/.test((e as Error).message)) tally.crashes++;
        bad.push(`${name}, mutant ${i}: ${(e as Error).message.split("\n")[0]} -- mutant: ${JSON.stringify(m).slice(0, 300)}`);
      }
      const took = performance.now() - t1;
      if (took > HANG_MS) {
        tally.hangs++;
        bad.push(`${name}, mutant ${i}: parsed in ${took.toFixed(0)} ms`);
      }
      slowest = Math.max(slowest, took);
    }
    tally.cases += MUTANTS;
    tally.refused += counts.refused;
    tally.bad.push(...bad);
    tally.ms += Date.now() - t0;
    tally.notes![`${path} slowest parse ms`] = +slowest.toFixed(1);
    console.log(`${name}: ${MUTANTS} mutants, ${counts.accepted} accepted, ${counts.refused} refused with the file named; slowest parse ${slowest.toFixed(1)} ms`);
    expect(bad, missed({ ...tally, bad })).toEqual([]);
    expect(counts.refused).toBeGreaterThan(MUTANTS / 10);
  });
}

/** A parser's result as an outcome; a refusal must start with the file's path. */
function outcome(path: string, r: { ok: true } | { ok: false; error: string }): Outcome {
  if (r.ok) return "accepted";
  if (!r.error.startsWith(path)) throw new Error(`error does not name the file: ${r.error}`);
  return "refused";
}

describe("configuration fuzzing", () => {
  const UNIT = "/var/lib/paio/units/cam.toml";
  run("unit file example (docs/units.md)", example("docs/units.md", "## Every field"), (t) => outcome(UNIT, parseUnitFile(t, UNIT)), UNIT);

  const NET = "/var/lib/paio/network.toml";
  run("network.toml example (docs/network.md)", example("docs/network.md", "## `network.toml`"), (t) => outcome(NET, parseNetworkFile(t, NET)), NET);

  const POL = "/var/lib/paio/policy.toml";
  run("image's policy.toml", readFileSync(join(REPO, "image/overlay/etc/paio/policy.toml"), "utf8"), (t) => {
    try {
      parsePolicy(t, POL);
      return "accepted";
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      if (!e.message.startsWith(POL)) throw new Error(`error does not name the file: ${e.message}`);
      return "refused";
    }
  }, POL);
});

// Text features for the intent model: word unigrams and bigrams, word stems
// and the character trigrams of each word (so typos still share most
// features), hashed into a fixed-size vector. Unit names, numbers, paths and
// URLs are replaced by placeholders first, so the model never depends on a
// particular name; a word the model never saw in training becomes one
// unknown-word token unless it is a typo or another ending of a word it knows.

import { editDistance } from "../../lib/config/toml.ts";
import { NUM, UNIT, vocabulary } from "./generator.ts";
import { PSK, SSID } from "./wifi.ts";
import { SOURCE } from "./source.ts";

export const FEATURES = 4096;

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Number words that stand for an amount as digits would ("two cores", "last twenty lines"); "a", "one" and "half" stay words. */
const NUMERALS = new Set(["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fifteen", "twenty", "thirty", "forty", "fifty", "hundred", "thousand"]);

/** Tokens with a unit span and numbers (in digits, or number words) replaced by placeholders. */
export function placeholderTokens(t: string[], unitSpan?: { from: number; to: number }): string[] {
  const out: string[] = [];
  for (let i = 0; i < t.length; i++) {
    if (unitSpan && i >= unitSpan.from && i <= unitSpan.to) {
      if (i === unitSpan.from) out.push(UNIT);
      continue;
    }
    const w = t[i]!;
    // An amount: digits with a unit of measure stuck on, a number word, or the generator's placeholder ("xnumx%").
    out.push(/^\d+(\.\d+)?(%|gb|g|mb|m|k|kb|gib|mib)?$/.test(w) || NUMERALS.has(w) || w.startsWith(NUM) ? NUM : w);
  }
  return out;
}

/** A word without its ending: "starting", "started", "starts" → "start"; "stopped" → "stop"; "services" → "service". */
export function stem(w: string): string {
  if (/(ss|us|is)$/.test(w)) return w;
  if (/^.{3,}ies$/.test(w)) return w.slice(0, -3) + "y"; // priorities → priority
  const m = /^(.{3,}?)(ing|ed|es|s|er|ly)$/.exec(w);
  if (!m) return w;
  let s = m[1]!;
  const verb = m[2] === "ed" || m[2] === "ing" || m[2] === "er";
  if (verb && /([bdgmnprt])\1$/.test(s)) s = s.slice(0, -1); // stopped → stop
  else if (m[2] === "es" && !/(s|x|z|ch|sh)$/.test(s)) s += "e"; // services → service
  else if (verb && /[^aeiou][aeiouy][^aeiouwxy]$/.test(s) && s.length <= 4) s += "e"; // timed → time
  return s;
}

/** The features that are set (each to the same value, one over the square root of their count), in ascending order. */
export function featureIndices(words: string[]): number[] {
  const set = new Set<number>();
  const add = (f: string) => {
    set.add(fnv1a(f) % FEATURES);
  };
  words.forEach((w, i) => {
    add(`w:${w}`);
    if (i > 0) add(`b:${words[i - 1]} ${w}`);
    if (w !== UNIT && w !== NUM && w !== SSID && w !== PSK && w !== SOURCE && w !== OOV) {
      const s = stem(w);
      if (s !== w) add(`w:${s}`);
      const padded = `^${w}$`;
      for (let k = 0; k + 3 <= padded.length; k++) add(`c:${padded.slice(k, k + 3)}`);
    }
  });
  return [...set].sort((a, b) => a - b);
}

export function featurize(words: string[]): Float32Array {
  const x = new Float32Array(FEATURES);
  const idx = featureIndices(words);
  for (const i of idx) x[i] = 1 / Math.sqrt(idx.length || 1);
  return x;
}

/** A word the model has not seen in training (nor a typo away from one). */
export const OOV = "xoovx";

/** One letter left out of a word, at each place. */
function deletions(w: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < w.length; i++) out.push(w.slice(0, i) + w.slice(i + 1));
  return out;
}

let index: { stems: Set<string>; byDeletion: Map<string, Set<string>> } | undefined;

/** The vocabulary's stems, and its words of four letters or more by themselves and each of their one-letter deletions. */
function vocabularyIndex(): NonNullable<typeof index> {
  if (index) return index;
  const stems = new Set<string>();
  const byDeletion = new Map<string, Set<string>>();
  for (const k of vocabulary()) {
    stems.add(stem(k));
    if (k.length < 4) continue;
    for (const d of [k, ...deletions(k)]) {
      let s = byDeletion.get(d);
      if (!s) byDeletion.set(d, (s = new Set()));
      s.add(k);
    }
  }
  return (index = { stems, byDeletion });
}

/** The known words one typo (a letter dropped, added, changed or two swapped) from w. */
function typoOf(w: string): string[] {
  const { byDeletion } = vocabularyIndex();
  const out = new Set<string>();
  for (const d of [w, ...deletions(w)]) for (const k of byDeletion.get(d) ?? []) if (editDistance(k, w) <= 1) out.add(k);
  return [...out];
}

/**
 * The word as the model reads it: itself when known (or a placeholder, or
 * another ending of a known word); the known word it is one typo from, when
 * there is exactly one; otherwise the unknown-word token.
 */
export function knownAs(w: string): string {
  if (vocabulary().has(w) || w === UNIT || w === NUM || w === SSID || w === PSK || w === SOURCE || w === OOV) return w;
  if (w.length >= 4) {
    const c = typoOf(w);
    if (c.length === 1) return c[0]!;
    if (c.length > 1) return w;
  }
  return vocabularyIndex().stems.has(stem(w)) ? w : OOV;
}

/** The words the model reads: placeholders for the unit, numbers and words it does not know. */
export function modelWords(t: string[], unitSpan?: { from: number; to: number }): string[] {
  return placeholderTokens(t, unitSpan).map(knownAs);
}

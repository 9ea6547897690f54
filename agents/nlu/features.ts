// Text features for the intent model: word unigrams and bigrams and the
// character trigrams of each word (so typos still share most features),
// hashed into a fixed-size vector. Unit names and digits are replaced by
// placeholders first, so the model never depends on a particular name.

import { NUM, UNIT } from "./generator.ts";
import { PSK, SSID } from "./wifi.ts";

export const FEATURES = 1024;

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

export function featurize(words: string[]): Float32Array {
  const x = new Float32Array(FEATURES);
  const add = (f: string) => {
    x[fnv1a(f) % FEATURES] = 1;
  };
  words.forEach((w, i) => {
    add(`w:${w}`);
    if (i > 0) add(`b:${words[i - 1]} ${w}`);
    if (w !== UNIT && w !== NUM && w !== SSID && w !== PSK) {
      const padded = `^${w}$`;
      for (let k = 0; k + 3 <= padded.length; k++) add(`c:${padded.slice(k, k + 3)}`);
    }
  });
  const n = Math.sqrt(x.reduce((a, v) => a + v, 0)) || 1;
  for (let i = 0; i < FEATURES; i++) x[i] = x[i]! / n;
  return x;
}

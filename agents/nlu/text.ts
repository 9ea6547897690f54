// Words, numbers and names in what a person types: tokens, number words and
// units of measure ("half a cpu", "two cores", "1 GB", "512 megs"), and unit
// names matched against the live unit list with tolerance for typos.

import { editDistance } from "../../lib/config/toml.ts";

export function tokens(text: string): string[] {
  const t = text.toLowerCase().replace(/’/g, "'")
    // Contractions become words: "why'd" = why did, "isn't" = is not, "what's" = what is, "i'm" = i am.
    .replace(/\b(what|who|where|how|it|that|there|here|this|everything|something|nothing|he|she)'s\b/g, "$1 is")
    .replace(/\b(why|how|what|where|who|when)'d\b/g, "$1 did")
    .replace(/\bcan't\b/g, "can not").replace(/\bwon't\b/g, "will not").replace(/n't\b/g, " not")
    .replace(/'re\b/g, " are").replace(/'ve\b/g, " have").replace(/'ll\b/g, " will").replace(/'m\b/g, " am").replace(/'d\b/g, " would");
  // "demo's log" names demo: a possessive 's goes before other apostrophes do.
  return t.replace(/'s\b/g, "").replace(/'/g, "").match(/[a-z0-9][a-z0-9._-]*[a-z0-9%]|[a-z0-9%]/g) ?? [];
}

const NUMBER_WORDS: Record<string, number> = {
  zero: 0, one: 1, a: 1, an: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10,
  eleven: 11, twelve: 12, fifteen: 15, twenty: 20, thirty: 30, forty: 40, fifty: 50, hundred: 100,
  half: 0.5, quarter: 0.25, third: 1 / 3, couple: 2, dozen: 12,
};

/** A number written with digits or words at tokens[i] (and maybe i+1); with how many tokens it took. */
export function numberAt(t: string[], i: number): { value: number; used: number } | undefined {
  const w = t[i];
  if (w === undefined) return undefined;
  const digits = /^(\d+(?:\.\d+)?)(%|gb|g|gib|mb|m|mib|k|kb)?$/.exec(w);
  if (digits) return { value: Number(digits[1]), used: 1 };
  if (w === "a" || w === "an") {
    // "a half", "a quarter", or "a" meaning one before a unit of measure ("a core", "a gig").
    const next = t[i + 1];
    if (next && (next === "half" || next === "quarter" || next === "third")) return { value: NUMBER_WORDS[next]!, used: 2 };
    if (next && /^(cpu|core|gig|gb|gigabyte|mb|meg|megabyte)s?$/.test(next)) return { value: 1, used: 1 };
    return undefined;
  }
  if (w in NUMBER_WORDS) {
    let value = NUMBER_WORDS[w]!;
    let used = 1;
    // "one and a half", "two hundred", "twenty five"
    if (t[i + 1] === "hundred") {
      value *= 100;
      used++;
    } else if (value >= 20 && value < 100 && t[i + 1] && (NUMBER_WORDS[t[i + 1]!] ?? 99) < 10) {
      value += NUMBER_WORDS[t[i + 1]!]!;
      used++;
    }
    if (t[i + used] === "and" && t[i + used + 1] === "a" && t[i + used + 2] === "half") {
      value += 0.5;
      used += 3;
    }
    return { value, used };
  }
  return undefined;
}

export interface Measures {
  /** CPU limit, percent of one core. */
  cpuPercent?: number;
  memoryMb?: number;
  /** A bare number (lines, count, pid). */
  plain: number[];
}

/** Finds CPU and memory amounts and plain numbers: "half a cpu" = 50, "two cores" = 200, "1 GB" = 1024, "30%" = 30. */
export function measures(t: string[]): Measures {
  const out: Measures = { plain: [] };
  for (let i = 0; i < t.length; i++) {
    const n = numberAt(t, i);
    if (!n) continue;
    const raw = t[i]!;
    let j = i + n.used;
    if (t[j] === "of" && (t[j + 1] === "a" || t[j + 1] === "one")) j += 2; // "half of a core"
    else if (t[j] === "a" || t[j] === "one") j += 1; // "half a cpu"
    const unit = t[j] ?? "";
    const suffix = /(%|gb|g|gib|mb|m|mib|k|kb)$/.exec(raw)?.[1];
    const before = { ...out, plain: out.plain.length };
    if (suffix === "%" || unit === "%" || unit === "percent" || unit === "pct") {
      out.cpuPercent = n.value;
      // "75 percent of one core" is 75, not 75 and then one core.
      if (t[j + 1] === "of" && /^(a|one|the)$/.test(t[j + 2] ?? "") && /^(cpus?|cores?|processors?)$/.test(t[j + 3] ?? "")) j += 3;
      else if (t[j + 1] === "of" && /^(cpus?|cores?|processors?)$/.test(t[j + 2] ?? "")) j += 2;
    }
    else if (/^(cpus?|cores?|processors?)$/.test(unit)) out.cpuPercent = Math.round(n.value * 100);
    else if (suffix === "gb" || suffix === "g" || suffix === "gib" || /^(gb|gig|gigs|gigabytes?|gib|g)$/.test(unit)) out.memoryMb = Math.round(n.value * 1024);
    else if (suffix === "mb" || suffix === "m" || suffix === "mib" || /^(mb|megs?|megabytes?|mib|m)$/.test(unit)) out.memoryMb = Math.round(n.value);
    else if (suffix === "k" || suffix === "kb" || /^(kb|kilobytes?)$/.test(unit)) out.memoryMb = Math.max(1, Math.round(n.value / 1024));
    else if (Number.isInteger(n.value) && /^\d/.test(raw)) out.plain.push(n.value);
    else if (Number.isInteger(n.value) && n.value > 1) out.plain.push(n.value);
    // Skip what this amount used: its words, and its unit of measure when it had one.
    const tookUnit = out.cpuPercent !== before.cpuPercent || out.memoryMb !== before.memoryMb;
    i = tookUnit ? j : i + n.used - 1;
  }
  return out;
}


export interface UnitMatch {
  unit: string;
  /** Token positions it covers. */
  from: number;
  to: number;
  distance: number;
  /** Other units just as close: the answer is ambiguous. */
  rivals: string[];
}

/** Words that are never unit names even when one is spelled alike ("stop" vs a unit "stomp"). */
const NOT_UNITS = new Set(["the", "a", "an", "to", "it", "me", "my", "of", "on", "in", "and", "for", "please", "unit", "service", "app", "restart", "start", "stop", "status", "logs", "log", "limit", "kill", "show", "list", "cpu", "memory", "ram", "why", "did", "is", "what", "how", "give", "set", "at", "most", "with", "up", "down", "high", "low", "normal", "mode"]);

/**
 * The unit named in the tokens: exact names first, then names spelled with
 * spaces ("mqtt bridge"), then the closest name within a small edit
 * distance (one edit for short names, two for long ones).
 */
export function findUnit(t: string[], units: readonly string[]): UnitMatch | undefined {
  let best: UnitMatch | undefined;
  const consider = (cand: string, from: number, to: number) => {
    if (NOT_UNITS.has(cand) || /^\d+$/.test(cand)) return;
    const scored = units.map((u) => ({ u, d: editDistance(cand, u.toLowerCase()) })).sort((a, b) => a.d - b.d);
    const top = scored[0];
    if (!top) return;
    const allowed = top.u.length <= 4 ? 0 : top.u.length <= 7 ? 1 : 2;
    if (top.d > allowed) return;
    const rivals = scored.filter((s) => s.u !== top.u && s.d === top.d).map((s) => s.u);
    if (!best || top.d < best.distance || (top.d === best.distance && to - from > best.to - best.from)) best = { unit: top.u, from, to, distance: top.d, rivals };
  };
  for (let i = 0; i < t.length; i++) {
    consider(t[i]!, i, i);
    if (i + 1 < t.length) {
      consider(`${t[i]}-${t[i + 1]}`, i, i + 1);
      consider(`${t[i]}${t[i + 1]}`, i, i + 1);
    }
    if (i + 2 < t.length) consider(`${t[i]}-${t[i + 1]}-${t[i + 2]}`, i, i + 2);
  }
  return best;
}

/** Units within two edits of some word: suggestions when no unit matched closely enough. */
export function nearUnits(t: string[], units: readonly string[]): string[] {
  const out = new Set<string>();
  for (const w of t) {
    if (NOT_UNITS.has(w) || w.length < 3 || /^\d/.test(w)) continue;
    for (const u of units) if (editDistance(w, u.toLowerCase()) <= 2 || u.toLowerCase().startsWith(w)) out.add(u);
  }
  return [...out];
}

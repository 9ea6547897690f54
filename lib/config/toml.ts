// TOML configuration files, one discipline for all of them (units, policy,
// agent, network, provisioning): errors name the file, the line and the field,
// say what is expected, and suggest the known name closest to a typo.

import { parseDuration } from "./measure.ts";

/**
 * Bun's TOML parser reports no line numbers. The first line that cannot be
 * part of a valid document is found by parsing growing prefixes: the error is
 * on the line after the longest prefix that still parses. A construct that
 * spans lines (a multi-line array) makes the prefixes inside it fail, but a
 * later complete prefix parses again, so the answer is still the right line.
 */
export function tomlErrorLine(text: string): number {
  const lines = text.split("\n");
  let lastGood = 0;
  for (let k = 1; k <= lines.length; k++) {
    try {
      Bun.TOML.parse(lines.slice(0, k).join("\n"));
      lastGood = k;
    } catch {
      // this prefix does not parse
    }
  }
  return Math.min(lastGood + 1, lines.length);
}

/** The line where `key` is set, inside `[section]` (or at the top), if it can be found. */
export function fieldLine(text: string, field: string): number | undefined {
  const [section, key] = field.includes(".") ? (field.split(".", 2) as [string, string]) : ["", field];
  const lines = text.split("\n");
  let current = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const header = /^\[\s*([A-Za-z0-9_.-]+)\s*\]/.exec(line);
    if (header) {
      current = header[1]!;
      continue;
    }
    const assign = new RegExp(`^${key}\\s*=`);
    const inline = new RegExp(`^${section}\\s*=.*\\b${key}\\s*=`);
    if ((current === section && assign.test(line)) || (section && current === "" && inline.test(line))) return i + 1;
  }
  return undefined;
}

/** Edit distance with adjacent transpositions (a typo "camrea" is one step from "camera"). */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest known name, if it is close enough to be a typo. */
export function suggest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** Thrown inside the parser; turned into the error text with file and line. */
export class FieldError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

export type Doc = Record<string, unknown>;

export function isTable(v: unknown): v is Doc {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function stringArray(v: unknown, field: string, example: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new FieldError(field, `expected an array of strings, e.g. ${field.split(".").pop()} = ${example}`);
  return v;
}

export function str(v: unknown, field: string): string {
  if (typeof v !== "string") throw new FieldError(field, `expected a string, got ${JSON.stringify(v)}`);
  return v;
}

export function bool(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") throw new FieldError(field, "must be true or false");
  return v;
}

export function duration(v: unknown, field: string): number {
  const ms = typeof v === "string" ? parseDuration(v) : undefined;
  if (ms === undefined) throw new FieldError(field, `expected a duration such as "200ms", "10s", "5m", got ${JSON.stringify(v)}`);
  return ms;
}

export function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new FieldError(field, `expected a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function oneOf<T extends string>(v: unknown, field: string, values: readonly T[]): T {
  if (typeof v !== "string" || !(values as readonly string[]).includes(v)) {
    throw new FieldError(field, `expected one of ${values.map((x) => `"${x}"`).join(", ")}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

export function checkKeys(doc: Doc, known: readonly string[], prefix: string): void {
  for (const key of Object.keys(doc)) {
    if (!known.includes(key)) {
      const hint = suggest(key, known);
      throw new FieldError(prefix + key, `unknown field${hint ? ` (did you mean '${prefix}${hint}'?)` : ""}; known fields${prefix ? ` in [${prefix.slice(0, -1)}]` : ""}: ${known.join(", ")}`);
    }
  }
}


/**
 * Parses a TOML configuration file and builds its value with `build`, which
 * throws FieldError for a wrong field. Every error names the file and, where
 * it can be found (`lineOf`), the line: "PATH line N field 'F': what is expected".
 */
export function parseTomlFile<T>(
  text: string,
  path: string,
  build: (doc: Doc) => T,
  lineOf: (field: string) => number | undefined = (field) => fieldLine(text, field),
): { ok: true; value: T } | { ok: false; error: string } {
  let doc: Doc;
  try {
    doc = Bun.TOML.parse(text) as Doc;
  } catch (e) {
    const msg = (e as Error).message.replace(/^TOML Parse error:\s*/i, "");
    return { ok: false, error: `${path} line ${tomlErrorLine(text)}: not valid TOML: ${msg}` };
  }
  try {
    return { ok: true, value: build(doc) };
  } catch (e) {
    if (!(e instanceof FieldError)) throw e;
    const line = lineOf(e.field);
    return { ok: false, error: `${path}${line ? ` line ${line}` : ""} field '${e.field}': ${e.message}` };
  }
}

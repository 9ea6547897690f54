// Unit files: TOML in /etc/paio/units/ and /var/lib/paio/units/; the unit's
// name is the file name without ".toml". Parsing is a pure function from
// (text, path) to a unit or an error that names the file, the line or field,
// and what is expected.

export type RestartPolicy = "always" | "on-failure" | "never";

export interface Unit {
  name: string;
  path: string;
  description: string;
  exec: string[];
  restart: RestartPolicy;
  env: Record<string, string>;
}

export type ParseResult = { ok: true; unit: Unit } | { ok: false; error: string };

const FIELDS = ["description", "exec", "restart", "env"] as const;
const RESTART_VALUES: RestartPolicy[] = ["always", "on-failure", "never"];
export const UNIT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]*$/;

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

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      dp[i]![j] = Math.min(dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1, dp[i - 1]![j - 1]! + cost);
    }
  }
  return dp[a.length]![b.length]!;
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

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

export function unitNameOf(path: string): string {
  return (path.split("/").pop() ?? path).replace(/\.toml$/, "");
}

export function parseUnitFile(text: string, path: string): ParseResult {
  const fail = (what: string): ParseResult => ({ ok: false, error: `${path} ${what}` });
  const name = unitNameOf(path);
  if (!UNIT_NAME_RE.test(name)) {
    return fail(`: bad unit name '${name}': use letters, digits, '_', '.', '@' and '-', starting with a letter or digit`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = Bun.TOML.parse(text) as Record<string, unknown>;
  } catch (e) {
    const msg = (e as Error).message.replace(/^TOML Parse error:\s*/i, "");
    return fail(`line ${tomlErrorLine(text)}: not valid TOML: ${msg}`);
  }
  for (const key of Object.keys(doc)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      const hint = suggest(key, FIELDS);
      return fail(`field '${key}': unknown field${hint ? ` (did you mean '${hint}'?)` : ""}; known fields: ${FIELDS.join(", ")}`);
    }
  }
  const { description = "", exec, restart = "on-failure", env = {} } = doc;
  if (exec === undefined) return fail(`field 'exec': missing; expected the command as an array of strings, e.g. exec = ["/usr/bin/app", "--flag"]`);
  if (!isStringArray(exec)) return fail(`field 'exec': expected an array of strings, e.g. exec = ["/usr/bin/app", "--flag"]`);
  if (exec.length === 0 || exec[0] === "") return fail(`field 'exec': empty; expected at least the program to run`);
  if (typeof description !== "string") return fail(`field 'description': expected a string`);
  if (typeof restart !== "string" || !(RESTART_VALUES as string[]).includes(restart)) {
    return fail(`field 'restart': expected one of ${RESTART_VALUES.map((v) => `"${v}"`).join(", ")}, got ${JSON.stringify(restart)}`);
  }
  if (typeof env !== "object" || env === null || Array.isArray(env)) return fail(`field 'env': expected a table of strings, e.g. env = { LOG_LEVEL = "info" }`);
  for (const [k, v] of Object.entries(env)) {
    if (typeof v !== "string") return fail(`field 'env.${k}': expected a string, got ${JSON.stringify(v)}`);
  }
  return {
    ok: true,
    unit: { name, path, description, exec, restart: restart as RestartPolicy, env: env as Record<string, string> },
  };
}

// Writes a table of state moves as Promela for a model checked with SPIN.
//
// A table lists states and named moves (the states a move may start from and
// the one it ends in). For each move the output has a guard, can_<p>_<move>,
// true where the table allows the move, and an inline, <p>_<move>(), that
// asserts the guard and makes the move; the hand-written model says when
// each move happens and uses only these. States and moves become numbered
// constants (state 0 is left for "none"). Several tables share this, so
// every generated model reads the same way.

export interface MoveTable {
  /** Short prefix of every name: "u" gives U_RUNNING, UM_STARTED, can_u_started, u_started(). */
  prefix: string;
  /** The Promela variable holding the state, and the one holding the last move. With `param`, both are arrays indexed by it. */
  stateVar: string;
  moveVar: string;
  param?: string;
  states: readonly string[];
  moves: Record<string, { from: readonly string[]; to: string; when: string }>;
}

/** A table name as a Promela identifier part: "exited-failed" -> "exited_failed". */
export function ident(name: string): string {
  return name.replace(/[^A-Za-z0-9]+/g, "_");
}

export function stateConst(t: Pick<MoveTable, "prefix">, state: string): string {
  return `${t.prefix.toUpperCase()}_${ident(state).toUpperCase()}`;
}

export function moveConst(t: Pick<MoveTable, "prefix">, move: string): string {
  return `${t.prefix.toUpperCase()}M_${ident(move).toUpperCase()}`;
}

/** The name of the inline that makes `move`: u_started. */
export function moveInline(t: Pick<MoveTable, "prefix">, move: string): string {
  return `${t.prefix}_${ident(move)}`;
}

/** A comment's text cannot end the comment early. */
function commentText(s: string): string {
  return s.replace(/\*\//g, "* /");
}

export function movesToPromela(t: MoveTable): string {
  const at = (v: string) => (t.param ? `${v}[${t.param}]` : v);
  const args = t.param ? `(${t.param})` : "";
  const inlineArgs = args || "()";
  const out: string[] = [];
  out.push("/* States. */");
  t.states.forEach((s, i) => out.push(`#define ${stateConst(t, s)} ${i + 1}`));
  out.push("", "/* Moves, for the last move made (0: none yet). */");
  Object.keys(t.moves).forEach((m, i) => out.push(`#define ${moveConst(t, m)} ${i + 1}`));
  for (const [m, mv] of Object.entries(t.moves)) {
    for (const s of [...mv.from, mv.to]) if (!t.states.includes(s)) throw new Error(`move ${m} names state '${s}', which is not in the table's states`);
    const guard = mv.from.map((s) => `${at(t.stateVar)} == ${stateConst(t, s)}`).join(" || ");
    out.push(
      "",
      `/* ${m}: ${commentText(mv.when)} (${mv.from.join(", ")} -> ${mv.to}) */`,
      `#define can_${moveInline(t, m)}${args} (${guard})`,
      `inline ${moveInline(t, m)}${inlineArgs} {`,
      `  assert(can_${moveInline(t, m)}${args});`,
      `  ${at(t.stateVar)} = ${stateConst(t, mv.to)};`,
      `  ${at(t.moveVar)} = ${moveConst(t, m)}`,
      "}",
    );
  }
  return out.join("\n") + "\n";
}

/** The header every generated file starts with. */
export function generatedHeader(source: string, generator: string): string {
  return [
    `/* Generated from ${source} by ${generator}; do not edit.`,
    `   Change the table and run: bun ${generator} */`,
    "",
  ].join("\n");
}

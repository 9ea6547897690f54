// Writes incident-states.pml, the Promela form of the incident table
// (../incident-states.ts) and of the ladders the model heals a unit with
// (../ladder.ts), which healing.pml includes. Run it after changing either:
// bun agents/plan/model/generate.ts
// (tests/unit/healing-model.test.ts fails while the file is out of date).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { generatedHeader, ident, movesToPromela } from "../../../lib/model/promela.ts";
import type { FindingClass } from "../../analyze/detect.ts";
import { INCIDENT_MOVES, INCIDENT_STATES } from "../incident-states.ts";
import { LADDERS, rankRemedies, type Remedy } from "../ladder.ts";

export const INCIDENT_STATES_PML = join(fileURLToPath(new URL(".", import.meta.url)), "incident-states.pml");

/** The classes of trouble a unit's failures raise (the model's two signatures: its exits, its health checks). */
export const MODEL_CLASSES = ["crash", "hung", "unhealthy"] as const satisfies readonly FindingClass[];

export function remedyConst(r: Remedy): string {
  return `R_${ident(r).toUpperCase()}`;
}

function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [xs.slice()];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

/**
 * Every order in which the agent may try a class's remedies: what
 * rankRemedies gives for every ranking that learning can produce (each
 * permutation of the ladder, scored best first). The model takes any of them.
 */
export function orders(cls: FindingClass): Remedy[][] {
  const seen = new Map<string, Remedy[]>();
  for (const p of permutations(LADDERS[cls])) {
    const stats = p.map((remedy, i) => ({ remedy, attempts: p.length, successes: p.length - i }));
    const order = rankRemedies(cls, stats).map((o) => o.remedy);
    seen.set(order.join(","), order);
  }
  return [...seen.values()];
}

export function incidentStatesPromela(): string {
  const out: string[] = [
    generatedHeader("agents/plan/incident-states.ts and agents/plan/ladder.ts", "agents/plan/model/generate.ts"),
    "/* Incident k's state (inc[k]; 0: none yet) and the last move made on it (inc_move[k]). */",
    movesToPromela({ prefix: "i", stateVar: "inc", moveVar: "inc_move", param: "k", states: INCIDENT_STATES, moves: INCIDENT_MOVES }),
  ];
  const remedies = [...new Set(MODEL_CLASSES.flatMap((c) => LADDERS[c]))];
  out.push("/* Remedies of the ladders below. */");
  remedies.forEach((r, i) => out.push(`#define ${remedyConst(r)} ${i + 1}`));
  const longest = Math.max(...MODEL_CLASSES.map((c) => LADDERS[c].length));
  out.push("", "/* The longest ladder: incident k's remedies, in the order it tries them, are ladder[k].r[0 .. LADDER_MAX-1]. */", `#define LADDER_MAX ${longest}`);
  MODEL_CLASSES.forEach((c, i) => out.push(`#define C_${ident(c).toUpperCase()} ${i + 1}`));
  for (const c of MODEL_CLASSES) {
    const name = ident(c);
    out.push(
      "",
      `/* ${c}: ${LADDERS[c].join(" -> ")}; learning may reorder all but a final rung that tells or gives up. */`,
      `#define LEN_${name.toUpperCase()} ${LADDERS[c].length}`,
      `inline order_${name}(k) {`,
      "  if",
      ...orders(c).map((o) => `  :: ${o.map((r, i) => `ladder[k].r[${i}] = ${remedyConst(r)}`).join("; ")}`),
      "  fi;",
      `  rungs[k] = LEN_${name.toUpperCase()}`,
      "}",
    );
  }
  return out.join("\n") + "\n";
}

if (import.meta.main) {
  writeFileSync(INCIDENT_STATES_PML, incidentStatesPromela());
  console.log(`wrote ${INCIDENT_STATES_PML}`);
}

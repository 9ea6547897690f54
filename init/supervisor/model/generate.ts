// Writes unit-states.pml, the Promela form of the unit state table
// (../unit-states.ts), which the models in this folder include. Run it after
// changing the table: bun init/supervisor/model/generate.ts
// (tests/unit/healing-model.test.ts fails while the file is out of date).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { generatedHeader, movesToPromela } from "../../../lib/model/promela.ts";
import { UNIT_MOVES, UNIT_STATES } from "../unit-states.ts";

export const UNIT_STATES_PML = join(fileURLToPath(new URL(".", import.meta.url)), "unit-states.pml");

export function unitStatesPromela(): string {
  return (
    generatedHeader("init/supervisor/unit-states.ts", "init/supervisor/model/generate.ts") +
    "/* The unit's state (unit) and the last move it made (unit_move). */\n" +
    movesToPromela({ prefix: "u", stateVar: "unit", moveVar: "unit_move", states: UNIT_STATES, moves: UNIT_MOVES })
  );
}

if (import.meta.main) {
  writeFileSync(UNIT_STATES_PML, unitStatesPromela());
  console.log(`wrote ${UNIT_STATES_PML}`);
}

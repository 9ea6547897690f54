// Dependencies between units: `after` orders start-up, `requires` also ties
// the units' fates (a unit stops when one it requires fails or stops).
// A unit that names a unit that does not exist, or that is part of a
// dependency cycle, is refused; the rest start in dependency order.

import type { Unit } from "./unit-file.ts";

export interface DependencyCheck {
  /** Units that may start, in an order where dependencies come first. */
  order: Unit[];
  /** name -> why it was refused */
  refused: Map<string, string>;
}

function depsOf(u: Unit): string[] {
  return [...new Set([...u.after, ...u.requires])];
}

export function checkDependencies(units: Map<string, Unit>): DependencyCheck {
  const refused = new Map<string, string>();
  // Unknown names first; refusing a unit can strand those that require it, so repeat.
  for (let changed = true; changed; ) {
    changed = false;
    for (const u of units.values()) {
      if (refused.has(u.name)) continue;
      for (const field of ["after", "requires"] as const) {
        for (const dep of u[field]) {
          if (!units.has(dep)) {
            refused.set(u.name, `${u.path} field '${field}': unknown unit '${dep}'; expected the name of a unit file (without .toml)`);
            changed = true;
          } else if (field === "requires" && refused.has(dep)) {
            refused.set(u.name, `${u.path} field 'requires': unit '${dep}' was refused, so '${u.name}' cannot start`);
            changed = true;
          }
        }
        if (refused.has(u.name)) break;
      }
    }
  }
  // Depth-first search for cycles and the start order.
  const order: Unit[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, trail: string[]): boolean => {
    const s = state.get(name);
    if (s === "done") return !refused.has(name);
    if (s === "visiting") {
      const cycle = [...trail.slice(trail.indexOf(name)), name];
      for (const n of cycle) {
        if (!refused.has(n)) refused.set(n, `${units.get(n)!.path}: dependency cycle ${cycle.join(" -> ")}; remove one of these from 'after'/'requires'`);
      }
      return false;
    }
    state.set(name, "visiting");
    const u = units.get(name)!;
    let ok = !refused.has(name);
    for (const dep of depsOf(u)) {
      if (!units.has(dep)) continue;
      const depOk = visit(dep, [...trail, name]);
      if (!depOk && u.requires.includes(dep) && !refused.has(name)) {
        refused.set(name, `${u.path} field 'requires': unit '${dep}' was refused, so '${name}' cannot start`);
      }
    }
    ok = !refused.has(name);
    state.set(name, "done");
    if (ok) order.push(u);
    return ok;
  };
  for (const name of [...units.keys()].sort()) visit(name, []);
  return { order: order.filter((u) => !refused.has(u.name)), refused };
}

/** Names of units that require `name`, directly or not. */
export function dependents(units: Iterable<Unit>, name: string): string[] {
  const all = [...units];
  const out = new Set<string>();
  const queue = [name];
  while (queue.length > 0) {
    const n = queue.shift()!;
    for (const u of all) {
      if (u.requires.includes(n) && !out.has(u.name)) {
        out.add(u.name);
        queue.push(u.name);
      }
    }
  }
  return [...out];
}

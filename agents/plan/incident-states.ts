// An incident's life as one table: every change of an incident's state the
// agent makes is one of these moves, named for what happened. The agent
// (agents/agent/agent.ts) changes states only through it, and the model
// checked with SPIN (model/, see docs/agent.md) is generated from it and from
// the ladders (ladder.ts), so the code and the model cannot drift apart.

import type { Incident } from "../knowledge/store.ts";

export type IncidentState = Incident["state"];

export const INCIDENT_STATES = ["open", "healing", "resolved", "failed", "proposed", "contained"] as const satisfies readonly IncidentState[];

/** States in which the agent has nothing more to do about the incident: it ended, or waits for a person. */
export const ENDED: readonly IncidentState[] = ["resolved", "failed", "proposed", "contained"];

export interface IncidentMove {
  from: readonly IncidentState[];
  to: IncidentState;
  when: string;
}

/** States in which the agent is still working on the incident. */
const WORKING = ["open", "healing"] as const;

export const INCIDENT_MOVES = {
  recorded: { from: ["open"], to: "resolved", when: "the trouble is only recorded and explained (an anomaly), never healed" },
  acted: { from: WORKING, to: "healing", when: "a remedy was carried out; its outcome is judged later" },
  proposed: { from: WORKING, to: "proposed", when: "the guard lets the agent only propose the remedy, or the last rung is telling a person" },
  "gave-up": { from: WORKING, to: "failed", when: "nothing more to try: the rate limit, a unit already failed, no rung left, a remedy that could not be carried out" },
  contained: { from: WORKING, to: "contained", when: "a unit was frozen: hidden, not fixed; a person must look" },
  "marked-failed": { from: WORKING, to: "failed", when: "the last rung stopped the unit and marked it failed" },
  quarantined: { from: WORKING, to: "resolved", when: "a process outside every unit was contained: nothing of the device's own is broken" },
  fixed: { from: ["healing"], to: "resolved", when: "the unit was healthy for the whole outcome window after the remedy" },
  recovered: { from: [...WORKING, "proposed"], to: "resolved", when: "the network or the SoC recovered (the remedy being judged, if any, is credited)" },
} as const satisfies Record<string, IncidentMove>;

export type IncidentMoveName = keyof typeof INCIDENT_MOVES;

/** Whether the table allows `move` from `state`. */
export function incidentMoveAllowed(move: IncidentMoveName, state: IncidentState): boolean {
  return (INCIDENT_MOVES[move].from as readonly IncidentState[]).includes(state);
}

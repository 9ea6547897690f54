// The unit state machine as one table: every change of a unit's state is one
// of these moves, named for what happened. The runner (unit-runner.ts) makes
// its changes only through this table, and the model checked with SPIN
// (model/, see docs/units.md) is generated from it, so the code and the
// model cannot drift apart: a new move needs a row here, and a row here that
// the model never takes fails the model's test.

import type { UnitState } from "../control/protocol.ts";

export const UNIT_STATES = ["inactive", "starting", "running", "degraded", "unhealthy", "stopping", "backoff", "failed"] as const satisfies readonly UnitState[];

/** A move: the states it may start from, the state it ends in, and when it happens, in words. */
export interface UnitMove {
  from: readonly UnitState[];
  to: UnitState;
  when: string;
}

/** States in which no process runs: a start begins from one of these. */
const IDLE = ["inactive", "backoff", "failed"] as const;
/** States with a live process whose end is not asked for. */
const LIVE = ["starting", "running", "degraded"] as const;

export const UNIT_MOVES = {
  "start-limit": { from: IDLE, to: "failed", when: "a start finds burst starts within the start limit's interval already" },
  "no-such-user": { from: IDLE, to: "failed", when: "the unit's user does not exist" },
  started: { from: IDLE, to: "running", when: "the process started and the unit has no health check" },
  "started-checked": { from: IDLE, to: "starting", when: "the process started; its health checks begin after the grace period" },
  adopted: { from: ["inactive"], to: "running", when: "a restarted supervisor takes back a process an earlier one started" },
  "check-passed": { from: ["starting", "degraded"], to: "running", when: "a health check passes" },
  "check-slow": { from: ["starting", "running"], to: "degraded", when: "a check times out while the unit uses CPU: slow, not dead" },
  "checks-failed": { from: LIVE, to: "unhealthy", when: "retries checks in a row failed, or timed out with the unit stopped or idle" },
  stopping: { from: [...LIVE, "unhealthy", "stopping"], to: "stopping", when: "a stop or restart sends the stop signal (an unhealthy unit is restarted so)" },
  stopped: { from: ["stopping"], to: "inactive", when: "the process asked to stop has exited" },
  "stopped-for-restart": { from: ["stopping"], to: "backoff", when: "the process asked to restart has exited; it starts again at once" },
  // A start that fails before the process runs (spawn error) ends like an exit, from the idle state it began in.
  exited: { from: [...LIVE, ...IDLE], to: "backoff", when: "the process exited and the restart policy restarts it after the delay" },
  "exited-failed": { from: [...LIVE, ...IDLE], to: "failed", when: "the process failed and the restart policy does not restart it" },
  "exited-clean": { from: [...LIVE, ...IDLE], to: "inactive", when: "the process exited with status 0 and the restart policy does not restart it" },
  "stopped-idle": { from: ["starting", "backoff", "failed"], to: "inactive", when: "a stop finds no process running (a pending restart is cancelled)" },
  "marked-failed": { from: ["inactive", "failed"], to: "failed", when: "marked failed by request after it stopped; it stays failed until started by hand" },
} as const satisfies Record<string, UnitMove>;

export type UnitMoveName = keyof typeof UNIT_MOVES;

/** Whether the table allows `move` from `state`. */
export function allowedFrom(move: UnitMoveName, state: UnitState): boolean {
  return (UNIT_MOVES[move].from as readonly UnitState[]).includes(state);
}

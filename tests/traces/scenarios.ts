// The scenarios `make traces` records: a booted image running the chaos
// workload (tests/chaos/workload.ts), quiet at first, then faults injected at
// times drawn from the scenario's seed, each followed by a quiet spell. A
// scenario is fixed by its name and seed; the same pair gives the same
// timeline (what the guest does with it is real, so the metrics differ from
// run to run, as they would on a device).

import { rng } from "../../agents/models/train.ts";
import { TRACE_CLASSES, type TraceClass } from "../../agents/models/trace.ts";

export { TRACE_CLASSES, type TraceClass };

export interface PlannedFault {
  class: TraceClass;
  /** Seconds after the trace starts. */
  at: number;
  /** How long the cause lasts (s); the label ends when the system is back or this has passed, whichever is later. */
  holdS: number;
  /** leak: MiB per second; cpu-hog and outside-hog: seconds of spinning. */
  arg?: number;
}

export interface Scenario {
  name: string;
  seed: number;
  /** The classes it draws its faults from. */
  mix: readonly TraceClass[];
  /** How many faults. */
  faults: number;
  /** Quiet seconds before the first fault. */
  quietS: number;
}

/**
 * Every scenario `make traces` can record. Which of them models may be built
 * from and which are kept for evaluation is decided in agents/models/split.ts,
 * apart from this list, by scenario (never by row or window).
 */
export const SCENARIOS: readonly Scenario[] = [
  { name: "leaks-a", seed: 7101, mix: ["leak"], faults: 3, quietS: 60 },
  { name: "leaks-b", seed: 7102, mix: ["leak", "cpu-hog"], faults: 3, quietS: 60 },
  { name: "cpu-a", seed: 7201, mix: ["cpu-hog", "outside-hog"], faults: 3, quietS: 60 },
  { name: "process-a", seed: 7301, mix: ["fork-bomb", "crash", "hung"], faults: 3, quietS: 60 },
  { name: "storage-a", seed: 7401, mix: ["disk-full", "leak"], faults: 3, quietS: 60 },
  { name: "mixed-a", seed: 7501, mix: TRACE_CLASSES, faults: 4, quietS: 60 },
  { name: "mixed-b", seed: 7502, mix: TRACE_CLASSES, faults: 4, quietS: 60 },
  { name: "mixed-c", seed: 7503, mix: TRACE_CLASSES, faults: 4, quietS: 60 },
  /** The short one whose trace is committed (tests/traces/sample/) for the tests. */
  { name: "sample", seed: 7001, mix: ["leak", "outside-hog"], faults: 2, quietS: 30 },
];

/** Hold times and arguments per class, drawn from the scenario's numbers. */
function faultOf(cls: TraceClass, at: number, r: () => number): PlannedFault {
  switch (cls) {
    // 2 to 10 MiB/s into a 96 MiB limit: an OOM kill 8 to 45 s later.
    case "leak":
      return { class: cls, at, holdS: 60, arg: [2, 4, 10][Math.floor(r() * 3)] };
    case "cpu-hog":
      return { class: cls, at, holdS: 30 + Math.floor(r() * 30), arg: 0 };
    case "outside-hog":
      return { class: cls, at, holdS: 30 + Math.floor(r() * 30), arg: 0 };
    case "fork-bomb":
      return { class: cls, at, holdS: 30 };
    case "crash":
      return { class: cls, at, holdS: 20 };
    case "hung":
      return { class: cls, at, holdS: 40 };
    case "disk-full":
      return { class: cls, at, holdS: 15 };
  }
}

/** The scenario's timeline: its faults in order, each after the last one's hold and a quiet spell of 45 to 90 s. */
export function timeline(s: Scenario): PlannedFault[] {
  const r = rng(s.seed);
  const out: PlannedFault[] = [];
  let at = s.quietS;
  for (let i = 0; i < s.faults; i++) {
    const f = faultOf(s.mix[Math.floor(r() * s.mix.length)]!, at, r);
    if (f.class === "cpu-hog" || f.class === "outside-hog") f.arg = f.holdS;
    out.push(f);
    at += f.holdS + 45 + Math.floor(r() * 46);
  }
  return out;
}

/** The trace's length: the last fault's hold and one more quiet spell. */
export function durationS(s: Scenario): number {
  const t = timeline(s);
  const last = t[t.length - 1]!;
  return last.at + last.holdS + 60;
}

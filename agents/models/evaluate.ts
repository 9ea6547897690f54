// The evaluation `make models` prints: the agent's own detector
// (agents/analyze/detect.ts) replayed over held-out traces recorded from the
// image (`make traces`; split by whole scenario in split.ts), once per way of
// deciding (the rule alone, the model alone, both agreeing), with the
// shipped models running in onnxruntime. Per fault class it gives:
//   - recall: labelled faults found while they lasted;
//   - precision: findings that fell inside a fault of their class;
//   - lead time: for a leak, how long before the OOM kill it was found;
//   - false alarms per day: findings during quiet running, scaled to a day.
// And the memory forecast's error against the best simple baseline (the last
// value, or the straight line the rule fits), on the same traces.
//
// The choice follows from the table: a model decides a class only where it
// beats its rule (higher recall at no more false alarms, or as many faults
// found with fewer false alarms); otherwise the rule decides. build.ts
// writes each model's result into the signed manifest, and the agent reads
// its decision from there (agents/agent/models.ts).

import { DEFAULT_DETECTOR, Detector, type Decision, type Finding, type Scorer } from "../analyze/detect.ts";
import { HORIZON, WINDOW, forecastInput, ruleForecast } from "../analyze/forecast.ts";
import { HELD_OUT_SCENARIOS } from "./split.ts";
import { GRACE_MS, ReplayMonitor, columnOf, loadTraces, memoryWindows, quietAt, replayTicks, type Trace, type TraceLabel } from "./trace.ts";

/** The classes whose detector can run on a replay (crash, hung and disk-full come from the supervisor's events; outside-hog scans live processes). */
export const REPLAYED = ["leak", "anomaly", "fork-bomb", "cpu-hog"] as const;
export type ReplayedClass = (typeof REPLAYED)[number];

export interface Score {
  detector: string;
  class: ReplayedClass;
  faults: number;
  found: number;
  findings: number;
  truePositives: number;
  falseAlarms: number;
  quietHours: number;
  recall: number | null;
  precision: number | null;
  falseAlarmsPerDay: number | null;
  medianLeadS: number | null;
}

export interface ForecastScore {
  windows: number;
  maeModel: number | null;
  maeLastValue: number;
  maeLine: number;
  best: "model" | "last value" | "line";
}

export interface Report {
  date: string;
  traces: { scenario: string; seed: number; commit: string; frames: number; labels: number; seconds: number }[];
  scores: Score[];
  forecast: ForecastScore;
  /** Per class with a model, who decides at run time and why. */
  choices: { class: ReplayedClass; uses: Decision; why: string }[];
  /** The classes that have no model: their rule, and where it is measured. */
  rulesOnly: { class: string; why: string }[];
  notReplayed: string;
}

/** Which labels count as faults for a detector class: a leak finding answers a leak; an anomaly answers any fault. */
function labelsFor(cls: ReplayedClass, labels: TraceLabel[]): TraceLabel[] {
  return cls === "anomaly" ? labels : labels.filter((l) => l.class === cls);
}

/** The OOM kill inside a leak label: the first frame where the unit's restart count went up. */
function oomTime(trace: Trace, l: TraceLabel): number | undefined {
  let prev: number | undefined;
  for (const { ts, v } of columnOf(trace, `unit.${l.unit}.restarts`)) {
    if (ts < l.start - 5000) continue;
    if (ts > l.end + GRACE_MS) break;
    if (prev !== undefined && v > prev && ts >= l.start) return ts;
    prev = v;
  }
  return undefined;
}

/** Runs the detector over a trace; every finding of the replayed classes. */
export async function replay(trace: Trace, decide: { leak: Decision; anomaly: Decision }, models: { forecast?: Scorer; anomaly?: Scorer }): Promise<Finding[]> {
  // Live scans (outside processes, ports) read this machine's /proc: off in a replay.
  const det = new Detector({ ...DEFAULT_DETECTOR, outsideScanMs: Infinity, leakDecision: decide.leak, anomalyDecision: decide.anomaly }, models, []);
  const mon = new ReplayMonitor(trace);
  const out: Finding[] = [];
  for (const t of replayTicks(trace)) {
    mon.push(t);
    for (const f of await det.onTick(t, mon.asMonitor())) if ((REPLAYED as readonly string[]).includes(f.class)) out.push(f);
  }
  return out;
}

/** Scores findings of one class against a trace's labels. */
export function scoreTrace(trace: Trace, cls: ReplayedClass, findings: Finding[]): Omit<Score, "detector" | "recall" | "precision" | "falseAlarmsPerDay" | "medianLeadS" | "class"> & { leads: number[] } {
  const faults = labelsFor(cls, trace.labels);
  const mine = findings.filter((f) => f.class === cls);
  const inside = (f: Finding, l: TraceLabel) => f.time >= l.start && f.time <= l.end + GRACE_MS && (cls === "anomaly" || l.unit === null || f.unit === l.unit);
  let found = 0;
  const leads: number[] = [];
  for (const l of faults) {
    const hits = mine.filter((f) => inside(f, l));
    if (hits.length === 0) continue;
    found++;
    if (cls === "leak") {
      const oom = oomTime(trace, l);
      if (oom !== undefined) leads.push((oom - hits[0]!.time) / 1000);
    }
  }
  // Any finding inside some fault (of any class, with its grace) is not a false alarm: the device was not quiet.
  const truePositives = mine.filter((f) => faults.some((l) => inside(f, l))).length;
  const falseAlarms = mine.filter((f) => quietAt(trace, f.time)).length;
  const first = trace.frames[0]?.[0] ?? 0;
  const last = trace.frames.at(-1)?.[0] ?? 0;
  const busyMs = trace.labels.reduce((s, l) => s + (Math.min(last, l.end + GRACE_MS) - Math.max(first, l.start)), 0);
  return { faults: faults.length, found, findings: mine.length, truePositives, falseAlarms, quietHours: Math.max(0, last - first - busyMs) / 3_600_000, leads };
}

const median = (xs: number[]): number | null => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : null);

/** The forecast's mean absolute error 30 s ahead (fraction of memory.max) against the last value and the rule's line. */
export async function scoreForecast(traces: Trace[], forecast?: Scorer): Promise<ForecastScore> {
  // Every fifth second: neighbouring windows share all but a few of their points.
  const rows = traces.flatMap((t) => memoryWindows(t, WINDOW, HORIZON, 5));
  const mae = (pred: number[]) => (rows.length ? pred.reduce((s, p, j) => s + Math.abs(p - rows[j]!.actual), 0) / rows.length : NaN);
  const last = mae(rows.map((r) => r.w.at(-1)!));
  const line = mae(rows.map((r) => Math.max(0, ruleForecast(r.w).predicted)));
  let model: number | null = null;
  if (forecast && rows.length) {
    const p = await forecast.score(rows.map((r) => forecastInput(r.w)));
    if (p) model = mae([...p]);
  }
  const best = model !== null && model < Math.min(last, line) ? "model" : last <= line ? "last value" : "line";
  return { windows: rows.length, maeModel: model, maeLastValue: last, maeLine: line, best };
}

/** The held-out traces (split.ts) found in the given folders, and the names of those not recorded. */
export function heldOutTraces(...dirs: string[]): { traces: Trace[]; missing: string[] } {
  return loadTraces(HELD_OUT_SCENARIOS, dirs);
}

/** Does the candidate beat the rule? More faults found at no more false alarms, or as many with fewer. */
export function beats(candidate: Score, rule: Score): boolean {
  const fa = (s: Score) => s.falseAlarmsPerDay ?? 0;
  const found = (s: Score) => s.found;
  return (found(candidate) > found(rule) && fa(candidate) <= fa(rule)) || (found(candidate) === found(rule) && fa(candidate) < fa(rule));
}

export async function evaluate(traces: Trace[], models: { forecast?: Scorer; anomaly?: Scorer }): Promise<Report> {
  const ways: { name: string; decide: { leak: Decision; anomaly: Decision } }[] = [
    { name: "rule", decide: { leak: "rule", anomaly: "rule" } },
    { name: "model", decide: { leak: "model", anomaly: "model" } },
    { name: "both", decide: { leak: "both", anomaly: "both" } },
  ];
  const scores: Score[] = [];
  for (const way of ways) {
    const perClass = new Map<ReplayedClass, ReturnType<typeof scoreTrace>[]>();
    for (const t of traces) {
      const findings = await replay(t, way.decide, way.name === "rule" ? {} : models);
      for (const cls of REPLAYED) (perClass.get(cls) ?? perClass.set(cls, []).get(cls)!).push(scoreTrace(t, cls, findings));
    }
    for (const cls of REPLAYED) {
      // The rule-only detectors (fork bomb, CPU hog) are the same in every way: listed once, as the rule.
      if (way.name !== "rule" && (cls === "fork-bomb" || cls === "cpu-hog")) continue;
      const xs = perClass.get(cls) ?? [];
      const sum = (k: "faults" | "found" | "findings" | "truePositives" | "falseAlarms" | "quietHours") => xs.reduce((s, x) => s + x[k], 0);
      const faults = sum("faults");
      const findings = sum("findings");
      const quietHours = sum("quietHours");
      scores.push({
        detector: way.name,
        class: cls,
        faults,
        found: sum("found"),
        findings,
        truePositives: sum("truePositives"),
        falseAlarms: sum("falseAlarms"),
        quietHours,
        recall: faults ? sum("found") / faults : null,
        precision: findings ? sum("truePositives") / findings : null,
        falseAlarmsPerDay: quietHours > 0 ? (sum("falseAlarms") / quietHours) * 24 : null,
        medianLeadS: median(xs.flatMap((x) => x.leads)),
      });
    }
  }
  const forecast = await scoreForecast(traces, models.forecast);
  const choices: Report["choices"] = [];
  for (const cls of ["leak", "anomaly"] as const) {
    const rule = scores.find((s) => s.detector === "rule" && s.class === cls)!;
    const cands = scores.filter((s) => s.class === cls && s.detector !== "rule" && (s.detector !== "model" || models[cls === "leak" ? "forecast" : "anomaly"]));
    const winner = cands.filter((c) => beats(c, rule)).sort((a, b) => b.found - a.found || (a.falseAlarmsPerDay ?? 0) - (b.falseAlarmsPerDay ?? 0))[0];
    if (rule.faults === 0) choices.push({ class: cls, uses: "rule", why: "no held-out fault of this class to judge a model on: the rule decides" });
    else if (winner) choices.push({ class: cls, uses: winner.detector as Decision, why: `${winner.detector} found ${winner.found} of ${winner.faults} with ${fmt(winner.falseAlarmsPerDay)} false alarms a day; the rule ${rule.found} with ${fmt(rule.falseAlarmsPerDay)}` });
    else choices.push({ class: cls, uses: "rule", why: `neither the model nor the model and the rule together beat the rule (rule: ${rule.found} of ${rule.faults}, ${fmt(rule.falseAlarmsPerDay)} false alarms a day)` });
  }
  return {
    date: new Date().toISOString(),
    traces: traces.map((t) => ({ scenario: t.scenario, seed: t.seed, commit: t.commit, frames: t.frames.length, labels: t.labels.length, seconds: t.frames.length ? Math.round((t.frames.at(-1)![0]! - t.frames[0]![0]!) / 1000) : 0 })),
    scores,
    forecast,
    choices,
    rulesOnly: RULES_ONLY.map((x) => ({ ...x })),
    notReplayed: "crash, hung and disk-full are found from the supervisor's events and outside-hog by a live process scan: rules only, not replayed here (tests/e2e and make chaos cover them)",
  };
}

/** Classes no model judges: the rule that finds each, and where it is measured. */
const RULES_ONLY: readonly { class: string; why: string }[] = [
  { class: "fork-bomb", why: "no model: the process count growing by 15 a second, or held at 90 % of pids.max (replayed above; make chaos)" },
  { class: "cpu-hog", why: "no model: 70 % of a CPU for 8 s while another unit's health check slows or CPU pressure passes 40 % (replayed above)" },
  { class: "crash", why: "no model: the supervisor's exits, 3 within 60 s, or the unit given up (make chaos: kill-unit, crash-loop)" },
  { class: "hung", why: "no model: the supervisor's health verdicts, twice unhealthy within 5 min (make chaos: hang)" },
  { class: "disk-full", why: "no model: the supervisor and the agent keep answering; nothing to decide (make chaos: disk-full)" },
  { class: "outside-hog", why: "no model: a live scan of /proc, 70 % of a CPU over two scans outside every unit (tests/e2e/agent.test.ts)" },
];

const fmt = (x: number | null, digits = 1): string => (x === null ? "-" : x.toFixed(digits));
const pct = (x: number | null): string => (x === null ? "-" : `${(x * 100).toFixed(0)}%`);

/** The table `make models` prints. */
export function reportTable(r: Report): string {
  const rows = [["class", "decided by", "faults", "found", "recall", "precision", "lead (median)", "false alarms/day"]];
  for (const s of r.scores) rows.push([s.class, s.detector, String(s.faults), String(s.found), pct(s.recall), pct(s.precision), s.medianLeadS === null ? "-" : `${s.medianLeadS.toFixed(0)} s`, fmt(s.falseAlarmsPerDay)]);
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
  const table = rows.map((x) => x.map((c, i) => (i < 2 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  ")).join("\n");
  const f = r.forecast;
  const quiet = r.scores.find((s) => s.detector === "rule" && s.class === "leak")?.quietHours ?? 0;
  return [
    r.traces.length
      ? `held-out traces: ${r.traces.map((t) => `${t.scenario} (${t.seconds} s, ${t.labels} faults)`).join(", ")}; ${(quiet * 60).toFixed(0)} min of quiet running`
      : "held-out traces: none recorded (make traces): no model decides anything; every class is left to its rule",
    table,
    f.windows
      ? `memory forecast, 30 s ahead, ${f.windows} windows: mean error model ${f.maeModel === null ? "-" : f.maeModel.toFixed(4)}, last value ${f.maeLastValue.toFixed(4)}, straight line ${f.maeLine.toFixed(4)} (fraction of memory.max); best: ${f.best}`
      : "memory forecast: no window to score it on",
    ...r.choices.map((c) => `${c.class}: the agent uses ${c.uses === "rule" ? "the rule" : c.uses === "model" ? "the model alone" : "the model and the rule together"}: ${c.why}`),
    ...(r.rulesOnly ?? []).map((c) => `${c.class}: the agent uses the rule: ${c.why}`),
  ].join("\n");
}

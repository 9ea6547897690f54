// Per-device retraining of the anomaly model, and the gate a retrained model
// must pass before it replaces the one in use.
//
// The work runs in a separate process (the agent bundle's `retrain`
// subcommand, started by agents/agent/retrain-job.ts at nice 19 in a cgroup
// of its own): it reads the device's last hours of 1-second frames from the
// knowledge base, splits them BY TIME (the older three quarters to train, the
// newest quarter held out; rows are never shuffled across the cut, so the
// score is that of a model predicting a future it did not see), fits the
// cluster centres on the older part, writes the candidate model to a
// temporary file (fsynced), scores the candidate AND the model in use on the
// same held-out windows with onnxruntime, and prints one JSON report.
//
// The score of a model on held-out windows is its detection rate of injected
// level shifts (a step of 8 standard deviations into a held-out series) minus
// its false-alarm rate on the held-out windows as they are: a model that
// flags everything scores about 0, one that flags nothing scores 0, a good
// one close to 1. The agent (not the worker) decides: the candidate is
// installed — renamed into place and its manifest signed with the device
// key — only when its score is higher than the current model's; otherwise it
// is deleted and the audit log says why, with both scores.

import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { createOwnFile } from "../../lib/own-file.ts";
import { dirname, join } from "node:path";
import type { KeyObject } from "node:crypto";
import * as ort from "onnxruntime-node";
import { DIM, RunningStats, anomalyFeatures, ruleAnomalous } from "../analyze/anomaly.ts";
import type { Frame } from "../knowledge/store.ts";
import { anomalyGraph, fitAnomaly, windowsOf } from "./anomaly-model.ts";
import { sha256, signManifest, type Manifest, type ModelEntry } from "./manifest.ts";
import { encodeModel } from "./onnx.ts";

/** The newest quarter of the history is held out for scoring. */
export const HELD_OUT_FRACTION = 0.25;
/** A held-out level shift: this many standard deviations of the series' changes. */
export const SHIFT_SIGMAS = 8;
/** Shifts injected into each held-out series. */
export const SHIFTS_PER_SERIES = 8;
/** Least history to train on: windows before the cut, and held-out windows after it. */
export const MIN_TRAIN_WINDOWS = 500;
export const MIN_HELD_OUT_WINDOWS = 100;

/** The metrics the anomaly model watches: the system's, not the units' (whose set changes). */
export function watchedSeries(name: string): boolean {
  return name.startsWith("sys.") || name.startsWith("psi.") || name.startsWith("net.") || name.startsWith("disk.");
}

export interface Split {
  /** Each watched metric's values before the cut and from the cut on, in time order. */
  train: number[][];
  heldOut: number[][];
  names: string[];
  cutTs: number;
  fromTs: number;
  toTs: number;
}

/** Splits frames by time: values before `from + (1 - HELD_OUT_FRACTION) * span` train, the rest are held out. */
export function splitByTime(frames: Frame[], heldOutFraction = HELD_OUT_FRACTION): Split | undefined {
  if (frames.length < 2) return undefined;
  const sorted = [...frames].sort((a, b) => a.ts - b.ts);
  const fromTs = sorted[0]!.ts;
  const toTs = sorted[sorted.length - 1]!.ts;
  const cutTs = fromTs + Math.round((1 - heldOutFraction) * (toTs - fromTs));
  const names = [...new Set(sorted.flatMap((f) => Object.keys(f.values)))].filter(watchedSeries).sort();
  const series = (part: Frame[]) => names.map((n) => part.map((f) => f.values[n]).filter((v): v is number => v !== undefined && Number.isFinite(v)));
  return { train: series(sorted.filter((f) => f.ts < cutTs)), heldOut: series(sorted.filter((f) => f.ts >= cutTs)), names, cutTs, fromTs, toTs };
}

export interface HeldOutSet {
  /** Windows of the held-out series as they are: a model should not flag them. */
  normal: Float32Array[];
  /** The window just after an injected level shift: a model should flag it. */
  shifted: Float32Array[];
}

function changeStd(s: number[]): number {
  const d = s.slice(1).map((v, i) => v - s[i]!);
  const mean = d.reduce((a, b) => a + b, 0) / Math.max(1, d.length);
  return Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, d.length - 1));
}

/**
 * The held-out windows, and one shifted window per injected step (at evenly
 * spaced points after the running statistics have settled): the window as
 * the agent would see it at the step, with the statistics of the changes
 * before it. One pass per series.
 */
export function heldOutSet(heldOut: number[][]): HeldOutSet {
  const normal: Float32Array[] = [];
  const shifted: Float32Array[] = [];
  for (const s of heldOut) {
    normal.push(...windowsOf(s));
    if (s.length < 60) continue;
    const step = SHIFT_SIGMAS * Math.max(changeStd(s), 1e-3 * (Math.abs(s[0]!) + 1));
    const at = new Set(Array.from({ length: SHIFTS_PER_SERIES }, (_, j) => 40 + Math.floor(((s.length - 41) * (j + 0.5)) / SHIFTS_PER_SERIES)));
    const st = new RunningStats();
    for (let t = 1; t < s.length; t++) {
      if (at.has(t)) {
        const values = s.slice(Math.max(0, t - DIM), t).concat([s[t]! + step]);
        const withStep = Object.assign(new RunningStats(), st);
        withStep.add(values[values.length - 1]! - s[t - 1]!);
        const x = anomalyFeatures(values, withStep);
        if (x) shifted.push(x);
      }
      st.add(s[t]! - s[t - 1]!);
    }
  }
  return { normal, shifted };
}

export interface Score {
  /** detection_rate - false_alarm_rate, in [-1, 1]: higher is better. */
  score: number;
  false_alarm_rate: number;
  detection_rate: number;
}

export function scoreOf(flagNormal: boolean[], flagShifted: boolean[]): Score {
  const fa = flagNormal.filter(Boolean).length / Math.max(1, flagNormal.length);
  const det = flagShifted.filter(Boolean).length / Math.max(1, flagShifted.length);
  return { score: +(det - fa).toFixed(4), false_alarm_rate: +fa.toFixed(4), detection_rate: +det.toFixed(4) };
}

/** Squared distances from an anomaly model's ONNX bytes, run by onnxruntime (as the agent runs it). */
export async function onnxDistances(bytes: Uint8Array, rows: Float32Array[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const flat = new Float32Array(rows.length * DIM);
    rows.forEach((r, i) => flat.set(r.subarray(0, DIM), i * DIM));
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor("float32", flat, [rows.length, DIM]) });
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** A model's score on a held-out set: flagged when the distance is over its threshold. */
export async function scoreModel(bytes: Uint8Array, threshold: number, set: HeldOutSet): Promise<Score> {
  const d = await onnxDistances(bytes, [...set.normal, ...set.shifted]);
  const flags = Array.from(d, (v) => v > threshold);
  return scoreOf(flags.slice(0, set.normal.length), flags.slice(set.normal.length));
}

/** The rule's score (what answers when no model is in use). */
export function scoreRule(set: HeldOutSet): Score {
  return scoreOf(set.normal.map(ruleAnomalous), set.shifted.map(ruleAnomalous));
}

// --- the worker ----------------------------------------------------------------

/** What the agent asks of the worker (one JSON argument). */
export interface RetrainSpec {
  /** The knowledge base to read the history from. */
  db: string;
  /** Where to write the candidate model (a temporary name in the device's model folder). */
  out: string;
  /** The end of the history to use, ms since the epoch, and how far back. */
  now: number;
  hours: number;
  /** The model in use, scored on the same held-out windows; absent: the rule answers now, and it is scored. */
  current?: { label: string; file: string; sha256: string; threshold: number };
}

export interface RetrainReport {
  ok: true;
  pid: number;
  /** The worker's nice value (the lowest of its threads') and cgroup, as the kernel reports them. */
  nice: number;
  cgroup: string;
  candidate: Score & { file: string; sha256: string; size: number; threshold: number; windows: number; series: number };
  current: Score & { label: string };
  held_out: { from: string; to: string; windows: number; shifts: number };
  train: { from: string; to: string };
  cpu_ms: number;
  wall_ms: number;
  /** The worker's peak resident memory. */
  max_rss_mb: number;
}

export type WorkerResult = RetrainReport | { ok: false; pid: number; reason: string };

/** The lowest nice value among the worker's threads (/proc/self/task/N/stat): 19 only when every thread runs at 19. */
function procNice(): number {
  try {
    return Math.min(...readdirSync("/proc/self/task").map((t) => {
      const stat = readFileSync(`/proc/self/task/${t}/stat`, "utf8");
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
    }));
  } catch {
    return NaN;
  }
}

function procCgroup(): string {
  try {
    return readFileSync("/proc/self/cgroup", "utf8").split("\n").find((l) => l.startsWith("0::"))?.slice(3) ?? "";
  } catch {
    return "";
  }
}

/** Writes bytes and fsyncs them before returning: a power cut leaves the whole file or an ignored temporary. */
export function writeSynced(path: string, bytes: Uint8Array | string): void {
  // Made anew, never written through a link planted under its name (lib/own-file.ts).
  const fd = createOwnFile(path, 0o644);
  try {
    writeSync(fd, typeof bytes === "string" ? Buffer.from(bytes) : bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The worker's job: train on the older history, score candidate and current model on the newer. */
export async function retrainWorker(spec: RetrainSpec, readFrames: (from: number, to: number) => Frame[]): Promise<WorkerResult> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const iso = (t: number) => new Date(t).toISOString();
  const split = splitByTime(readFrames(spec.now - spec.hours * 3600_000, spec.now));
  if (!split) return { ok: false, pid: process.pid, reason: "no history yet" };
  const trainWindows = split.train.flatMap((s) => windowsOf(s));
  const set = heldOutSet(split.heldOut);
  const minutes = Math.round((split.toTs - split.fromTs) / 60_000);
  if (trainWindows.length < MIN_TRAIN_WINDOWS || set.normal.length < MIN_HELD_OUT_WINDOWS) {
    return { ok: false, pid: process.pid, reason: `too little history: ${minutes} min of ${split.names.length} metrics give ${trainWindows.length} windows to train on (at least ${MIN_TRAIN_WINDOWS}) and ${set.normal.length} held out (at least ${MIN_HELD_OUT_WINDOWS})` };
  }
  const { centres, threshold } = fitAnomaly(trainWindows, spec.now % 100000);
  const bytes = encodeModel(anomalyGraph(centres), { purpose: "anomaly distance (retrained on this device)", threshold: String(threshold) });
  writeSynced(spec.out, bytes);
  const candidate = await scoreModel(bytes, threshold, set);
  let current: Score & { label: string };
  if (spec.current) {
    const cur = new Uint8Array(readFileSync(spec.current.file));
    if (sha256(cur) !== spec.current.sha256) throw new Error(`${spec.current.file} changed since it was verified (sha256 differs from its manifest's); not scoring it`);
    current = { label: spec.current.label, ...(await scoreModel(cur, spec.current.threshold, set)) };
  } else {
    current = { label: "the 6-sigma rule (no model in use)", ...scoreRule(set) };
  }
  const used = process.cpuUsage(c0);
  return {
    ok: true,
    pid: process.pid,
    nice: procNice(),
    cgroup: procCgroup(),
    candidate: { ...candidate, file: spec.out, sha256: sha256(bytes), size: bytes.length, threshold, windows: trainWindows.length, series: split.names.length },
    current,
    held_out: { from: iso(split.cutTs), to: iso(split.toTs), windows: set.normal.length, shifts: set.shifted.length },
    train: { from: iso(split.fromTs), to: iso(split.cutTs) },
    cpu_ms: Math.round((used.user + used.system) / 1000),
    wall_ms: Math.round(performance.now() - t0),
    max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

// --- the gate and the installation (in the agent) --------------------------------

export type GateDecision = { install: true; why: string } | { install: false; why: string };

/** The candidate replaces the model in use only when it scores strictly better on the same held-out windows. */
export function gate(r: RetrainReport): GateDecision {
  const both = `candidate ${r.candidate.score.toFixed(3)} (detects ${pct(r.candidate.detection_rate)} of level shifts, false alarms on ${pct(r.candidate.false_alarm_rate)} of windows) against ${r.current.label} ${r.current.score.toFixed(3)} (${pct(r.current.detection_rate)}, ${pct(r.current.false_alarm_rate)}) on ${r.held_out.windows} held-out windows and ${r.held_out.shifts} injected shifts from ${r.held_out.from} to ${r.held_out.to}`;
  if (r.candidate.score > r.current.score) return { install: true, why: `the retrained model scores better: ${both}` };
  return { install: false, why: `the retrained model does not score better, so it is discarded: ${both}` };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/**
 * Installs a candidate that passed the gate into the device's model folder:
 * the model is renamed to a name of its own hash, then a manifest naming it
 * and signed with the device key replaces the old manifest (written, fsynced,
 * renamed), then the previous model file is removed. A power cut at any
 * point leaves a manifest whose model file exists and matches.
 */
export function installCandidate(r: RetrainReport, dir: string, key: KeyObject, now: number, hours: number): Manifest {
  const bytes = new Uint8Array(readFileSync(r.candidate.file));
  if (sha256(bytes) !== r.candidate.sha256) throw new Error(`${r.candidate.file}: its sha256 is not the one the retraining reported; not installed`);
  if (dirname(r.candidate.file) !== dir) throw new Error(`${r.candidate.file} is not in the device's model folder ${dir}; not installed`);
  const file = `anomaly-${r.candidate.sha256.slice(0, 16)}.onnx`;
  renameSync(r.candidate.file, join(dir, file));
  const entry: ModelEntry = {
    name: "anomaly",
    file,
    sha256: r.candidate.sha256,
    size: bytes.length,
    inputs: "as the image's anomaly model",
    outputs: "as the image's anomaly model",
    metrics: {
      windows: r.candidate.windows, series: r.candidate.series, threshold: +r.candidate.threshold.toFixed(4),
      held_out_score: r.candidate.score, held_out_detection_rate: r.candidate.detection_rate, held_out_false_alarm_rate: r.candidate.false_alarm_rate,
      replaced_score: r.current.score,
    },
    training: `retrained on this device from ${hours} h of its own metrics (${r.train.from} to ${r.train.to}), held out ${r.held_out.from} to ${r.held_out.to}`,
    params: { threshold: r.candidate.threshold },
  };
  const manifest = signManifest({ version: 1, created: new Date(now).toISOString(), models: [entry] }, key);
  writeSynced(join(dir, "manifest.json.tmp"), JSON.stringify(manifest, null, 2) + "\n");
  renameSync(join(dir, "manifest.json.tmp"), join(dir, "manifest.json"));
  fsyncDir(dir);
  for (const f of readdirSync(dir)) if (f.startsWith("anomaly") && f.endsWith(".onnx") && f !== file) rmSync(join(dir, f), { force: true });
  return manifest;
}

/** Removes a candidate the gate refused (or a worker's leftover). */
export function discardCandidate(path: string): void {
  if (existsSync(path)) rmSync(path, { force: true });
}

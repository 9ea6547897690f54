#!/usr/bin/env bun
// `make models`: trains PAIO's models from the project's own workload
// generators and the training traces recorded from the image (`make traces`,
// committed in tests/traces/recorded/; agents/models/split.ts says which
// scenarios train and which judge), writes them as ONNX files with a signed manifest into
// out/models/, and does nothing when the training code has not changed.
//
// The signing key lives outside the clone (~/.cache/paio/keys/, created on
// first use); its public half goes next to the models as model-signing.pub
// and into the image under /usr/share/paio/model-keys/ (the read-only root);
// the private key itself never enters the image (tests/image/ checks it).

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { publicPem, sha256, signManifest, signingKey, type ModelEntry } from "./manifest.ts";
import { trainForecast, type TrainedModel } from "./forecast-model.ts";
import { trainAnomaly } from "./anomaly-model.ts";
import { trainIntent } from "../nlu/intent-model.ts";
import { evaluate, heldOutTraces, reportTable, type Report } from "./evaluate.ts";
import { anomalyScorer, forecastScorer } from "../agent/models.ts";
import { Model } from "./runtime.ts";
import { loadTraces, type Trace } from "./trace.ts";
import { TRAIN_SCENARIOS } from "./split.ts";
import * as ort from "onnxruntime-node";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const OUT = process.env.PAIO_MODELS_OUT ?? join(REPO, "out", "models");
const KEY = process.env.PAIO_MODEL_KEY ?? join(process.env.PAIO_CACHE ?? join(homedir(), ".cache", "paio"), "keys", "model-signing.pem");
/** Fixed, so two builds of the same code give the same manifest. */
const CREATED = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 1767225600) * 1000).toISOString();

export interface Trainer {
  name: string;
  file: string;
  train(log: (line: string) => void, traces: readonly Trace[]): TrainedModel & { params?: Record<string, number> };
}

/** Every model PAIO ships. Adding one is one line here (and its training module). */
export const TRAINERS: Trainer[] = [
  { name: "memory-forecast", file: "memory-forecast.onnx", train: (log, traces) => trainForecast(log, 1, traces) },
  {
    name: "anomaly",
    file: "anomaly.onnx",
    train: (log, traces) => {
      const m = trainAnomaly(log, 2, traces);
      return { ...m, params: { threshold: m.threshold } };
    },
  },
  { name: "intent", file: "intent.onnx", train: (log) => trainIntent(log) },
];

/** Traces: the committed short sample, and what `make traces` recorded (committed too; PAIO_TRACES_DIR names another folder). */
const SAMPLE_TRACES = join(REPO, "tests", "traces", "sample");
const TRACES = process.env.PAIO_TRACES_DIR ?? join(REPO, "tests", "traces", "recorded");

function inputsHash(): string {
  const h = createHash("sha256");
  const dirs = [join(REPO, "agents/models"), join(REPO, "agents/analyze"), join(REPO, "agents/nlu"), SAMPLE_TRACES, TRACES];
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).filter((f) => f.endsWith(".ts") || f.endsWith(".json.gz")).sort()) h.update(f).update(readFileSync(join(d, f)));
  }
  h.update(publicPem(signingKey(KEY)));
  return h.digest("hex");
}

async function main(): Promise<void> {
  const log = (line: string) => console.log(`models: ${line}`);
  const stamp = join(OUT, ".inputs");
  const hash = inputsHash();
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === hash && existsSync(join(OUT, "manifest.json"))) {
    log(`up to date (${OUT.replace(REPO, "")}); the last evaluation on held-out traces:`);
    printLast(log);
    return;
  }
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const entries: ModelEntry[] = [];
  // Only the training scenarios: a held-out one never reaches a trainer (split.ts; tests/unit/traces.test.ts).
  const { traces, missing } = loadTraces(TRAIN_SCENARIOS, [SAMPLE_TRACES, TRACES]);
  log(`training traces: ${traces.map((t) => t.scenario).join(", ") || "none"}${missing.length ? ` (not recorded: ${missing.join(", ")}; make traces records them)` : ""}`);
  TRAINERS.forEach((t, i) => {
    const t0 = performance.now();
    log(`[${i + 1}/${TRAINERS.length}] training ${t.name}`);
    const m = t.train(log, traces);
    writeFileSync(join(OUT, t.file), m.bytes);
    entries.push({ name: t.name, file: t.file, sha256: sha256(m.bytes), size: m.bytes.length, inputs: m.inputs, outputs: m.outputs, metrics: m.metrics, training: m.training, params: m.params });
    log(`[${i + 1}/${TRAINERS.length}] ${t.name}: ${m.bytes.length} bytes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });
  // Judge the new models on the held-out traces before they are signed: the manifest says who decides.
  const report = await judge(entries, log);
  const priv = signingKey(KEY);
  const manifest = signManifest({ version: 1, created: CREATED, models: entries }, priv);
  writeFileSync(join(OUT, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  writeFileSync(join(OUT, "model-signing.pub"), publicPem(priv));
  writeFileSync(join(OUT, "report.json"), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(stamp, hash);
  log(`signed manifest with key ${manifest.key_id}; ${entries.length} models in ${OUT.replace(REPO, "")}`);
}

/** Runs the evaluation with the freshly trained models and records its choice in their manifest entries. */
async function judge(entries: ModelEntry[], log: (line: string) => void): Promise<Report> {
  const { traces, missing } = heldOutTraces(SAMPLE_TRACES, TRACES);
  log(`evaluating on ${traces.length} held-out trace(s)${missing.length ? ` (not recorded yet: ${missing.join(", ")}; make traces records them)` : ""}`);
  const session = async (name: string) => {
    const e = entries.find((x) => x.name === name)!;
    return new Model(e, await ort.InferenceSession.create(readFileSync(join(OUT, e.file))), "cpu", "evaluation", Infinity);
  };
  const report = await evaluate(traces, {
    forecast: forecastScorer(await session("memory-forecast")),
    anomaly: anomalyScorer(await session("anomaly")),
  });
  const ids = report.traces.map((t) => `${t.scenario}:${t.seed}`);
  for (const c of report.choices) {
    const e = entries.find((x) => x.name === (c.class === "leak" ? "memory-forecast" : "anomaly"))!;
    e.evaluation = { decides: c.uses, why: c.why, traces: ids };
  }
  for (const line of reportTable(report).split("\n")) log(line);
  return report;
}

/** Prints the last evaluation again (the models are up to date). */
function printLast(log: (line: string) => void): void {
  const file = join(OUT, "report.json");
  if (existsSync(file)) for (const line of reportTable(JSON.parse(readFileSync(file, "utf8")) as Report).split("\n")) log(line);
}

await main();

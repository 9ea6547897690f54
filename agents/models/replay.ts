#!/usr/bin/env bun
// The evaluation table of `make models`, printed again for the models already
// built (out/models/, verified against the public key beside them) on either
// set of recorded traces:
//
//   bun agents/models/replay.ts                 the held-out traces (as make models)
//   bun agents/models/replay.ts --set training  the training traces
//
// The training set is where detector settings are chosen (the leak rule's
// recent line, how many metrics make an anomaly): its table shows what a
// setting did there, and the held-out table whether it holds on traces it
// was not chosen on. Nothing is written.

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DIM } from "../analyze/anomaly.ts";
import { WINDOW } from "../analyze/forecast.ts";
import { anomalyScorer, forecastScorer } from "../agent/models.ts";
import { evaluate, reportTable } from "./evaluate.ts";
import { trustedKeys } from "./manifest.ts";
import { loadModels } from "./runtime.ts";
import { HELD_OUT_SCENARIOS, TRAIN_SCENARIOS } from "./split.ts";
import { loadTraces } from "./trace.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const MODELS = process.env.PAIO_MODELS_OUT ?? join(REPO, "out", "models");
const DIRS = [join(REPO, "tests", "traces", "sample"), process.env.PAIO_TRACES_DIR ?? join(REPO, "tests", "traces", "recorded")];

const argv = process.argv.slice(2);
const set = argv.length === 0 ? "held-out" : argv.length === 2 && argv[0] === "--set" ? argv[1]! : "";
if (set !== "training" && set !== "held-out") {
  console.error("usage: bun agents/models/replay.ts [--set training|held-out]");
  process.exit(2);
}
const training = set === "training";
const names = training ? TRAIN_SCENARIOS : HELD_OUT_SCENARIOS;
const { traces, missing } = loadTraces(names, DIRS);
if (missing.length) console.log(`not recorded: ${missing.join(", ")} (make traces records them)`);
const { models, statuses } = await loadModels(MODELS, trustedKeys([MODELS]), { "memory-forecast": WINDOW, anomaly: DIM });
for (const s of statuses) if (s.state !== "loaded") console.log(`model ${s.name}: ${s.state} (${s.reason}); run make models`);
const forecast = models.get("memory-forecast");
const anomaly = models.get("anomaly");
const report = await evaluate(traces, { forecast: forecast && forecastScorer(forecast), anomaly: anomaly && anomalyScorer(anomaly) });
console.log(`${set} set:`);
const lines = reportTable(report).replace(/^held-out traces:/, "traces:").split("\n");
// Who decides is chosen on the held-out set alone: on the training set the same lines would be a choice made on data the models learned from.
console.log((training ? lines.filter((l) => !/: the agent uses /.test(l)) : lines).join("\n"));
if (training) console.log("who decides each class is chosen on the held-out set only (make models, or this command without --set)");

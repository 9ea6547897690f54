// The agent's models: the memory forecast and the anomaly detector, loaded
// from the image's model directory after their signed manifest and hashes
// check out. Each is wrapped as a Scorer for the detector; a model that is
// missing, refused, failing or slow makes its Scorer answer "undefined", and
// the detector's rule answers instead. Every state and reason is logged.

import { WINDOW } from "../analyze/forecast.ts";
import { DIM } from "../analyze/anomaly.ts";
import type { Decision, Scorer } from "../analyze/detect.ts";
import { devicePublicKey, MODEL_KEYS_DIR, trustedKeys } from "../models/manifest.ts";
import { loadModels, type Model, type ModelStatus } from "../models/runtime.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";

export interface AgentModels {
  forecast?: Scorer;
  anomaly?: Scorer;
  /** Swaps in a retrained anomaly model, loaded from `dir`. */
  replaceAnomaly?(m: Model, dir: string): void;
  /** The anomaly model in use and its file, for scoring it against a retrained one; undefined when the rule answers. */
  anomalyInUse?(): { label: string; file: string; sha256: string; threshold: number } | undefined;
  /** Live states (with inference timings). */
  readonly states: ModelStatus[];
  /** Who decides leaks and anomalies: what the image's models' held-out evaluation chose (the rule where a model did not beat it). */
  decisions?: { leak: Decision; anomaly: Decision };
}

export const MODELS_DIR = process.env.PAIO_MODELS_DIR ?? "/usr/lib/paio/models";
export { MODEL_KEYS_DIR };

/**
 * Where the agent keeps the models it retrained on this device, and the
 * folder (mode 0700) of the device key that signs them. Models and key are
 * in separate folders: nothing in the models folder is ever trusted as a key.
 */
export function deviceModelPaths(stateDir = process.env.PAIO_STATE_DIR ?? "/var/lib/paio"): { dir: string; keysDir: string } {
  return { dir: join(stateDir, "agent", "models"), keysDir: join(stateDir, "agent", "keys") };
}

/**
 * Loads the device's retrained anomaly model; undefined when there is none or
 * it fails. Its manifest must verify against a key of the read-only root or
 * the public half of the device key (derived from the private key in its
 * 0700 folder): a .pub file dropped on the data partition is trusted by no one.
 */
export async function loadDeviceAnomaly(say: (line: string) => void, keysDir = MODEL_KEYS_DIR): Promise<{ scorer: Scorer; status: ModelStatus; model: Model } | undefined> {
  const p = deviceModelPaths();
  if (!existsSync(join(p.dir, "manifest.json"))) return undefined;
  let device;
  try {
    device = devicePublicKey(p.keysDir);
  } catch (e) {
    say(`model anomaly (retrained on this device): the device key cannot be used (${(e as Error).message}); keeping the image's`);
    return undefined;
  }
  const { models, statuses } = await loadModels(p.dir, [...trustedKeys([keysDir]), ...(device ? [device] : [])], { anomaly: DIM });
  const m = models.get("anomaly");
  const scorer = m && anomalyScorer(m);
  if (!m || !scorer) {
    say(`model anomaly (retrained on this device): ${statuses[0]?.state}; keeping the image's (${statuses[0]?.reason})`);
    return undefined;
  }
  say(`model anomaly: using the one retrained on this device (${m.entry.training})`);
  return { scorer, status: m.status(), model: m };
}

/** The anomaly model as the detector uses it: distances with the threshold from its manifest; undefined when the manifest gives none. */
export function anomalyScorer(m: Model): Scorer | undefined {
  const threshold = m.entry.params?.threshold;
  return threshold === undefined ? undefined : { threshold, score: (rows) => m.run(rows, DIM) };
}

export function forecastScorer(m: Model): Scorer {
  return {
    async score(rows) {
      // The model sees each window relative to its newest value and predicts the change.
      const centred = rows.map((r) => r.map((v) => v - r[WINDOW - 1]!));
      const delta = await m.run(centred, WINDOW);
      return delta && Float32Array.from(delta, (d, i) => rows[i]![WINDOW - 1]! + d);
    },
  };
}

export async function loadAgentModels(say: (line: string) => void, dir = MODELS_DIR, keysDir = MODEL_KEYS_DIR): Promise<AgentModels> {
  let loaded;
  try {
    loaded = await loadModels(dir, trustedKeys([keysDir]), { "memory-forecast": WINDOW, anomaly: DIM });
  } catch (e) {
    // onnxruntime itself cannot start (a missing library): every analysis runs on its rule.
    const reason = `onnxruntime unavailable: ${(e as Error).message}`;
    say(`models: ${reason}; using rules`);
    return { states: [{ name: "memory-forecast", state: "rules", reason }, { name: "anomaly", state: "rules", reason }] };
  }
  const { models, statuses } = loaded;
  for (const s of statuses) say(`model ${s.name}: ${s.state === "loaded" ? "loaded" : `${s.state}; using its rule instead`} (${s.reason})`);
  const forecast = models.get("memory-forecast");
  const sources = new Map<string, { dir: string; label: string }>([...models.keys()].map((n) => [n, { dir, label: `the image's ${n} model` }]));
  const device = await loadDeviceAnomaly(say, keysDir);
  if (device) {
    models.set("anomaly", device.model);
    sources.set("anomaly", { dir: deviceModelPaths().dir, label: "the anomaly model retrained on this device" });
  }
  const anomaly = models.get("anomaly");
  const decides = (m: Model | undefined): Decision => m?.entry.evaluation?.decides ?? "rule";
  const decisions = { leak: decides(forecast), anomaly: decides(models.get("anomaly")) };
  for (const [cls, d] of Object.entries(decisions)) say(`${cls} findings: ${d === "rule" ? "the rule decides" : d === "model" ? "the model decides" : "the model and the rule decide together"} (held-out evaluation in the manifest)`);
  const result: AgentModels = {
    decisions,
    forecast: forecast && forecastScorer(forecast),
    anomaly: anomaly && anomalyScorer(anomaly),
    get states() {
      return statuses.map((s) => models.get(s.name)?.status() ?? s);
    },
    anomalyInUse() {
      const m = models.get("anomaly");
      const src = sources.get("anomaly");
      const threshold = m?.entry.params?.threshold;
      if (!m || !src || threshold === undefined || m.state !== "loaded") return undefined;
      return { label: src.label, file: join(src.dir, m.entry.file), sha256: m.entry.sha256, threshold };
    },
    replaceAnomaly(m: Model, from: string) {
      models.set("anomaly", m);
      sources.set("anomaly", { dir: from, label: "the anomaly model retrained on this device" });
      const t = m.entry.params?.threshold;
      result.anomaly = t === undefined ? undefined : { threshold: t, score: (rows: Float32Array[]) => m.run(rows, DIM) };
    },
  };
  return result;
}

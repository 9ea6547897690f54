// The agent's models: the memory forecast and the anomaly detector, loaded
// from the image's model directory after their signed manifest and hashes
// check out. Each is wrapped as a Scorer for the detector; a model that is
// missing, refused, failing or slow makes its Scorer answer "undefined", and
// the detector's rule answers instead. Every state and reason is logged.

import { WINDOW } from "../analyze/forecast.ts";
import { DIM } from "../analyze/anomaly.ts";
import type { Scorer } from "../analyze/detect.ts";
import { trustedKeys } from "../models/manifest.ts";
import { loadModels, type Model, type ModelStatus } from "../models/runtime.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";

export interface AgentModels {
  forecast?: Scorer;
  anomaly?: Scorer;
  /** Swaps in a retrained anomaly model. */
  replaceAnomaly?(m: Model): void;
  /** Live states (with inference timings). */
  readonly states: ModelStatus[];
}

export const MODELS_DIR = process.env.PAIO_MODELS_DIR ?? "/usr/lib/paio/models";
export const MODEL_KEYS_DIR = process.env.PAIO_MODEL_KEYS_DIR ?? "/etc/paio/model-keys";

/** Where the agent keeps models it retrained on this device, and the key that signs them. */
export function deviceModelPaths(stateDir = process.env.PAIO_STATE_DIR ?? "/var/lib/paio"): { dir: string; key: string; keysDir: string } {
  return { dir: join(stateDir, "agent", "models"), key: join(stateDir, "agent", "keys", "device.pem"), keysDir: join(stateDir, "agent", "keys") };
}

/** Loads the device's retrained anomaly model, verified with the device key; undefined when there is none or it fails. */
export async function loadDeviceAnomaly(say: (line: string) => void, keysDir = MODEL_KEYS_DIR): Promise<{ scorer: Scorer; status: ModelStatus; model: Model } | undefined> {
  const p = deviceModelPaths();
  if (!existsSync(join(p.dir, "manifest.json"))) return undefined;
  const { models, statuses } = await loadModels(p.dir, trustedKeys([keysDir, p.keysDir]), { anomaly: DIM });
  const m = models.get("anomaly");
  const threshold = m?.entry.params?.threshold;
  if (!m || threshold === undefined) {
    say(`model anomaly (retrained on this device): ${statuses[0]?.state}; keeping the image's (${statuses[0]?.reason})`);
    return undefined;
  }
  say(`model anomaly: using the one retrained on this device (${m.entry.training})`);
  return { scorer: { threshold, score: (rows) => m.run(rows, DIM) }, status: m.status(), model: m };
}

function forecastScorer(m: Model): Scorer {
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
  const device = await loadDeviceAnomaly(say, keysDir);
  if (device) models.set("anomaly", device.model);
  const anomaly = models.get("anomaly");
  const threshold = anomaly?.entry.params?.threshold;
  const result: AgentModels = {
    forecast: forecast && forecastScorer(forecast),
    anomaly: anomaly && threshold !== undefined ? { threshold, score: (rows) => anomaly.run(rows, DIM) } : undefined,
    get states() {
      return statuses.map((s) => models.get(s.name)?.status() ?? s);
    },
    replaceAnomaly(m: Model) {
      models.set("anomaly", m);
      const t = m.entry.params?.threshold;
      result.anomaly = t === undefined ? undefined : { threshold: t, score: (rows: Float32Array[]) => m.run(rows, DIM) };
    },
  };
  return result;
}

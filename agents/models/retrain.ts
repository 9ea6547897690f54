// Per-device retraining of the anomaly model: the cluster centres of this
// device's own normal metric windows (from the knowledge base's last hours of
// 1-second frames), signed with the device's own key and written beside the
// knowledge base. The agent trusts the device key as well as the image's, so
// the retrained model is verified like any other before it is used.

import { chmodSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Knowledge } from "../knowledge/store.ts";
import { anomalyGraph, fitAnomaly, windowsOf } from "./anomaly-model.ts";
import { publicPem, sha256, signManifest, signingKey, type ModelEntry } from "./manifest.ts";
import { encodeModel } from "./onnx.ts";

export interface RetrainResult {
  windows: number;
  series: number;
  threshold: number;
  cpuMs: number;
  file: string;
}

/** Fits the anomaly model on the last `hours` of history; undefined when there is too little of it. */
export function retrainAnomaly(k: Knowledge, dir: string, keyPath: string, now = Date.now(), hours = 1): RetrainResult | undefined {
  const c0 = process.cpuUsage();
  const frames = k.frames(now - hours * 3600_000, now);
  if (frames.length < 600) return undefined; // ten minutes at least
  const names = [...new Set(frames.flatMap((f) => Object.keys(f.values)))].filter((n) => n.startsWith("sys.") || n.startsWith("psi.") || n.startsWith("net.") || n.startsWith("disk."));
  const windows = names.flatMap((n) => windowsOf(frames.map((f) => f.values[n]).filter((v): v is number => v !== undefined)));
  if (windows.length < 500) return undefined;
  const { centres, threshold } = fitAnomaly(windows, now % 100000);
  const bytes = encodeModel(anomalyGraph(centres), { purpose: "anomaly distance (retrained on this device)", threshold: String(threshold) });
  mkdirSync(dir, { recursive: true });
  const entry: ModelEntry = {
    name: "anomaly",
    file: "anomaly.onnx",
    sha256: sha256(bytes),
    size: bytes.length,
    inputs: "as the image's anomaly model",
    outputs: "as the image's anomaly model",
    metrics: { windows: windows.length, series: names.length, threshold: +threshold.toFixed(4) },
    training: `retrained on this device from ${hours} h of its own metrics`,
    params: { threshold },
  };
  const key = signingKey(keyPath);
  writeFileSync(join(dir, "anomaly.onnx.tmp"), bytes);
  renameSync(join(dir, "anomaly.onnx.tmp"), join(dir, "anomaly.onnx"));
  const manifest = signManifest({ version: 1, created: new Date(now).toISOString(), models: [entry] }, key);
  writeFileSync(join(dir, "manifest.json.tmp"), JSON.stringify(manifest, null, 2) + "\n");
  renameSync(join(dir, "manifest.json.tmp"), join(dir, "manifest.json"));
  const pub = keyPath.replace(/\.pem$/, ".pub");
  writeFileSync(pub, publicPem(key));
  chmodSync(pub, 0o644);
  const used = process.cpuUsage(c0);
  return { windows: windows.length, series: names.length, threshold, cpuMs: (used.user + used.system) / 1000, file: join(dir, "anomaly.onnx") };
}

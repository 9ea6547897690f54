// The agent's models. Until the model runtime is wired in, every analysis runs
// on its rule fallback, and says so.

import type { Scorer } from "../analyze/detect.ts";
import type { ModelState } from "./agent.ts";

export async function loadAgentModels(say: (line: string) => void): Promise<{ forecast?: Scorer; anomaly?: Scorer; states: ModelState[] }> {
  const states: ModelState[] = [
    { name: "memory-forecast", state: "rules", reason: "no model runtime" },
    { name: "anomaly", state: "rules", reason: "no model runtime" },
  ];
  for (const s of states) say(`model ${s.name}: ${s.state} (${s.reason})`);
  return { states };
}

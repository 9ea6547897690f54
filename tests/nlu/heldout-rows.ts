// The hand-written held-out set (tests/nlu/heldout.tsv): utterance, intent, slots.
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The units the held-out utterances name. */
export const UNITS = ["camera", "nginx", "mqtt-bridge", "demo", "sensor-hub", "db", "web"];

export interface HeldOut {
  line: number;
  text: string;
  intent: string;
  slots: Record<string, string | number>;
}

export function heldOut(): HeldOut[] {
  const lines = readFileSync(join(import.meta.dirname, "heldout.tsv"), "utf8").split("\n");
  const rows: HeldOut[] = [];
  lines.forEach((l, i) => {
    if (!l.trim() || l.startsWith("#")) return;
    const f = l.split("\t");
    if (f.length !== 3) throw new Error(`heldout.tsv line ${i + 1}: want 3 tab-separated fields, got ${f.length}`);
    rows.push({ line: i + 1, text: f[0]!, intent: f[1]!, slots: JSON.parse(f[2]!) });
  });
  return rows;
}

// The hand-written held-out sets: utterance, intent, slots. heldout.tsv is the
// main set; heldout-blind.tsv was written after the generator's last change of
// its time, and heldout-blind-2.tsv before the changes of its own commit; no
// generator change was made after seeing how the model does on either.
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The units the held-out utterances name. */
export const UNITS = ["camera", "nginx", "mqtt-bridge", "demo", "sensor-hub", "db", "web"];

export interface HeldOut {
  file: string;
  line: number;
  text: string;
  intent: string;
  slots: Record<string, string | number>;
}

export const SETS = ["heldout.tsv", "heldout-blind.tsv", "heldout-blind-2.tsv", "heldout-blind-3.tsv"] as const;

export function heldOut(file: (typeof SETS)[number] = "heldout.tsv"): HeldOut[] {
  const lines = readFileSync(join(import.meta.dirname, file), "utf8").split("\n");
  const rows: HeldOut[] = [];
  lines.forEach((l, i) => {
    if (!l.trim() || l.startsWith("#")) return;
    const f = l.split("\t");
    if (f.length !== 3) throw new Error(`${file} line ${i + 1}: want 3 tab-separated fields, got ${f.length}`);
    rows.push({ file, line: i + 1, text: f[0]!, intent: f[1]!, slots: JSON.parse(f[2]!) });
  });
  return rows;
}

// Problems of an import of first-boot settings, as incidents: the agent calls
// this when it starts (the import runs before any unit), so `paio incidents`
// lists each bad part until a person fixes the file on the boot partition.
// Each import is reported once (its id is remembered in the knowledge base).

import { readRecord } from "./import.ts";

/** What of the agent's knowledge base this needs. */
export interface IncidentSink {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  openIncident(i: { time: number; unit: string | null; signature: string; class: string; summary: string; state?: "proposed" }): { id: number };
  audit: { append(kind: "incident", unit: string | null, body: Record<string, unknown>, time?: number): unknown };
}

const REPORTED = "provision.reported";

/** Opens an incident for every problem of imports not reported yet; returns how many. Never throws: a failure is said. */
export function reportProvisioningProblems(k: IncidentSink, state = process.env.PAIO_STATE_DIR ?? "/var/lib/paio", say: (line: string) => void = () => {}): number {
  let n = 0;
  try {
    n = report(k, state, Date.now());
  } catch (e) {
    say(`cannot record the problems of the first-boot settings as incidents: ${(e as Error).message}`);
  }
  return n;
}

function report(k: IncidentSink, state: string, now: number): number {
  const record = readRecord(state);
  const last = Number(k.get(REPORTED) ?? 0);
  let n = 0;
  for (const imp of record.imports) {
    if (imp.id <= last) continue;
    for (const p of imp.problems) {
      const signature = `provisioning:${p.part}:${p.file}`;
      const summary = `first-boot settings: ${p.message}`.slice(0, 500);
      const incident = k.openIncident({ time: now, unit: null, signature, class: "provisioning", summary, state: "proposed" });
      k.audit.append("incident", null, {
        incident: incident.id, signature, class: "provisioning", summary, inputs: { source: imp.source, file: p.file, part: p.part, imported_at: imp.time },
        justification: `the first-boot settings in ${p.file} on the boot partition have a problem that a person must fix there (the other settings were applied): ${p.message}`,
      }, now);
      n++;
    }
  }
  const top = record.imports.at(-1)?.id;
  if (top !== undefined && top > last) k.set(REPORTED, String(top));
  return n;
}

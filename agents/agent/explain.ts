// Answers from the knowledge base, for people: the system's state, the
// incident list, and "why?" — told from the audit log, newest first, with the
// audit record numbers so an answer can be checked against the chain.

import type { AuditLog, AuditRecord } from "../knowledge/audit.ts";
import type { Incident, Knowledge } from "../knowledge/store.ts";
import type { Monitor } from "../monitor/monitor.ts";
import { codesText } from "../analyze/detect.ts";
import { terminalLine } from "../terminal-text.ts";

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

export function systemStatusText(mon: Monitor, focus?: string): { reply: string; output: unknown } {
  const t = mon.ticks.latest();
  const s = t?.system ?? {};
  const parts: Record<string, string> = {
    cpu: `CPU ${Math.round(s["sys.cpu_pct"] ?? 0)}% (load ${(s["sys.load1"] ?? 0).toFixed(2)}, pressure ${(s["psi.cpu"] ?? 0).toFixed(0)}%)`,
    memory: `memory ${Math.round(s["sys.mem_pct"] ?? 0)}% used, ${Math.round(s["sys.mem_avail_mb"] ?? 0)} MiB available`,
    disk: s["disk.use_pct"] !== undefined ? `disk ${Math.round(s["disk.use_pct"])}% used` : "disk usage not measured yet",
    network: `network ${(s["net.rx_kbps"] ?? 0).toFixed(1)} KiB/s in, ${(s["net.tx_kbps"] ?? 0).toFixed(1)} KiB/s out`,
    temperature: s["sys.temp_c"] !== undefined ? `SoC temperature ${s["sys.temp_c"].toFixed(0)} °C` : "no thermal sensors",
  };
  const failed = mon.units.filter((u) => u.state === "failed").map((u) => u.name);
  const reply = focus && parts[focus] ? parts[focus] : [parts.cpu, parts.memory, parts.disk, parts.temperature, failed.length ? `failed units: ${failed.join(", ")}` : `${mon.units.length} units, none failed`].join("; ");
  return { reply, output: { ...s, failed_units: failed } };
}

/**
 * One incident a line, and under it what was found (exit codes, the unit's
 * last log line, quoted: it is data) and what the agent did about it, or why
 * it did nothing.
 */
export function incidentsText(k: Knowledge, limit = 10): { reply: string; output: unknown } {
  const list = k.incidents(limit);
  if (list.length === 0) return { reply: "no incidents so far", output: [] };
  const lines = list.map((i) => [`#${i.id} ${clock(i.time)} ${i.unit ?? "system"}: ${i.summary} [${i.state}]`, ...incidentNotes(i)].join("\n"));
  return { reply: lines.join("\n"), output: list };
}

/** The lines under an incident: its exit codes and the unit's last log line (quoted: it is data), and the agent's decision. */
export function incidentNotes(i: Pick<Incident, "details" | "decision">): string[] {
  const out: string[] = [];
  const codes = i.details?.exit_codes ?? [];
  const last = i.details?.log?.filter((l) => l !== "").at(-1);
  const facts = [codes.length ? `exit codes: ${codesText(codes)}` : "", last !== undefined ? `last log line: "${last}"` : ""].filter(Boolean);
  if (facts.length) out.push(`    ${facts.join("; ")}`);
  if (i.decision) out.push(`    agent: ${i.decision}`);
  return out;
}

/** Lines with runs of the same line counted: a unit that fails at every start writes the same line each time. */
function repeats(lines: string[]): { line: string; n: number }[] {
  const out: { line: string; n: number }[] = [];
  for (const line of lines) {
    const last = out[out.length - 1];
    if (last?.line === line) last.n++;
    else out.push({ line, n: 1 });
  }
  return out;
}

/** One line per audit record, for `paio why` and incident.explain. */
export function describeRecord(r: AuditRecord): string {
  const b = r.body as Record<string, unknown>;
  // Summaries, justifications, results and log lines carry data (unit names,
  // a unit's own output): no control character of theirs reaches a terminal,
  // and the only line breaks are the ones put here.
  const j = typeof b.justification === "string" ? terminalLine(b.justification) : "";
  switch (r.kind) {
    case "incident": {
      const codes = Array.isArray(b.exit_codes) && b.exit_codes.length ? ` Exit codes: ${codesText(b.exit_codes as (number | string)[])}.` : "";
      // The unit's own words are data: quoted, never read as instructions.
      const log = repeats(Array.isArray(b.log) ? (b.log as unknown[]).filter((l): l is string => typeof l === "string" && l !== "").map(terminalLine) : []).slice(-3);
      return `${clock(r.time)} [audit #${r.seq}] noticed: ${terminalLine(String(b.summary ?? ""))}${codes ? `.${codes}` : ""}${log.map(({ line, n }) => `\n    log: "${line}"${n > 1 ? ` (${n} times)` : ""}`).join("")}`;
    }
    case "decision": {
      // A decision with nothing to carry out is the agent saying why it did nothing (more).
      const what = b.executed !== false ? "acted" : Array.isArray(b.action) && b.action.length === 0 ? "did nothing" : "proposed";
      return `${clock(r.time)} [audit #${r.seq}] ${what}: ${j}${b.result ? ` Result: ${terminalLine(String(b.result))}.` : ""}`;
    }
    case "outcome":
      return `${clock(r.time)} [audit #${r.seq}] outcome: ${j}`;
    case "call": {
      // "did what a person asked ("restart demo"): restarted demo; risk 'low' needs no confirmation."
      const rule = typeof (b.policy as { rule?: unknown } | undefined)?.rule === "string" ? terminalLine((b.policy as { rule: string }).rule) : "";
      if (!b.executed || !rule) return `${clock(r.time)} [audit #${r.seq}] ${b.executed ? "did what a person asked" : "refused a request"}: ${j}${b.result ? ` Result: ${terminalLine(String(b.result))}.` : ""}`;
      const asked = typeof b.utterance === "string" && b.utterance ? ` ("${terminalLine(b.utterance.slice(0, 200))}")` : "";
      const result = b.result ? terminalLine(String(b.result)).replace(/\.$/, "") : "done";
      return `${clock(r.time)} [audit #${r.seq}] did what a person asked${asked}: ${result}; ${rule}.`;
    }
    case "update":
      return `${clock(r.time)} [audit #${r.seq}] update: ${j}${typeof b.incident === "number" ? ` (incident #${b.incident})` : ""}`;
    default:
      return `${clock(r.time)} [audit #${r.seq}] ${r.kind}: ${j}`;
  }
}

export function explainUnit(k: Knowledge, unit?: string, limit = 8): { reply: string; output: unknown } {
  const records = k.audit.recent(limit, unit, ["incident", "decision", "outcome", "call"]);
  if (records.length === 0) {
    return { reply: unit ? `I have taken no decision about ${unit}, and no one asked me to change it.` : "I have taken no decisions yet.", output: [] };
  }
  const lines = records.reverse().map(describeRecord);
  return { reply: `${unit ? `What happened to ${unit}` : "My latest decisions"}, oldest first:\n${lines.join("\n")}`, output: records };
}

/** The audit records about updates, newest first: the update journal's events as the agent read them, and the update tools a person ran. */
export function updateRecords(audit: AuditLog, limit = 20): AuditRecord[] {
  return audit.recent(limit, undefined, ["update", "call"], "update.");
}

function when(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

/**
 * One line per update record, for `paio why update`: when it happened (the
 * journal's time for an event), what happened and why, in the journal's
 * words, with the audit record's number.
 */
export function describeUpdateRecord(r: AuditRecord): string {
  const b = r.body as Record<string, unknown>;
  if (r.kind === "update") {
    const ev = b.event as { kind?: string; at?: number } | undefined;
    const at = typeof ev?.at === "number" && ev.at > 0 ? ev.at : r.time;
    return `${when(at)} [audit #${r.seq}] ${terminalLine(String(ev?.kind ?? "update"))}: ${terminalLine(String(b.justification ?? ""))}${typeof b.incident === "number" ? ` (incident #${b.incident})` : ""}`;
  }
  const call = b.call as { tool?: string; args?: Record<string, unknown> } | undefined;
  const asked = call?.tool === "update.install" ? `install the update from ${call.args?.source}` : call?.tool === "update.rollback" ? "go back to the other slot's version" : `see the update status`;
  const result = !b.executed ? `; refused: ${String(b.justification).replace(/^refused: /, "")}.` : b.ok === false ? `; it failed: ${b.result}` : `: ${b.result}`;
  return terminalLine(`${when(r.time)} [audit #${r.seq}] a person asked to ${asked}${result}`);
}

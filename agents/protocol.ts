// The agent's socket protocol: JSON lines over /run/paio/agent.sock, the same
// framing as the supervisor's control socket. The console and `paio ask` send
// tool calls here; the agent validates them against the catalog, asks the
// guard, executes through the supervisor, and writes the decision to the
// audit log. One request line gets one response line with the same id;
// `subscribe` turns the connection into a feed of agent events.

import type { Args, ToolName } from "./tools/catalog.ts";

export const AGENT_SOCKET = "/run/paio/agent.sock";
export const MAX_AGENT_REQUEST_BYTES = 64 * 1024;

export type Mode = "auto" | "advise" | "off";

export type AgentRequest =
  /**
   * Run a tool for a person. A change that the policy says needs a person's
   * confirmation comes back as "needs-confirmation" until the same call is
   * sent again with confirmed: true.
   */
  | { id?: string | number; op: "call"; tool: ToolName; args: Args; confirmed?: boolean; utterance?: string; origin?: "person" | "llm" }
  /** Mode, health summary, which scheduling interface is in use. */
  | { id?: string | number; op: "status" }
  /** A stream of AgentEvent lines. */
  | { id?: string | number; op: "subscribe" };

export type CallStatus = "done" | "needs-confirmation" | "refused" | "failed";

export interface CallResult {
  status: CallStatus;
  /** What a person reads: the answer, or why it was refused, or what confirming will do. */
  reply: string;
  /** Structured output of read tools (unit list, status, log lines, incidents). */
  output?: unknown;
  /** The audit record that holds this decision. */
  audit_seq?: number;
}

export interface AgentStatus {
  mode: Mode;
  health: "ok" | "degraded" | "failing";
  cpu_percent: number;
  memory_percent: number;
  temperature_c?: number;
  failed_units: string[];
  /** The scheduling tier: "task-latency-nice" (per-task hint), "cgroup-latency-nice" (cpu.latency.nice only) or "stock". */
  scheduling: string;
  models: { name: string; state: "loaded" | "refused" | "missing" | "rules"; reason?: string; p50_ms?: number; p99_ms?: number; calls?: number; backend?: string; decides?: "rule" | "model" | "both"; decidesWhy?: string }[];
  /** The agent's own CPU use over the last minute, percent of one core, and its budget. */
  agent_cpu_percent: number;
  cpu_budget_percent: number;
  /** The current tick: longer than configured while the agent is over its budget. */
  tick_ms: number;
  /** CPU time per tick, ms (moving averages): between ticks, the monitor's sampling, the detectors, and the rest of the tick. */
  tick_cpu_ms?: { between: number; monitor: number; detect: number; rest: number };
  /** The SoC: its temperature against the threshold, throttling, and the units whose CPU limit the agent lowered for the heat. */
  soc?: {
    state: "ok" | "hot" | "cooling" | "unknown";
    temperature_c?: number;
    zone?: string;
    threshold_c?: number;
    threshold_from?: string;
    throttled?: boolean;
    throttle_reason?: string;
    text: string;
    capped_units: string[];
  };
  /** The knowledge base: its file, or "memory" when the file was refused (a newer PAIO version's, say; `reason` says why and what to do): then nothing is remembered across a restart. */
  knowledge?: { state: "file" | "memory"; path: string; schema?: number; reason?: string };
}

export interface AgentEvent {
  /** "update": an event of the update journal; "progress": how far a long call (an update's install) has got. */
  event: "incident" | "action" | "proposal" | "outcome" | "mode" | "update" | "progress";
  time: number;
  unit?: string;
  /** One line a person reads in the console feed. */
  text: string;
  audit_seq?: number;
}

export type AgentResponse =
  | { id?: string | number; ok: true; result: unknown }
  | { id?: string | number; ok: false; error: { code: "bad-request" | "too-large" | "not-permitted" | "failed"; message: string } };

export function validateAgentRequest(v: unknown): { ok: true; req: AgentRequest } | { ok: false; message: string } {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { ok: false, message: "a request is a JSON object with an 'op' field" };
  const r = v as Record<string, unknown>;
  if (r.id !== undefined && typeof r.id !== "string" && typeof r.id !== "number") return { ok: false, message: "'id' must be a string or a number" };
  if (r.op === "status" || r.op === "subscribe") return { ok: true, req: r as unknown as AgentRequest };
  if (r.op !== "call") return { ok: false, message: "'op' must be one of call, status, subscribe" };
  if (typeof r.tool !== "string") return { ok: false, message: "'call' needs 'tool', a tool name" };
  if (r.args !== undefined && (typeof r.args !== "object" || r.args === null || Array.isArray(r.args))) return { ok: false, message: "'args' must be an object" };
  if (r.confirmed !== undefined && typeof r.confirmed !== "boolean") return { ok: false, message: "'confirmed' must be true or false" };
  if (r.origin !== undefined && r.origin !== "person" && r.origin !== "llm") return { ok: false, message: "'origin' must be 'person' or 'llm'" };
  if (r.utterance !== undefined && (typeof r.utterance !== "string" || r.utterance.length > 2000)) return { ok: false, message: "'utterance' must be a string of at most 2000 characters" };
  return { ok: true, req: { ...(r as unknown as AgentRequest), args: (r.args ?? {}) as Args } as AgentRequest };
}

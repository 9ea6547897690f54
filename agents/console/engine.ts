// The console's engine: what happens when a person types a line. The
// embedded language model turns the line into a tool call; the agent runs it
// through the guard (and asks for a confirmation when the guard says so);
// the reply and any output come back as lines of text to show. Text from
// data (log lines, explanations) is only ever shown, never understood.

import type { AgentEvent, AgentRequest, AgentResponse, AgentStatus, CallResult } from "../protocol.ts";
import type { ControlClient } from "../../init/control/client.ts";
import type { UnitSummary } from "../../init/control/protocol.ts";
import type { Understander } from "../nlu/understand.ts";
import { describeCall, type Args } from "../tools/catalog.ts";
import type { LlmBackend } from "../nlu/llm.ts";
import { maskSecrets } from "../nlu/wifi.ts";

export interface StatusLine {
  health: string;
  cpu: number;
  memory: number;
  temperature?: number;
  failed: string[];
  mode: string;
  /** How often the agent samples, ms: its figures are not newer between two ticks. */
  tickMs?: number;
}

export interface Reply {
  /** Lines to add to the transcript. */
  lines: string[];
  /** Set when the next answer must be yes or no. */
  confirm?: string;
}

export interface Engine {
  status(): Promise<StatusLine>;
  onEvent(fn: (e: AgentEvent) => void): () => void;
  submit(text: string): Promise<Reply>;
  answer(yes: boolean): Promise<Reply>;
}

type AgentClient = ControlClient<AgentRequest, AgentResponse>;

export interface EngineDeps {
  understander: Understander;
  /** Opens a connection to the agent (it may be down; then reads go to the supervisor). */
  agent: () => Promise<AgentClient>;
  units: () => Promise<UnitSummary[]>;
  /** The optional language-model backend, for requests the embedded model cannot place. */
  llm?: LlmBackend;
}

/** Output of a tool as transcript lines: data is indented and never interpreted. */
function outputLines(tool: string, output: unknown): string[] {
  if (!output || typeof output !== "object") return [];
  if (tool === "unit.logs" && Array.isArray((output as { lines?: unknown }).lines)) return ((output as { lines: string[] }).lines).map((l) => `  | ${l}`);
  if (tool === "process.top" && Array.isArray(output)) return (output as { pid: number; comm: string; cpuPercent: number; rssMb: number }[]).map((p) => `  ${String(p.pid).padStart(6)} ${p.comm.slice(0, 20).padEnd(20)} ${p.cpuPercent.toFixed(0).padStart(4)}% CPU ${p.rssMb.toFixed(0).padStart(6)} MiB`);
  return [];
}

export class AgentEngine implements Engine {
  private client: AgentClient | undefined;
  private pending: { tool: string; args: Args; utterance: string; origin: "person" | "llm" } | undefined;
  private listeners = new Set<(e: AgentEvent) => void>();
  private subscribed = false;

  constructor(private deps: EngineDeps) {}

  private async agent(): Promise<AgentClient> {
    if (this.client) return this.client;
    const c = await this.deps.agent();
    c.onClosed(() => {
      if (this.client === c) this.client = undefined;
      this.subscribed = false;
    });
    this.client = c;
    return c;
  }

  private async subscribe(): Promise<void> {
    if (this.subscribed || this.listeners.size === 0) return;
    // A separate connection: the event stream must not mix with answers.
    const c = await this.deps.agent();
    c.onEvent((e) => {
      for (const fn of this.listeners) fn(e as unknown as AgentEvent);
    });
    c.onClosed(() => (this.subscribed = false));
    const r = await c.request({ op: "subscribe" });
    this.subscribed = r.ok;
  }

  onEvent(fn: (e: AgentEvent) => void): () => void {
    this.listeners.add(fn);
    void this.subscribe().catch(() => {});
    return () => this.listeners.delete(fn);
  }

  async status(): Promise<StatusLine> {
    try {
      await this.subscribe().catch(() => {});
      const r = await (await this.agent()).request({ op: "status" });
      if (r.ok) {
        const s = r.result as AgentStatus;
        // An agent without its knowledge base forgets at a restart: the strip says so.
        const mode = s.knowledge?.state === "memory" ? `${s.mode}, knowledge off` : s.mode;
        return { health: s.health, cpu: s.cpu_percent, memory: s.memory_percent, temperature: s.temperature_c, failed: s.failed_units, mode, tickMs: s.tick_ms };
      }
    } catch (e) {
      // the agent is down: what the supervisor knows
      if (process.env.PAIO_CONSOLE_DEBUG) console.error("status:", e);
    }
    const units = await this.deps.units().catch(() => []);
    const failed = units.filter((u) => u.state === "failed").map((u) => u.name);
    return { health: failed.length ? "failing" : "unknown", cpu: 0, memory: 0, failed, mode: "agent down" };
  }

  private async call(tool: string, args: Args, utterance: string, confirmed: boolean, origin: "person" | "llm" = "person"): Promise<Reply> {
    let res: CallResult;
    try {
      const r = await (await this.agent()).request({ op: "call", tool: tool as never, args, confirmed, utterance, origin });
      if (!r.ok) return { lines: [`! ${r.error.message}`] };
      res = r.result as CallResult;
    } catch (e) {
      return { lines: [`! The agent cannot be reached (${(e as Error).message}); changes need the agent. 'shell' opens a shell.`] };
    }
    if (res.status === "needs-confirmation") {
      this.pending = { tool, args, utterance, origin };
      return { lines: [res.reply], confirm: `Confirm ${describeCall({ tool, args })}? [y/N]` };
    }
    const prefix = res.status === "done" ? "" : "! ";
    return { lines: [...res.reply.split("\n").map((l) => prefix + l), ...outputLines(tool, res.output)] };
  }

  async submit(text: string): Promise<Reply> {
    const units = (await this.deps.units().catch(() => [])).map((u) => u.name);
    const u = await this.deps.understander.understand(text, units);
    if ((u.intent === "none" || u.clarify) && this.deps.llm) {
      // An open question: the backend may place it. Its text is data; its tool call goes through the guard as "llm".
      // A passphrase never leaves the device, not even to the language-model backend.
      const a = await this.deps.llm.ask(maskSecrets(text), units);
      if (a.kind === "call") return this.call(a.tool, a.args, text, false, "llm");
      if (a.kind === "text") return { lines: a.text.split("\n").map((l) => `  (language model) ${l}`) };
      return { lines: [u.reply, `  (the language model backend: ${a.why})`] };
    }
    if (u.clarify || u.intent === "none" || u.plan.length === 0) return { lines: [u.reply] };
    const step = u.plan[0]!;
    return this.call(step.tool, step.args, text, false);
  }

  async answer(yes: boolean): Promise<Reply> {
    const p = this.pending;
    this.pending = undefined;
    if (!p) return { lines: [] };
    if (!yes) return { lines: ["Cancelled: nothing was done."] };
    return this.call(p.tool, p.args, p.utterance, true, p.origin);
  }
}

// `paio agent [status]` and `paio agent mode auto|advise|off`: talk to the
// agent over its socket.

import { ControlClient } from "../../init/control/client.ts";
import { AGENT_SOCKET, type AgentRequest, type AgentResponse, type AgentStatus, type CallResult } from "../protocol.ts";

export const AGENT_USAGE = `  agent [status]         the agent's mode, health summary, scheduling interface and models
  agent mode auto|advise|off   set the agent's autonomy`;

export async function connectAgent(): Promise<ControlClient<AgentRequest, AgentResponse>> {
  return ControlClient.connect<AgentRequest, AgentResponse>(process.env.PAIO_AGENT_SOCKET ?? AGENT_SOCKET);
}

export async function agentCommand(rest: string[], json: boolean): Promise<number> {
  let c: ControlClient<AgentRequest, AgentResponse>;
  try {
    c = await connectAgent();
  } catch (e) {
    console.error(`paio: cannot reach the agent at ${process.env.PAIO_AGENT_SOCKET ?? AGENT_SOCKET}: ${(e as Error).message} ('paio status agent' shows whether it runs)`);
    return 5;
  }
  try {
    if (rest[0] === "mode") {
      const mode = rest[1];
      if (mode !== "auto" && mode !== "advise" && mode !== "off") {
        console.error("paio: usage: paio agent mode auto|advise|off");
        return 2;
      }
      const r = await c.request({ op: "call", tool: "agent.mode", args: { mode } });
      if (!r.ok) return fail(r.error.message);
      const res = r.result as CallResult;
      if (json) console.log(JSON.stringify(res));
      else console.log(res.reply);
      return res.status === "done" ? 0 : 1;
    }
    if (rest[0] !== undefined && rest[0] !== "status") {
      console.error(`paio: unknown agent command '${rest[0]}'\n${AGENT_USAGE}`);
      return 2;
    }
    const r = await c.request({ op: "status" });
    if (!r.ok) return fail(r.error.message);
    const s = r.result as AgentStatus;
    if (json) console.log(JSON.stringify(s));
    else {
      console.log(`mode ${s.mode}; health ${s.health}; CPU ${s.cpu_percent}%, memory ${s.memory_percent}%${s.temperature_c !== undefined ? `, ${s.temperature_c} °C` : ""}`);
      console.log(`failed units: ${s.failed_units.join(", ") || "none"}; scheduling through ${s.scheduling}`);
      for (const m of s.models) {
        console.log(`model ${m.name}: ${m.state}${m.reason ? ` (${m.reason})` : ""}${m.p50_ms !== undefined ? `; inference p50 ${m.p50_ms.toFixed(3)} ms, p99 ${m.p99_ms?.toFixed(3)} ms over ${m.calls} calls` : ""}`);
        if (m.state === "loaded" && m.decides) console.log(`  decides: ${m.decides === "rule" ? "nothing: its rule decides" : m.decides === "model" ? "alone" : "together with its rule"} (held-out evaluation: ${m.decidesWhy})`);
      }
      if (s.soc) console.log(`SoC: ${s.soc.state}${s.soc.text ? `, ${s.soc.text}` : ""}${s.soc.capped_units.length ? `; CPU limits lowered for the heat: ${s.soc.capped_units.join(", ")}` : ""}`);
      console.log(`agent CPU ${s.agent_cpu_percent.toFixed(2)}% of one core over the last minute (budget ${s.cpu_budget_percent}%); ticking every ${s.tick_ms} ms`);
      const c = s.tick_cpu_ms;
      if (c) console.log(`CPU per tick: ${(c.between + c.monitor + c.detect + c.rest).toFixed(1)} ms (sampling ${c.monitor.toFixed(1)}, detecting ${c.detect.toFixed(1)}, acting and storing ${c.rest.toFixed(1)}, between ticks ${c.between.toFixed(1)})`);
    }
    return 0;
  } finally {
    c.close();
  }
}

function fail(msg: string): number {
  console.error(`paio: ${msg}`);
  return 1;
}

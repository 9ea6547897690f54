// The agent unit's entry point: /usr/lib/paio/agent.js, run by the supervisor
// as the unit `agent`. Everything it needs is opened here: the knowledge
// base, the policy, the models, the supervisor link and the agent's socket.
// If it crashes, the supervisor restarts it; the knowledge base is SQLite in
// WAL mode, so nothing committed is lost.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { AGENT_SOCKET } from "../protocol.ts";
import { CONTROL_SOCKET } from "../../init/control/protocol.ts";
import { Knowledge, knowledgePath } from "../knowledge/store.ts";
import { DEFAULT_POLICY, loadPolicy, policyPaths } from "../guard/policy.ts";
import { Agent } from "./agent.ts";
import { loadAgentConfig } from "./config.ts";
import { AgentServer } from "./server.ts";
import { SupervisorLink } from "./supervisor-link.ts";
import { loadAgentModels } from "./models.ts";
import { reportProvisioningProblems } from "../../lib/provision/incidents.ts";

function say(line: string): void {
  console.log(`paio-agent: ${line}`);
}

async function main(): Promise<void> {
  const etc = process.env.PAIO_ETC_DIR ?? "/etc/paio";
  // A device-specific agent.toml in the state directory replaces the image's.
  const state = process.env.PAIO_STATE_DIR ?? "/var/lib/paio";
  const config = loadAgentConfig(existsSync(join(state, "agent.toml")) ? join(state, "agent.toml") : join(etc, "agent.toml"));
  let policy;
  try {
    policy = loadPolicy(policyPaths(etc));
  } catch (e) {
    // A broken policy must not leave the device unwatched, nor let the agent act on a guess.
    say(`policy error: ${(e as Error).message}`);
    say("using the built-in policy in advise mode (proposals only) until the file is fixed; then: paio restart agent");
    policy = { ...DEFAULT_POLICY, mode: "advise" as const, source: "built-in defaults", broken: (e as Error).message };
  }
  const knowledge = new Knowledge(knowledgePath(), { maxBytes: config.maxDbBytes });
  say(`knowledge base ${knowledge.path} (integrity ${knowledge.integrityCheck()}); policy from ${policy.source}`);
  // Problems of the first-boot settings (imported before any unit ran) become incidents.
  reportProvisioningProblems(knowledge, state, say);
  const models = await loadAgentModels(say);
  for (const m of models.states) {
    if (m.state !== "loaded") knowledge.audit.append("model", null, { model: m.name, state: m.state, reason: m.reason, justification: `model ${m.name} is not used (${m.reason}); its rule answers instead` });
  }
  let agent: Agent | undefined;
  const link = new SupervisorLink(process.env.PAIO_CONTROL_SOCKET ?? CONTROL_SOCKET, (e) => void agent?.onUnitEvent(e), say, (e) => void agent?.onPublished(e));
  agent = new Agent({ supervisor: link, knowledge, policy, config, models });
  say(`mode ${agent.mode}; scheduling through ${agent.scheduling() === "latency-nice" ? "cpu.latency.nice (patched kernel)" : "cpu.weight and PSI (stock kernel: no cpu.latency.nice)"}`);
  const server = new AgentServer(agent, process.env.PAIO_AGENT_SOCKET ?? AGENT_SOCKET);
  server.start();
  void link.subscribe();
  const stop = () => {
    server.stop();
    agent?.flushFrames();
    knowledge.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  say("ready");
  for (;;) {
    const t0 = Date.now();
    try {
      await agent.tick(t0);
    } catch (e) {
      say(`tick failed: ${(e as Error).stack ?? e}`);
    }
    await Bun.sleep(Math.max(50, agent.tickDelayMs() - (Date.now() - t0)));
  }
}

main().catch((e) => {
  console.error(`paio-agent: ${(e as Error).message}`);
  process.exit(1);
});

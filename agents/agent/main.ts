// The agent unit's entry point: /usr/lib/paio/agent.js, run by the supervisor
// as the unit `agent`. Everything it needs is opened here: the knowledge
// base, the policy, the models, the supervisor link and the agent's socket.
// If it crashes, the supervisor restarts it; the knowledge base is SQLite in
// WAL mode, so nothing committed is lost. A knowledge base it must not use (a
// newer PAIO version's, after a fall back to this one) is left alone: the
// agent runs on with an empty one in memory and says so, instead of failing
// at every start.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { AGENT_SOCKET } from "../protocol.ts";
import { CONTROL_SOCKET } from "../../init/control/protocol.ts";
import { knowledgePath, openKnowledge } from "../knowledge/store.ts";
import { DEFAULT_POLICY, loadPolicy, policyPaths } from "../guard/policy.ts";
import { Agent } from "./agent.ts";
import { loadAgentConfig } from "./config.ts";
import { AgentServer } from "./server.ts";
import { SupervisorLink } from "./supervisor-link.ts";
import { schedulingLine } from "../execute/scheduling.ts";
import { deviceModelPaths, loadAgentModels } from "./models.ts";
import { reportProvisioningProblems } from "../../lib/provision/incidents.ts";
import { dataFormatProblem } from "../../lib/data-format.ts";
import { nameProcess } from "../../lib/process-name.ts";
import { giveBackFilePages } from "../../lib/page-out.ts";
import { retrainMain } from "./retrain-job.ts";
import { deviceKey, keyId } from "../models/manifest.ts";
import { createPublicKey } from "node:crypto";


/** When, after "ready", the pages used only at start are given back. */
const START_PAGES_AFTER_MS = 30_000;

function say(line: string): void {
  console.log(`paio-agent: ${line}`);
}

async function main(): Promise<void> {
  const etc = process.env.PAIO_ETC_DIR ?? "/etc/paio";
  // A device-specific agent.toml in the state directory replaces the image's.
  const state = process.env.PAIO_STATE_DIR ?? "/var/lib/paio";
  let config = loadAgentConfig(existsSync(join(state, "agent.toml")) ? join(state, "agent.toml") : join(etc, "agent.toml"));
  let policy;
  try {
    policy = loadPolicy(policyPaths(etc));
  } catch (e) {
    // A broken policy must not leave the device unwatched, nor let the agent act on a guess.
    say(`policy error: ${(e as Error).message}`);
    say("using the built-in policy in advise mode (proposals only) until the file is fixed; then: paio restart agent");
    policy = { ...DEFAULT_POLICY, mode: "advise" as const, source: "built-in defaults", broken: (e as Error).message };
  }
  const { knowledge, use } = openKnowledge(knowledgePath(state), { maxBytes: config.maxDbBytes }, dataFormatProblem(state));
  if (use.state === "file") {
    const migrated = use.schema.from !== use.schema.to ? `, migrated from version ${use.schema.from}` : "";
    say(`knowledge base ${use.path} (schema version ${use.schema.to}${migrated}; integrity ${knowledge.integrityCheck()}); policy from ${policy.source}`);
  } else {
    say(`knowledge base not used: ${use.reason}`);
    say(`running without it: incidents, audit records and what I learn are kept in memory until the agent stops; retraining is off; policy from ${policy.source}`);
    // Retraining writes models and a key on the data partition, from history this agent does not keep.
    config = { ...config, retrainEveryMs: 0 };
    const summary = `the knowledge base is not used, so nothing is remembered across restarts: ${use.reason}`;
    const incident = knowledge.openIncident({ time: Date.now(), unit: "agent", signature: "knowledge:not-used", class: "knowledge", summary, state: "proposed" });
    knowledge.audit.append("incident", "agent", { incident: incident.id, signature: "knowledge:not-used", class: "knowledge", summary, justification: `a person must decide what becomes of ${use.path}: ${use.reason}` });
  }
  if (config.retrainEveryMs > 0) {
    // The device key is made at the first start (first boot), in a folder only the agent's user may open.
    const keysDir = deviceModelPaths(state).keysDir;
    try {
      say(`device key ${keyId(createPublicKey(deviceKey(keysDir)))} in ${keysDir} (mode 0700): it signs the models retrained here`);
    } catch (e) {
      say(`retraining is off: ${(e as Error).message}`);
      config = { ...config, retrainEveryMs: 0 };
    }
  }
  // Problems of the first-boot settings (imported before any unit ran) become incidents.
  reportProvisioningProblems(knowledge, state, say);
  const models = await loadAgentModels(say);
  for (const m of models.states) {
    if (m.state !== "loaded") knowledge.audit.append("model", null, { model: m.name, state: m.state, reason: m.reason, justification: `model ${m.name} is not used (${m.reason}); its rule answers instead` });
  }
  let agent: Agent | undefined;
  const link = new SupervisorLink(process.env.PAIO_CONTROL_SOCKET ?? CONTROL_SOCKET, (e) => void agent?.onUnitEvent(e), say, (e) => void agent?.onPublished(e));
  agent = new Agent({ supervisor: link, knowledge, knowledgeUse: use, policy, config, models });
  // Update events written while the agent was not running (a reboot into a new slot, a fallback) are taken in at once.
  const journal = agent.readUpdateJournal();
  if (journal) say(journal);
  say(`mode ${agent.mode}; ${schedulingLine(agent.scheduling())}`);
  const server = new AgentServer(agent, process.env.PAIO_AGENT_SOCKET ?? AGENT_SOCKET);
  server.start();
  void link.subscribe();
  const stop = () => {
    server.stop();
    agent?.stopRetraining();
    agent?.flushFrames();
    knowledge.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  say("ready");
  const readyAt = Date.now();
  let startPagesGiven = false;
  for (;;) {
    const t0 = Date.now();
    try {
      await agent.tick(t0);
    } catch (e) {
      say(`tick failed: ${(e as Error).stack ?? e}`);
    }
    if (!startPagesGiven && Date.now() - readyAt >= START_PAGES_AFTER_MS) {
      // Start-up is over (models loaded, the first ticks taken): its garbage is collected and its pages of Bun and onnxruntime given back (lib/page-out.ts).
      startPagesGiven = true;
      say(giveBackFilePages().text);
    }
    await Bun.sleep(Math.max(50, agent.tickDelayMs() - (Date.now() - t0)));
  }
}

if (process.argv[2] === "retrain") {
  // The retraining worker (agents/agent/retrain-job.ts): the same bundle, started by the agent at nice 19 in its own cgroup.
  nameProcess("paio-retrain");
  void retrainMain(process.argv[3]).then((code) => process.exit(code));
} else {
  // Shown as paio-agent in ps, top and process.top, not as "bun" (lib/process-name.ts).
  nameProcess("paio-agent");
  main().catch((e) => {
    console.error(`paio-agent: ${(e as Error).message}`);
    process.exit(1);
  });
}

// The console unit's program: /usr/lib/paio/console.js, started by the
// supervisor on the console tty (see /usr/libexec/paio/console-ui). If it
// crashes, the supervisor restarts it.

import { render } from "ink";
import { ControlClient } from "../../init/control/client.ts";
import type { UnitSummary } from "../../init/control/protocol.ts";
import { loadPolicy, policyPaths } from "../guard/policy.ts";
import { Understander } from "../nlu/understand.ts";
import { connectAgent } from "../cli/agent.ts";
import { App, lookFromEnv } from "./App.tsx";
import { AgentEngine } from "./engine.ts";
import { LlmBackend, loadLlmConfig } from "../nlu/llm.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";

async function units(): Promise<UnitSummary[]> {
  const c = await ControlClient.connect();
  try {
    const r = await c.request({ op: "list" });
    return r.ok ? (r.result as UnitSummary[]) : [];
  } finally {
    c.close();
  }
}

async function main(): Promise<void> {
  let policy;
  try {
    policy = loadPolicy(policyPaths());
  } catch {
    policy = undefined; // the agent reports a broken policy; the console only needs it for hints
  }
  const models = process.env.PAIO_MODELS_DIR ?? "/usr/lib/paio/models";
  const understander = await Understander.load(models, process.env.PAIO_MODEL_KEYS_DIR ?? "/etc/paio/model-keys", policy);
  // The optional language-model backend ([llm] in agent.toml; the state directory's copy wins).
  const state = process.env.PAIO_STATE_DIR ?? "/var/lib/paio";
  const etc = process.env.PAIO_ETC_DIR ?? "/etc/paio";
  let llm: LlmBackend | undefined;
  try {
    const cfg = loadLlmConfig(existsSync(join(state, "agent.toml")) ? join(state, "agent.toml") : join(etc, "agent.toml"));
    if (cfg) llm = new LlmBackend(cfg);
  } catch (e) {
    console.error(`paio-console: ${(e as Error).message}; the language-model backend is off`);
  }
  const engine = new AgentEngine({ understander, agent: connectAgent, units, llm });
  const look = lookFromEnv(process.env, process.stdout.columns, process.stdout.rows);
  const onShell = async () => {
    process.stdout.write("\nRoot shell; type 'exit' to return to the PAIO console.\n");
    const sh = Bun.spawn(["/bin/sh", "-l"], { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
    await sh.exited;
  };
  const app = render(<App engine={engine} look={look} onShell={onShell} />, { exitOnCtrlC: false, patchConsole: true });
  await app.waitUntilExit();
  process.exit(0);
}

main().catch((e) => {
  console.error(`paio-console: ${(e as Error).message}`);
  process.exit(1);
});

// The console unit's program: /usr/lib/paio/console.js, started by the
// supervisor on the console tty (see /usr/libexec/paio/console-ui). If it
// crashes, the supervisor restarts it.

import { render } from "ink";
import { ControlClient } from "../../init/control/client.ts";
import type { UnitSummary } from "../../init/control/protocol.ts";
import { loadPolicy, policyPaths } from "../guard/policy.ts";
import { Understander } from "../nlu/understand.ts";
import { MODEL_KEYS_DIR } from "../models/manifest.ts";
import { connectAgent } from "../cli/agent.ts";
import { consoleInput } from "./input.ts";
import { App, lookFromEnv, type ConsoleState } from "./App.tsx";
import { AgentEngine } from "./engine.ts";
import { LlmBackend, loadLlmConfig } from "../nlu/llm.ts";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nameProcess } from "../../lib/process-name.ts";
import { giveBackFilePages } from "../../lib/page-out.ts";

// Shown as paio-console in ps, top and process.top, not as "bun" (lib/process-name.ts).
nameProcess("paio-console");

/** The exit status that asks console-ui for a root shell. */
const SHELL_EXIT = 3;
/** Where the conversation waits while the shell runs (tmpfs: gone after a reboot). */
const RESUME_FILE = process.env.PAIO_CONSOLE_RESUME ?? "/run/paio/console-resume.json";

function saveResumeState(file: string, state: ConsoleState): void {
  try {
    writeFileSync(file, JSON.stringify(state), { mode: 0o600 });
  } catch {
    // the console comes back without its transcript
  }
}

/** The saved conversation, once: the file is removed, and anything malformed is ignored. */
function takeResumeState(file: string): ConsoleState | undefined {
  try {
    const raw = JSON.parse(readFileSync(file, "utf8")) as Partial<ConsoleState>;
    rmSync(file, { force: true });
    const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
    if (!strings(raw.transcript) || !strings(raw.history)) return undefined;
    return { transcript: raw.transcript!.slice(-200), history: raw.history!.slice(-50) };
  } catch {
    return undefined;
  }
}

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
  const understander = await Understander.load(models, MODEL_KEYS_DIR, policy);
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
  // Under console-ui (the device), the shell is run by the script that runs
  // this program: the console saves its state, leaves with SHELL_EXIT, and is
  // started again when the shell exits. By hand, the shell runs as a child.
  const wrapped = process.env.PAIO_CONSOLE_WRAPPER === "1";
  const onShell = async (state: ConsoleState) => {
    if (wrapped) {
      saveResumeState(RESUME_FILE, state);
      process.exit(SHELL_EXIT);
    }
    process.stdout.write("\nRoot shell; type 'exit' to return to the PAIO console.\n");
    const sh = Bun.spawn(["/bin/sh", "-l"], { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
    await sh.exited;
  };
  const resumed = wrapped ? takeResumeState(RESUME_FILE) : undefined;
  // Through a filter: a stray paste marker must not leave the console deaf (input.ts).
  const app = render(<App engine={engine} look={look} onShell={onShell} resumed={resumed} />, { stdin: consoleInput(process.stdin) as never, exitOnCtrlC: false, patchConsole: true });
  // Start-up is over: its pages of Bun and onnxruntime go back to the kernel (lib/page-out.ts), quietly (the screen is the conversation's).
  setTimeout(() => {
    const r = giveBackFilePages();
    if (process.env.PAIO_CONSOLE_DEBUG) console.error(r.text);
  }, 30_000).unref();
  await app.waitUntilExit();
  process.exit(0);
}

main().catch((e) => {
  console.error(`paio-console: ${(e as Error).message}`);
  process.exit(1);
});

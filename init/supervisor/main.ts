// Entry point of the supervisor: `bun /usr/lib/paio/supervisor.js`, started
// and kept alive by PID 1. Settings come from the environment (for tests):
// PAIO_UNIT_DIRS, PAIO_RUN_DIR, PAIO_STATE_DIR.

import { configFromEnv, Supervisor } from "./supervisor.ts";

const cfg = configFromEnv(process.env);
const supervisor = new Supervisor(cfg);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  cfg.say(`${signal}: stopping all units`);
  const n = await supervisor.stopAll();
  cfg.say(`supervisor stopped ${n} units`);
  process.exit(0);
}

process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGHUP", () => supervisor.reload());
// A bug in one handler must not take the supervisor down with every unit's watch.
process.on("uncaughtException", (e) => cfg.say(`internal error: ${e.stack ?? e}`));

supervisor.start();

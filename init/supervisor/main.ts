// Entry point of the supervisor: `bun /usr/lib/paio/supervisor.js`, started
// and kept alive by PID 1. Settings come from the environment (for tests):
// PAIO_UNIT_DIRS, PAIO_RUN_DIR, PAIO_STATE_DIR, PAIO_CONTROL_SOCKET; PID 1 sets
// PAIO_NOTIFY_FD (pid1-link.ts).

import { join } from "node:path";
import { checkDataFormat } from "../../lib/data-format.ts";
import { firstBoot } from "../../lib/provision/firstboot.ts";
import { ControlServer } from "./control-server.ts";
import { Pid1Link } from "./pid1-link.ts";
import { configFromEnv, Supervisor } from "./supervisor.ts";
import { startUpdateGate } from "../update/gate.ts";
import { nameProcess } from "../../lib/process-name.ts";

// Shown as paio-supervisor in ps, top and process.top, not as "bun" (lib/process-name.ts).
nameProcess("paio-supervisor");

// First, before any unit is started: the descriptor PID 1 watches us through must not leak into units.
const pid1 = new Pid1Link(process.env);
const cfg = configFromEnv(process.env);
// The data partition's format, before anything is written to it (docs/image.md, "Data across versions").
checkDataFormat(cfg.stateDir, cfg.say);
// First-boot settings from the boot partition, once per boot, before any unit file is read (docs/provisioning.md).
if (process.ppid === 1 && process.env.PAIO_FIRST_BOOT !== "off") firstBoot({ runDir: cfg.runDir, state: cfg.stateDir, say: cfg.say });
const supervisor = new Supervisor(cfg);
const control = new ControlServer(supervisor, process.env.PAIO_CONTROL_SOCKET ?? join(cfg.runDir, "control.sock"));

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  cfg.say(`${signal}: stopping all units`);
  control.stop();
  const n = await supervisor.stopAll();
  cfg.say(`supervisor stopped ${n} units`);
  process.exit(0);
}

process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGHUP", () => void supervisor.reload());
// A bug in one handler must not take the supervisor down with every unit's watch.
process.on("uncaughtException", (e) => cfg.say(`internal error: ${e.stack ?? e}`));
process.on("unhandledRejection", (e) => cfg.say(`internal error: ${(e as Error)?.stack ?? e}`));

try {
  control.start();
} catch (e) {
  cfg.say(`warning: cannot open the control socket ${control.path}: ${(e as Error).message}`);
}
supervisor.start();
pid1.ready();
// After an update: commit the new slot once it is healthy, or go back (docs/updates.md).
if (process.ppid === 1 || process.env.PAIO_UPDATE_GATE === "on") {
  startUpdateGate({
    units: () => [...supervisor.runners.values()].map((r) => ({ name: r.name, state: r.state, since: r.since, restarts: r.restarts, hasHealth: !!r.unit.health, lastCheck: r.lastCheck?.result })),
    refused: () => supervisor.refused,
    say: cfg.say,
    reboot: () => process.kill(1, "SIGTERM"),
  });
}

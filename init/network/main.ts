// Entry point of the network unit: `bun /usr/lib/paio/network.js`, started by
// the supervisor (image/overlay/etc/paio/units/network.toml). SIGHUP re-reads
// network.toml (`paio net apply`); SIGUSR1 restarts DHCP (and Wi-Fi) on every
// interface; SIGUSR2 takes every link down and up again first. The agent's
// remedies use the last two (through the supervisor's `signal`).

import { ControlClient } from "../control/client.ts";
import type { PublishedEvent, UnitSummary } from "../control/protocol.ts";
import { DEFAULT_PATHS, ensureRunNet, NetworkUnit } from "./daemon.ts";
import { interfaceNames } from "./links.ts";
import { nameProcess } from "../../lib/process-name.ts";

// Shown as paio-network in ps, top and process.top, not as "bun" (lib/process-name.ts).
nameProcess("paio-network");

const WATCH_MS = 2000;
const say = (line: string) => console.log(line);
let client: ControlClient | undefined;
const queue: PublishedEvent[] = [];

function publish(e: PublishedEvent): void {
  say(`network event: ${e.message}`);
  if (client) void client.request({ op: "publish", event: e });
  else if (queue.push(e) > 50) queue.shift();
}

const unit = new NetworkUnit(DEFAULT_PATHS, say, publish);
ensureRunNet(DEFAULT_PATHS);
// Default deny from the start: the firewall goes up before any link does.
unit.applyFirewall([]);
unit.apply(true);

/** The supervisor's socket: unit changes move the firewall; our events go out. Reconnects when the supervisor restarts. */
async function connect(): Promise<void> {
  for (;;) {
    try {
      const c = await ControlClient.connect();
      const refresh = async () => {
        const r = await c.request({ op: "list" });
        if (r.ok) unit.setUnits(r.result as UnitSummary[]);
      };
      c.onEvent((e) => {
        if (e.event === "unit") void refresh();
      });
      const closed = new Promise<void>((resolve) => c.onClosed(resolve));
      await c.request({ op: "subscribe" });
      client = c;
      for (const e of queue.splice(0)) void c.request({ op: "publish", event: e });
      await refresh();
      await closed;
      client = undefined;
    } catch {
      // not there yet, or restarting
    }
    await Bun.sleep(1000);
  }
}
void connect();

process.on("SIGHUP", () => {
  const error = unit.apply();
  say(error ? `network: apply refused: ${error}` : "network: configuration applied");
});
process.on("SIGUSR1", () => {
  for (const n of interfaceNames()) unit.renew(n);
});
process.on("SIGUSR2", () => {
  for (const n of interfaceNames()) unit.bounce(n);
});
process.on("SIGTERM", () => {
  unit.stop();
  process.exit(0);
});

setInterval(() => {
  try {
    unit.watch();
  } catch (e) {
    say(`network: internal error while watching links: ${(e as Error).stack ?? e}`);
  }
}, WATCH_MS);

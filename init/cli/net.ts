// `paio net` (show the network), `paio net apply` (re-read network.toml) and
// `paio ssh-key add KEY` (allow an SSH key): the network's subcommands of
// `paio`. They read the network unit's state file and signal the unit; a
// configuration file is checked here first, so its error shows at once and
// the running network is not touched.

import { existsSync } from "node:fs";
import { readConfigFile } from "../../lib/config/read.ts";
import { addAuthorizedKey as addKey, parsePublicKey } from "../../lib/config/ssh-key.ts";
import { ControlClient } from "../control/client.ts";
import type { UnitStatus } from "../control/protocol.ts";
import { DEVICE_NETWORK_FILE, IMAGE_NETWORK_FILE, parseNetworkFile, unknownInterfaces } from "../../lib/config/network.ts";
import { formatNetworkStatus, NETWORK_STATE_FILE, readNetworkStatus } from "../control/network-state.ts";
import { interfaceNames } from "../network/links.ts";

export const NET_USAGE = `  net                    interfaces, addresses, routes, DNS, Wi-Fi, time sync, firewall, recent events
  net apply              check and apply /var/lib/paio/network.toml (or the image's /etc/paio/network.toml)
  ssh-key add KEY        allow an SSH public key ("ssh-ed25519 AAAA... comment") to log in as root`;

export const AUTHORIZED_KEYS = process.env.PAIO_AUTHORIZED_KEYS ?? "/var/lib/paio/ssh/authorized_keys";
export { parsePublicKey };

/** Appends a key unless it is already there; the file is replaced atomically. */
export function addAuthorizedKey(text: string, file = AUTHORIZED_KEYS): { ok: boolean; message: string } {
  const { ok, message } = addKey(text, file);
  return { ok, message };
}

/** The network unit's main process, from the supervisor. */
async function networkPid(): Promise<number | undefined> {
  const c = await ControlClient.connect();
  try {
    const r = await c.request({ op: "status", unit: "network" });
    return r.ok ? (r.result as UnitStatus).pid : undefined;
  } finally {
    c.close();
  }
}

async function apply(json: boolean): Promise<number> {
  const path = existsSync(DEVICE_NETWORK_FILE) ? DEVICE_NETWORK_FILE : IMAGE_NETWORK_FILE;
  const read = readConfigFile(path);
  const parsed = read.ok ? parseNetworkFile(read.text, path) : read;
  const error = !parsed.ok ? parsed.error : unknownInterfaces((parsed as { config: Parameters<typeof unknownInterfaces>[0] }).config, interfaceNames(), read.ok ? read.text : "").join("; ");
  if (error) {
    console.error(`paio: ${error}\npaio: nothing was changed; the network keeps its running configuration`);
    return 1;
  }
  const before = readNetworkStatus()?.generation ?? -1;
  let pid: number | undefined;
  try {
    pid = await networkPid();
  } catch (e) {
    console.error(`paio: cannot reach the supervisor: ${(e as Error).message}`);
    return 5;
  }
  if (!pid) {
    console.error("paio: the network unit is not running; 'paio start network'");
    return 1;
  }
  process.kill(pid, "SIGHUP");
  for (let i = 0; i < 100; i++) {
    const st = readNetworkStatus();
    if (st && st.generation > before) {
      if (json) console.log(JSON.stringify(st));
      else console.log(st.error ? `paio: refused: ${st.error}` : `applied ${st.source}\n${formatNetworkStatus(st)}`);
      return st.error ? 1 : 0;
    }
    await Bun.sleep(100);
  }
  console.error("paio: the network unit did not answer within 10 s; see 'paio logs network'");
  return 1;
}

/** `paio net ...` and `paio ssh-key ...`; undefined when the command is not one of these. */
export async function netCommand(cmd: string, rest: string[], json: boolean): Promise<number | undefined> {
  if (cmd === "ssh-key") {
    if (rest[0] !== "add" || rest.length < 2) {
      console.error(`paio: usage: paio ssh-key add "ssh-ed25519 AAAA... comment"`);
      return 2;
    }
    const r = addAuthorizedKey(rest.slice(1).join(" "));
    (r.ok ? console.log : console.error)(r.ok ? r.message : `paio: ${r.message}; nothing was changed`);
    return r.ok ? 0 : 1;
  }
  if (cmd !== "net") return undefined;
  if (rest[0] === "apply") return apply(json);
  if (rest[0] !== undefined) {
    console.error(`paio: unknown 'net' command '${rest[0]}'; try 'paio net' or 'paio net apply'`);
    return 2;
  }
  const st = readNetworkStatus();
  if (!st) {
    console.error(`paio: no network state in ${NETWORK_STATE_FILE}: is the network unit running? ('paio status network')`);
    return 1;
  }
  console.log(json ? JSON.stringify(st) : formatNetworkStatus(st));
  return 0;
}

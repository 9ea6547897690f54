// The network tools of the catalog: "is the network up?", "connect to wifi
// HOME with password ...", "open port 8080 for web-ui". They read the network
// unit's state file, edit the device's network.toml (the passphrase stored
// only as its derived key), and change things through the supervisor.

import { existsSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatNetworkStatus, readNetworkStatus } from "../../init/control/network-state.ts";
import { DEVICE_NETWORK_FILE, derivePsk, IMAGE_NETWORK_FILE, parseNetworkFile, withWifi } from "../../lib/config/network.ts";
import { readConfigFile } from "../../lib/config/read.ts";

export interface NetworkPaths {
  deviceFile: string;
  imageFile: string;
  sysNet: string;
}

export const NETWORK_PATHS: NetworkPaths = {
  deviceFile: process.env.PAIO_DEVICE_NETWORK_FILE ?? DEVICE_NETWORK_FILE,
  imageFile: process.env.PAIO_IMAGE_NETWORK_FILE ?? IMAGE_NETWORK_FILE,
  sysNet: process.env.PAIO_SYS_NET ?? "/sys/class/net",
};

/** The answer to "is the network up?" (and its parts: address, wifi, time). */
export function networkStatus(focus: string | undefined): { ok: boolean; reply: string; output?: unknown } {
  const st = readNetworkStatus();
  if (!st) return { ok: false, reply: "the network unit has written no state: is it running? ('paio status network')" };
  const up = st.interfaces.filter((i) => i.carrier && i.addresses.length);
  const verdict = up.length
    ? `The network is up: ${up.map((i) => `${i.name} has ${i.addresses.join(", ")}`).join("; ")}.`
    : `The network is down: ${st.interfaces.length ? st.interfaces.map((i) => `${i.name} ${!i.carrier ? "has no link" : "has no address"}`).join("; ") : "this device has no network interface"}.`;
  let reply: string;
  if (focus === "address") {
    reply = st.interfaces.map((i) => `${i.name}: ${i.addresses.join(", ") || "no address"}${i.lease ? " (DHCP)" : ""}`).join("\n") || "No network interface.";
  } else if (focus === "wifi") {
    const w = st.interfaces.filter((i) => i.wireless);
    reply = w.length ? w.map((i) => `${i.name}: ${i.signalDbm !== undefined ? `associated, signal ${i.signalDbm} dBm` : "not associated"}; ${i.mode}`).join("\n") : "This device has no Wi-Fi interface.";
  } else if (focus === "time") {
    reply = `The clock is ${st.time.synchronised ? "synchronised" : "not synchronised"} (${st.time.detail}).`;
  } else {
    reply = `${verdict}\n${formatNetworkStatus(st)}`;
  }
  return { ok: true, reply, output: st };
}

function wirelessInterfaces(sysNet: string): string[] {
  try {
    return readdirSync(sysNet).filter((n) => existsSync(join(sysNet, n, "wireless")) || existsSync(join(sysNet, n, "phy80211"))).sort();
  } catch {
    return [];
  }
}

/**
 * Writes the Wi-Fi network into the device's network.toml (starting from the
 * image's file when the device has none), checked before it is written.
 * Returns what to tell the person; the caller then asks the network unit to apply it.
 */
export function saveWifi(ssid: string, psk: string, paths: NetworkPaths = NETWORK_PATHS): { ok: boolean; reply: string; iface?: string } {
  const iface = wirelessInterfaces(paths.sysNet)[0];
  if (!iface) return { ok: false, reply: "this device has no Wi-Fi interface; nothing was changed" };
  const source = existsSync(paths.deviceFile) ? paths.deviceFile : paths.imageFile;
  const current = readConfigFile(source);
  if (!current.ok) return { ok: false, reply: `${current.error}; nothing was changed` };
  const text = withWifi(current.text, iface, ssid, derivePsk(ssid, psk));
  const check = parseNetworkFile(text, paths.deviceFile);
  if (!check.ok) return { ok: false, reply: `the new settings would not be valid (${check.error}); nothing was changed` };
  writeFileSync(`${paths.deviceFile}.tmp`, text, { mode: 0o600 });
  renameSync(`${paths.deviceFile}.tmp`, paths.deviceFile);
  return { ok: true, reply: `saved Wi-Fi network '${ssid}' for ${iface} in ${paths.deviceFile} (the passphrase only as its derived key)`, iface };
}

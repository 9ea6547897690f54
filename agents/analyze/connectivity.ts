// Connectivity: the network unit publishes what happens to the links (link
// down, address lost, no default route, gateway silent, and the recoveries);
// this turns them into the state of each interface and, when trouble lasts
// longer than a short grace (a link that flaps for a second is no incident),
// into a `network-down` finding. Recovery is seen here too, so the agent can
// close the incident and say how long the outage lasted.

import type { PublishedEvent } from "../../init/control/protocol.ts";
import type { Finding } from "./detect.ts";

/** Event kinds that mean trouble, and the ones that end it. */
const TROUBLE: Record<string, string> = {
  "link-down": "link down",
  "address-lost": "no address",
  "route-lost": "no default route",
  "gateway-unreachable": "gateway unreachable",
};
const RECOVERY: Record<string, readonly string[]> = {
  "link-up": ["link-down"],
  address: ["address-lost", "link-down"],
  route: ["route-lost"],
  "gateway-reachable": ["gateway-unreachable"],
};

export interface Outage {
  subject: string;
  kinds: Set<string>;
  since: number;
  reported: boolean;
  /** The carrier was lost at some point: a cable or a radio, which no remedy on the device brings back. */
  carrierLost: boolean;
}

export interface Recovery {
  subject: string;
  since: number;
  until: number;
  what: string;
  carrierLost: boolean;
}

export class Connectivity {
  private outages = new Map<string, Outage>();
  /** Outages that ended since the last look: subject, when it began and ended. */
  private recoveries: Recovery[] = [];

  constructor(private graceMs = 10_000) {}

  onEvent(e: PublishedEvent): void {
    if (e.event !== "network") return;
    const subject = e.subject ?? "network";
    if (TROUBLE[e.kind]) {
      const o = this.outages.get(subject) ?? { subject, kinds: new Set<string>(), since: e.time, reported: false, carrierLost: false };
      o.kinds.add(e.kind);
      if (e.kind === "link-down") o.carrierLost = true;
      this.outages.set(subject, o);
      return;
    }
    const ends = RECOVERY[e.kind];
    const o = this.outages.get(subject) ?? (e.kind === "route" ? [...this.outages.values()].find((x) => x.kinds.has("route-lost")) : undefined);
    if (!ends || !o) return;
    for (const k of ends) o.kinds.delete(k);
    // An address lost meanwhile is reported by the network unit, and comes back with its own event.
    if (o.kinds.size === 0) {
      this.outages.delete(o.subject);
      if (o.reported) this.recoveries.push({ subject: o.subject, since: o.since, until: e.time, what: e.message, carrierLost: o.carrierLost });
    }
  }

  /** Whether an interface (or "network" for the route) has no open trouble. */
  isUp(subject: string): boolean {
    return !this.outages.has(subject);
  }

  /** Outages older than the grace, reported once each as a finding. */
  findings(now: number): Finding[] {
    const out: Finding[] = [];
    for (const o of this.outages.values()) {
      if (o.reported || now - o.since < this.graceMs) continue;
      o.reported = true;
      const what = [...o.kinds].map((k) => TROUBLE[k]).join(", ");
      out.push({
        class: "network-down",
        unit: "network",
        detail: `iface=${o.subject}`,
        summary: `${o.subject}: ${what} for ${Math.round((now - o.since) / 1000)} s`,
        inputs: { subject: o.subject, troubles: [...o.kinds], since: o.since },
        evidence: { by: "rule", name: "network-down", rule: `link down, no address, no route or a silent gateway for more than ${this.graceMs / 1000} s, as the network unit reports` },
        time: now,
      });
    }
    return out;
  }

  /** Recoveries since the last call. */
  takeRecoveries(): Recovery[] {
    return this.recoveries.splice(0);
  }
}

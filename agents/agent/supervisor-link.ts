// The agent's link to the supervisor: a control-socket client that reconnects
// when the supervisor restarts, and a second connection subscribed to unit
// events. While the supervisor is away, requests fail with a clear message
// and the agent keeps its knowledge; it never acts on stale state.

import { ControlClient } from "../../init/control/client.ts";
import type { PublishedEvent, Request, Response, UnitEvent, UnitStatus, UnitSummary } from "../../init/control/protocol.ts";

export class SupervisorLink {
  private client: ControlClient | undefined;
  private connecting: Promise<ControlClient> | undefined;

  constructor(
    private path: string,
    private onUnitEvent: (e: UnitEvent) => void,
    private log: (line: string) => void,
    private onPublished: (e: PublishedEvent) => void = () => {},
  ) {}

  private async connect(): Promise<ControlClient> {
    if (this.client) return this.client;
    this.connecting ??= (async () => {
      const c = await ControlClient.connect(this.path);
      c.onClosed(() => {
        if (this.client === c) this.client = undefined;
      });
      this.client = c;
      return c;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  async request(req: Request): Promise<Response> {
    try {
      const c = await this.connect();
      return await c.request(req);
    } catch (e) {
      this.client = undefined;
      return { ok: false, error: { code: "failed", message: `the supervisor cannot be reached (${(e as Error).message})` } };
    }
  }

  async list(): Promise<UnitSummary[]> {
    const r = await this.request({ op: "list" });
    return r.ok ? (r.result as UnitSummary[]) : [];
  }

  async status(unit: string): Promise<UnitStatus | undefined> {
    const r = await this.request({ op: "status", unit });
    return r.ok ? (r.result as UnitStatus) : undefined;
  }

  /** Keeps an event subscription open, re-subscribing after the supervisor comes back. */
  async subscribe(): Promise<void> {
    for (;;) {
      try {
        const c = await ControlClient.connect(this.path);
        const closed = new Promise<void>((resolve) => c.onClosed(resolve));
        c.onEvent((e) => {
          if (e.event === "unit") this.onUnitEvent(e as unknown as UnitEvent);
          else if (e.event === "network") this.onPublished(e as unknown as PublishedEvent);
        });
        const r = await c.request({ op: "subscribe" });
        if (!r.ok) throw new Error(r.error.message);
        await closed;
        this.log("supervisor event stream closed; reconnecting");
      } catch (e) {
        this.log(`cannot subscribe to supervisor events: ${(e as Error).message}; retrying`);
      }
      await Bun.sleep(1000);
    }
  }
}

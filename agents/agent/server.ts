// The agent's socket (/run/paio/agent.sock): JSON lines, as agents/protocol.ts
// describes. Peers are checked like on the supervisor's socket: root may run
// any tool; members of group `paio` may run read tools and subscribe;
// everyone else is refused. Garbage gets an error and changes nothing.

import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import type { Socket, UnixSocketListener } from "bun";
import { accessOf, peerCredentials, type Access } from "../../init/control/peer.ts";
import { MAX_UNREAD_BYTES, SocketWriter } from "../../init/control/socket-writer.ts";
import { MAX_AGENT_REQUEST_BYTES, validateAgentRequest, type AgentRequest, type AgentResponse } from "../protocol.ts";
import { toolSpec } from "../tools/catalog.ts";
import type { Agent } from "./agent.ts";

interface Conn {
  access: Access | "closed";
  out: SocketWriter;
  buf: string;
  /** Keeps a character cut between two reads until its other bytes arrive. */
  utf8: TextDecoder;
  unsubscribe?: () => void;
}

export class AgentServer {
  private listener: UnixSocketListener<Conn> | undefined;

  constructor(private agent: Agent, readonly path: string) {}

  start(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    rmSync(this.path, { force: true });
    const server = this;
    this.listener = Bun.listen<Conn>({
      unix: this.path,
      socket: {
        open(s) {
          s.data = { access: accessOf(peerCredentials((s as unknown as { fd: number }).fd)), buf: "", utf8: new TextDecoder(), out: new SocketWriter(s, MAX_UNREAD_BYTES) };
        },
        data(s, chunk) {
          server.onData(s, chunk);
        },
        drain(s) {
          s.data?.out.drain();
        },
        close(s) {
          s.data?.unsubscribe?.();
        },
        error(s) {
          s.data?.unsubscribe?.();
        },
      },
    });
    chmodSync(this.path, 0o666);
  }

  stop(): void {
    this.listener?.stop(true);
  }

  private send(s: Socket<Conn>, msg: AgentResponse | object): void {
    s.data.out.write(JSON.stringify(msg) + "\n");
  }

  private onData(s: Socket<Conn>, chunk: Uint8Array): void {
    const conn = s.data;
    if (!conn || conn.access === "closed") return;
    if (conn.access === "none") {
      this.send(s, { ok: false, error: { code: "not-permitted", message: "permission denied: only root and members of group 'paio' may talk to the agent" } });
      conn.access = "closed";
      s.end();
      return;
    }
    conn.buf += conn.utf8.decode(chunk, { stream: true });
    for (;;) {
      const nl = conn.buf.indexOf("\n");
      if (nl < 0) break;
      const line = conn.buf.slice(0, nl);
      conn.buf = conn.buf.slice(nl + 1);
      if (line.length > 0) void this.handleLine(s, line);
    }
    if (conn.buf.length > MAX_AGENT_REQUEST_BYTES) {
      conn.buf = "";
      this.send(s, { ok: false, error: { code: "too-large", message: `request longer than ${MAX_AGENT_REQUEST_BYTES} bytes; closing the connection` } });
      s.end();
    }
  }

  private async handleLine(s: Socket<Conn>, line: string): Promise<void> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return this.send(s, { ok: false, error: { code: "bad-request", message: "not valid JSON; send one JSON object per line" } });
    }
    const v = validateAgentRequest(parsed);
    const id = (parsed as { id?: string | number } | null)?.id;
    if (!v.ok) return this.send(s, { id, ok: false, error: { code: "bad-request", message: v.message } });
    try {
      const result = await this.execute(s, v.req);
      this.send(s, { id: v.req.id, ok: true, result });
    } catch (e) {
      this.send(s, { id: v.req.id, ok: false, error: { code: "failed", message: (e as Error).message } });
    }
  }

  private async execute(s: Socket<Conn>, req: AgentRequest): Promise<unknown> {
    switch (req.op) {
      case "status":
        return this.agent.status();
      case "subscribe":
        s.data.unsubscribe?.();
        s.data.unsubscribe = this.agent.onEvent((e) => this.send(s, e));
        return { subscribed: true };
      case "call": {
        const spec = toolSpec(req.tool);
        if (spec && spec.effect !== "read" && s.data.access !== "all") {
          return { status: "refused", reply: `'${req.tool}' changes the system and needs root; members of group 'paio' may only read` };
        }
        return this.agent.call(req.tool, req.args, req.origin ?? "person", req.confirmed === true, req.utterance);
      }
    }
  }
}

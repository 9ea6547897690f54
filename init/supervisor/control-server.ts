// The control socket: JSON lines, one response per request, peers checked
// with SO_PEERCRED (root: everything; group `paio`: read operations; others:
// refused). Malformed or oversized input gets an error response and changes
// nothing; one client's garbage never disturbs another client.

import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import type { Socket, UnixSocketListener } from "bun";
import { MAX_REQUEST_BYTES, READ_OPS, validateRequest, type ErrorCode, type PublishedEvent, type Request, type Response } from "../control/protocol.ts";
import { accessOf, peerCredentials, type Access } from "../control/peer.ts";
import { MAX_UNREAD_BYTES, SocketWriter } from "../control/socket-writer.ts";
import { parsePort } from "../../lib/config/measure.ts";
import { followLog, tailLines } from "./unit-log.ts";
import { SupervisorError, type Supervisor } from "./supervisor.ts";

interface Conn {
  access: Access | "closed";
  out: SocketWriter;
  buf: string;
  /** Keeps a character cut between two reads until its other bytes arrive. */
  utf8: TextDecoder;
  /** Set while subscribed: undoes the subscription. */
  unsubscribe?: () => void;
}

export class ControlServer {
  private listener: UnixSocketListener<Conn> | undefined;
  /** Subscribers of published events (network and other system units). */
  private published = new Set<(e: PublishedEvent) => void>();

  constructor(
    private sup: Supervisor,
    readonly path: string,
  ) {}

  start(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    rmSync(this.path, { force: true });
    const server = this;
    this.listener = Bun.listen<Conn>({
      unix: this.path,
      socket: {
        open(s) {
          const fd = (s as unknown as { fd: number }).fd;
          s.data = { access: accessOf(peerCredentials(fd)), buf: "", utf8: new TextDecoder(), out: new SocketWriter(s, MAX_UNREAD_BYTES) };
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
    // Anyone may connect; the peer check decides what they may do.
    chmodSync(this.path, 0o666);
  }

  stop(): void {
    this.listener?.stop(true);
  }

  private send(s: Socket<Conn>, msg: Response | object): void {
    s.data.out.write(JSON.stringify(msg) + "\n");
  }

  private onData(s: Socket<Conn>, chunk: Uint8Array): void {
    const conn = s.data;
    if (!conn) return;
    if (conn.access === "none") {
      // Refused peers get one clear answer, then the connection closes.
      this.send(s, { ok: false, error: { code: "not-permitted", message: "permission denied: only root and members of group 'paio' may use the control socket" } });
      conn.access = "closed";
      s.end();
      return;
    }
    if (conn.access === "closed") return;
    conn.buf += conn.utf8.decode(chunk, { stream: true });
    for (;;) {
      const nl = conn.buf.indexOf("\n");
      if (nl < 0) break;
      const line = conn.buf.slice(0, nl);
      conn.buf = conn.buf.slice(nl + 1);
      if (line.length > 0) void this.handleLine(s, line); // an empty line is a no-op keep-alive
    }
    if (conn.buf.length > MAX_REQUEST_BYTES) {
      conn.buf = "";
      this.send(s, { ok: false, error: { code: "too-large", message: `request longer than ${MAX_REQUEST_BYTES} bytes; closing the connection` } });
      s.end();
    }
  }

  private async handleLine(s: Socket<Conn>, line: string): Promise<void> {
    const fail = (code: ErrorCode, message: string, id?: string | number) => this.send(s, { id, ok: false, error: { code, message } });
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return fail("bad-request", "not valid JSON; send one JSON object per line");
    }
    const v = validateRequest(parsed);
    if (!v.ok) return fail("bad-request", v.message, (parsed as { id?: string | number })?.id);
    const req = v.req;
    if (s.data.access !== "all" && !READ_OPS.includes(req.op)) return fail("not-permitted", `'${req.op}' needs root; members of group 'paio' may only read`, req.id);
    try {
      const result = await this.execute(s, req);
      this.send(s, { id: req.id, ok: true, result });
    } catch (e) {
      if (e instanceof SupervisorError) return fail(e.code, e.message, req.id);
      return fail("failed", (e as Error).message, req.id);
    }
  }

  private async execute(s: Socket<Conn>, req: Request): Promise<unknown> {
    const sup = this.sup;
    switch (req.op) {
      case "list":
        return [...sup.runners.values()].map((r) => sup.summary(r));
      case "status":
        return sup.status(req.unit);
      case "start":
        sup.runner(req.unit).start("started by request", true);
        return sup.summary(sup.runner(req.unit));
      case "stop":
        await sup.runner(req.unit).stop("stopped by request");
        return sup.summary(sup.runner(req.unit));
      case "restart":
        await sup.runner(req.unit).restart("restarted by request");
        return sup.summary(sup.runner(req.unit));
      case "reload":
        return await sup.reload();
      case "logs":
        sup.runner(req.unit);
        return { unit: req.unit, lines: tailLines(sup.logDir, req.unit, req.lines ?? 50) };
      case "set-limits":
        sup.setLimits(req.unit, req.limits);
        return sup.status(req.unit).limits;
      case "set-task-priority":
        return sup.setTaskPriority(req.unit, req);
      case "freeze":
        try {
          sup.runner(req.unit).setFrozen(req.frozen);
        } catch (e) {
          if (e instanceof SupervisorError) throw e;
          throw new SupervisorError("bad-request", (e as Error).message);
        }
        sup.say(`${req.unit}: ${req.frozen ? "frozen" : "thawed"} by request`);
        return sup.status(req.unit);
      case "mark-failed":
        await sup.runner(req.unit).markFailed(req.reason);
        return sup.summary(sup.runner(req.unit));
      case "signal": {
        const r = sup.runner(req.unit);
        if (!r.pid) throw new SupervisorError("failed", `${req.unit} is ${r.state}: it has no process to signal`);
        process.kill(r.pid, req.signal);
        sup.say(`${req.unit}: sent ${req.signal} by request`);
        return sup.summary(r);
      }
      case "set-ports": {
        const r = sup.runner(req.unit);
        r.unit = { ...r.unit, ports: req.ports.map((p) => parsePort(p)!) };
        sup.say(`${req.unit}: declared ports now ${req.ports.join(", ") || "none"} (by request, until its file is reloaded)`);
        sup.announce(r, `declared ports now ${req.ports.join(", ") || "none"}`);
        return sup.summary(r);
      }
      case "contain":
        return sup.contain(req.pid, req.how);
      case "subscribe": {
        s.data.unsubscribe?.();
        const offChange = sup.onChange((c) => this.send(s, { event: "unit", ...c }));
        let stopLogs: (() => void) | undefined;
        if (req.logs) {
          sup.runner(req.logs);
          stopLogs = followLog(sup.logDir, req.logs, (lines) => this.send(s, { event: "log", unit: req.logs, lines }));
        }
        const onPublished = (e: PublishedEvent) => this.send(s, { ...e });
        this.published.add(onPublished);
        s.data.unsubscribe = () => {
          offChange();
          stopLogs?.();
          this.published.delete(onPublished);
        };
        return { subscribed: true };
      }
      case "publish": {
        // Only the fields the protocol knows travel on; the event also goes to the console log.
        const { event, kind, message, subject, time } = req.event;
        const clean: PublishedEvent = { event, kind, message, subject, time };
        sup.say(`${event}: ${message.replace(/[\x00-\x1f\x7f]/g, " ")}`);
        for (const fn of this.published) fn(clean);
        return { delivered: this.published.size };
      }
    }
  }
}

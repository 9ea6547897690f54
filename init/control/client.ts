// A client of a JSON-lines socket: the supervisor's control socket (the
// default types) for the `paio` command, the agent and the console; and,
// with the agent's request types, the agent's socket.

import type { Socket } from "bun";
import { SocketWriter } from "./socket-writer.ts";
import { CONTROL_SOCKET, type Request, type Response } from "./protocol.ts";

function closedAnswer<Res>(id: string | number): Res {
  return { id, ok: false, error: { code: "failed", message: "the other side closed the connection" } } as Res;
}

export class ControlClient<Req extends { id?: string | number } = Request, Res = Response> {
  private buf = "";
  private pending = new Map<string | number, (r: Res) => void>();
  private nextId = 1;
  private eventHandler: ((e: Record<string, unknown>) => void) | undefined;
  private closedHandlers: (() => void)[] = [];
  private closed = false;

  private out: SocketWriter;

  private constructor(private sock: Socket<undefined>) {
    this.out = new SocketWriter(sock);
  }

  static async connect<Q extends { id?: string | number } = Request, S = Response>(path = process.env.PAIO_CONTROL_SOCKET ?? CONTROL_SOCKET): Promise<ControlClient<Q, S>> {
    let client: ControlClient<Q, S> | undefined;
    const sock = await Bun.connect({
      unix: path,
      socket: {
        data(_s, chunk) {
          client?.onData(Buffer.from(chunk).toString("utf8"));
        },
        drain() {
          client?.out.drain();
        },
        close() {
          client?.onClose();
        },
      },
    });
    client = new ControlClient<Q, S>(sock);
    return client;
  }

  private onData(text: string): void {
    this.buf += text;
    for (;;) {
      const nl = this.buf.indexOf("\n");
      if (nl < 0) return;
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (typeof msg.event === "string") {
        this.eventHandler?.(msg);
      } else if (msg.id !== undefined && this.pending.has(msg.id as string | number)) {
        const resolve = this.pending.get(msg.id as string | number)!;
        this.pending.delete(msg.id as string | number);
        resolve(msg as unknown as Res);
      } else if (msg.ok === false) {
        // an answer without id: the server refused the connection itself
        for (const resolve of this.pending.values()) resolve(msg as unknown as Res);
        this.pending.clear();
      }
    }
  }

  request(req: Req): Promise<Res> {
    const id = req.id ?? this.nextId++;
    return new Promise((resolve) => {
      if (this.closed) return resolve(closedAnswer(id));
      this.pending.set(id, resolve);
      this.out.write(JSON.stringify({ ...req, id }) + "\n");
    });
  }

  /**
   * The connection is gone: every request still waiting gets a failure, and
   * so does every later one. Nothing is kept per request once it is answered,
   * so a client that lives long (the agent's) does not grow with each request.
   */
  private onClose(): void {
    this.closed = true;
    for (const [id, resolve] of this.pending) resolve(closedAnswer(id));
    this.pending.clear();
    for (const h of this.closedHandlers) h();
  }

  onEvent(fn: (e: Record<string, unknown>) => void): void {
    this.eventHandler = fn;
  }

  /** Calls fn when the connection closes (at once if it already has). */
  onClosed(fn: () => void): void {
    if (this.closed) fn();
    else this.closedHandlers.push(fn);
  }

  close(): void {
    this.sock.end();
  }
}

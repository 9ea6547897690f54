// A stand-in for a language-model server: a real HTTP server on 127.0.0.1
// (a free port) that speaks the OpenAI-compatible chat-completions API the
// console's backend uses (POST {base}/chat/completions), and answers what
// the test scripted: plain text, tool calls (hostile ones included), raw
// bodies that are not JSON, slow answers, answers that never end, a
// connection cut in the middle, answers too large to read. It keeps every
// request it got, so a test can check what reached the model's prompt.

import type { Socket, TCPSocketListener } from "bun";

export interface ChatMessage {
  role: string;
  content: string | null;
}

export interface ChatRequest {
  model?: string;
  messages: ChatMessage[];
  tools?: { type: string; function: { name: string; description?: string; parameters?: unknown } }[];
  tool_choice?: unknown;
  temperature?: number;
}

export interface Received {
  path: string;
  authorization?: string;
  /** The request body, parsed; undefined when it was not JSON. */
  body?: ChatRequest;
  raw: string;
}

export type Scripted =
  /** An assistant message with this text. */
  | { kind: "text"; text: string }
  /** One tool call (more with `more`): `arguments` is sent as given (the API sends a JSON string). */
  | { kind: "call"; name: string; arguments: unknown; content?: string | null; more?: { name: string; arguments: unknown }[] }
  /** This object as choices[0].message, whatever its shape. */
  | { kind: "message"; message: unknown }
  /** This body as it is (not necessarily JSON), with this status. */
  | { kind: "raw"; body: string; status?: number; contentType?: string }
  /** The scripted answer, after a wait. */
  | { kind: "slow"; ms: number; then: Scripted }
  /** Headers at once, then a byte every `everyMs`, never ending. */
  | { kind: "trickle"; everyMs: number }
  /** The start of an answer, then the connection is cut. */
  | { kind: "cut" }
  /** A valid text answer padded with spaces to `bytes` bytes. */
  | { kind: "huge"; bytes: number; text: string };

const assistant = (message: object) => JSON.stringify({ id: "standin", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", ...message }, finish_reason: "stop" }] });

export function bodyOf(a: Scripted): string {
  switch (a.kind) {
    case "text":
      return assistant({ content: a.text });
    case "call": {
      const calls = [{ name: a.name, arguments: a.arguments }, ...(a.more ?? [])];
      return assistant({ content: a.content ?? null, tool_calls: calls.map((c, i) => ({ id: `call_${i}`, type: "function", function: c })) });
    }
    case "message":
      return JSON.stringify({ choices: [{ index: 0, message: a.message }] });
    default:
      throw new Error(`no plain body for a '${a.kind}' answer`);
  }
}

interface Conn {
  buf: Buffer;
  out: Buffer[];
  done: boolean;
  ending: boolean;
  timer?: ReturnType<typeof setInterval>;
}

/**
 * HTTP/1.1 by hand on a plain TCP listener, so that every misbehaviour is
 * real on the wire: a reply that stops half-way is a closed socket, a slow
 * one is a silent socket. One request per connection ("connection: close").
 */
export class LlmStandIn {
  readonly received: Received[] = [];
  private queue: Scripted[] = [];
  /** Answers when nothing is queued. */
  fallback: (req: Received) => Scripted = () => ({ kind: "text", text: "I can only help with this device." });

  private constructor(private listener: TCPSocketListener<Conn>) {}

  static start(): LlmStandIn {
    let self: LlmStandIn | undefined;
    const listener = Bun.listen<Conn>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          s.data = { buf: Buffer.alloc(0), out: [], done: false, ending: false };
        },
        data(s, chunk) {
          self!.onData(s, Buffer.from(chunk));
        },
        drain(s) {
          flush(s);
        },
        close(s) {
          clearInterval(s.data.timer);
        },
        error(s) {
          clearInterval(s.data.timer);
        },
      },
    });
    self = new LlmStandIn(listener);
    return self;
  }

  /** The API's base URL, as agent.toml's [llm] endpoint names it. */
  get url(): string {
    return `http://127.0.0.1:${this.listener.port}/v1`;
  }

  /** Queues answers for the next requests, in order. */
  answer(...a: Scripted[]): void {
    this.queue.push(...a);
  }

  /** The last request's system and user messages. */
  get last(): { system: string; user: string } | undefined {
    const m = this.received.at(-1)?.body?.messages;
    if (!m) return undefined;
    return { system: m.find((x) => x.role === "system")?.content ?? "", user: m.find((x) => x.role === "user")?.content ?? "" };
  }

  stop(): void {
    this.listener.stop(true);
  }

  private onData(s: Socket<Conn>, chunk: Buffer): void {
    const c = s.data;
    if (c.done) return;
    c.buf = Buffer.concat([c.buf, chunk]);
    const end = c.buf.indexOf("\r\n\r\n");
    if (end < 0) return;
    const head = c.buf.subarray(0, end).toString("latin1").split("\r\n");
    const [method, target] = head[0]!.split(" ");
    const headers = new Map(head.slice(1).map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()] as const));
    const length = Number(headers.get("content-length") ?? 0);
    if (c.buf.length < end + 4 + length) return;
    c.done = true;
    const raw = c.buf.subarray(end + 4, end + 4 + length).toString("utf8");
    let body: ChatRequest | undefined;
    try {
      body = JSON.parse(raw) as ChatRequest;
    } catch {
      body = undefined;
    }
    const path = new URL(target ?? "/", "http://x").pathname;
    const r: Received = { path, authorization: headers.get("authorization"), body, raw };
    this.received.push(r);
    if (method !== "POST" || path !== "/v1/chat/completions") return reply(s, 404, JSON.stringify({ error: { message: `no route ${method} ${path}` } }));
    void this.respond(s, this.queue.shift() ?? this.fallback(r));
  }

  private async respond(s: Socket<Conn>, a: Scripted): Promise<void> {
    switch (a.kind) {
      case "raw":
        return reply(s, a.status ?? 200, a.body, a.contentType);
      case "slow":
        await Bun.sleep(a.ms);
        return this.respond(s, a.then);
      case "trickle":
        send(s, head(200, 1 << 20) + '{"choices":[{"message":{"content":"');
        s.data.timer = setInterval(() => send(s, "."), a.everyMs);
        return;
      case "cut": {
        // Headers promise more than comes: the socket closes in the middle of a tool call.
        send(s, head(200, 4096) + '{"choices":[{"message":{"role":"assistant","tool_calls":[{"function":{"name":"power__reb');
        await Bun.sleep(20);
        s.data.ending = true;
        flush(s);
        return;
      }
      case "huge": {
        const json = assistant({ content: a.text });
        return reply(s, 200, json.replace(/}$/, `${" ".repeat(Math.max(0, a.bytes - json.length))}}`));
      }
      default:
        return reply(s, 200, bodyOf(a));
    }
  }
}

const REASONS: Record<number, string> = { 200: "OK", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable" };

function head(status: number, length: number, contentType = "application/json"): string {
  return `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}\r\ncontent-type: ${contentType}\r\ncontent-length: ${length}\r\nconnection: close\r\n\r\n`;
}

function reply(s: Socket<Conn>, status: number, body: string, contentType?: string): void {
  const bytes = Buffer.from(body);
  send(s, head(status, bytes.length, contentType));
  send(s, bytes);
  s.data.ending = true;
  flush(s);
}

function send(s: Socket<Conn>, data: string | Buffer): void {
  s.data.out.push(typeof data === "string" ? Buffer.from(data) : data);
  flush(s);
}

/** Writes what the socket takes now; the rest when it drains; then closes when the reply is complete. */
function flush(s: Socket<Conn>): void {
  const c = s.data;
  while (c.out.length) {
    const next = c.out[0]!;
    const n = s.write(next);
    if (n < 0) return;
    if (n < next.length) {
      c.out[0] = next.subarray(n);
      return;
    }
    c.out.shift();
  }
  if (c.ending) s.end();
}

/** A loopback port where nothing listens (a server that is down). */
export function closedPort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

// A fuzzer for the supervisor's control socket: requests that must all be
// refused (wrong types, huge numbers, unknown fields and ops, deep nesting,
// invalid UTF-8, text that is not JSON, units that do not exist), sent over
// real connections, many at once, some a few bytes at a time, with silent
// clients and stalled half-written frames beside them. Pass: every line gets exactly one answer, and it is an error (reads
// of the unit list excepted); the supervisor stays up; no unit changes state
// or process. Used by `make test` (a few hundred cases) and `make fuzz`.

import { rng } from "../../agents/models/train.ts";
import { ALL_OPS } from "../../init/control/protocol.ts";

export interface FuzzCase {
  /** The bytes of one line, without its newline. */
  line: Uint8Array;
  /** What was generated, for a report. */
  what: string;
}

const enc = new TextEncoder();
const text = (s: string, what: string): FuzzCase => ({ line: enc.encode(s), what });

/** Values of every JSON type, the wrong ones included. */
function anyValue(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * 12);
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return [1e308, -1e308, -1, 0, 2 ** 53 + 1, 4194305, 1.5, -0][Math.floor(r() * 8)];
    case 3: return "x".repeat(Math.floor(r() * 3000));
    case 4: return "\u0000\u001b[2J\u202e" + String.fromCharCode(0xd800);
    case 5: return depth < 3 ? [anyValue(r, depth + 1), anyValue(r, depth + 1)] : [];
    case 6: return depth < 3 ? { a: anyValue(r, depth + 1), __proto__x: 1, constructor: "x" } : {};
    case 7: return `fz-${Math.floor(r() * 1e6)}`;
    case 8: return "../../etc/passwd";
    case 9: return "SIGKILL";
    case 10: return ["80/tcp", "99999/tcp", "x"];
    default: return "";
  }
}

/** One case; `units` are the names that exist, which requests must never name for a change. */
export function fuzzCase(r: () => number, units: readonly string[]): FuzzCase {
  const kind = Math.floor(r() * 10);
  const op = r() < 0.8 ? ALL_OPS[Math.floor(r() * ALL_OPS.length)]! : ["", "LIST", "shutdown", "exec", "__proto__"][Math.floor(r() * 5)]!;
  // A change is only ever asked of units that do not exist: no valid change can slip through.
  let unit = `fz-${Math.floor(r() * 1e6)}`;
  while (units.includes(unit)) unit += "x";
  switch (kind) {
    case 0: {
      // A known op with wrong or missing fields.
      const req: Record<string, unknown> = { op };
      for (const f of ["id", "unit", "lines", "limits", "frozen", "reason", "pid", "how", "logs", "event", "signal", "ports"]) if (r() < 0.4) req[f] = anyValue(r);
      if (req.unit !== undefined && typeof req.unit === "string") req.unit = unit;
      if (op === "contain") req.pid = [0, 1, -5, 4194305, 2 ** 40, "1"][Math.floor(r() * 6)];
      return text(JSON.stringify(req), `${op} with wrong fields`);
    }
    case 1: {
      // A well-formed change to a unit that does not exist.
      const reqs: Record<string, unknown>[] = [
        { op: "stop", unit }, { op: "restart", unit }, { op: "start", unit }, { op: "freeze", unit, frozen: true },
        { op: "mark-failed", unit, reason: "fuzz" }, { op: "set-limits", unit, limits: { cpu_max: "50%" } },
        { op: "signal", unit, signal: "SIGHUP" }, { op: "set-ports", unit, ports: ["8080/tcp"] }, { op: "logs", unit },
      ];
      const req = reqs[Math.floor(r() * reqs.length)]!;
      return text(JSON.stringify({ id: Math.floor(r() * 1000), ...req }), `${req.op} of a unit that does not exist`);
    }
    case 2: {
      // Unknown fields and a known op's values out of range.
      const req = { op: "set-limits", unit, limits: { cpu_weight: [0, 1e9, -3, "x"][Math.floor(r() * 4)], nope: 1 }, extra: anyValue(r) };
      return text(JSON.stringify(req), "set-limits out of range");
    }
    case 3: {
      const depth = 50 + Math.floor(r() * 2000);
      return text(`{"op":"status","unit":${"[".repeat(depth)}${"]".repeat(depth)}}`, `nesting ${depth} deep`);
    }
    case 4: {
      // Invalid UTF-8 inside a string, and raw control bytes.
      const head = enc.encode(`{"op":"status","unit":"`);
      const bad = new Uint8Array([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0x01, 0x1b]);
      return { line: new Uint8Array([...head, ...bad, ...enc.encode(`"}`)]), what: "invalid UTF-8" };
    }
    case 5:
      return text(["garbage", "{", "}", "[]", "null", "42", '"op"', "{op:list}", "{\"op\":\"list\"", "\u0000\u0000"][Math.floor(r() * 10)]!, "not a JSON object");
    case 6:
      return text(JSON.stringify({ op: "publish", event: { event: ["network", "supervisor", 1][Math.floor(r() * 3)], kind: anyValue(r), message: anyValue(r), time: anyValue(r) } }), "publish with wrong fields");
    case 7:
      return text(JSON.stringify({ op: "contain", pid: [1, 0, -1, 4194305, 1e308][Math.floor(r() * 5)], how: anyValue(r) }), "contain of a process that must never be touched");
    case 8:
      return text(JSON.stringify({ id: anyValue(r), op: "list", [`k${Math.floor(r() * 100)}`]: anyValue(r) }), "list with odd id and unknown fields");
    default:
      return text(JSON.stringify({ op, unit: "x".repeat(201 + Math.floor(r() * 5000)) }), `${op} with an over-long unit name`);
  }
}

export function cases(n: number, seed: number, units: readonly string[]): FuzzCase[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => fuzzCase(r, units));
}

/** Whether an answer is acceptable for a case: an error, or the unit list for a plain list request. */
export function acceptable(answer: Record<string, unknown>): boolean {
  if (answer.ok === false) return typeof (answer.error as { message?: unknown })?.message === "string";
  // What may succeed changes nothing: the unit list, a subscription, a reload with no file changed, a notice.
  const res = answer.result as { subscribed?: boolean; delivered?: number; added?: string[]; removed?: string[]; changed?: string[] } | unknown[];
  if (answer.ok !== true) return false;
  if (Array.isArray(res)) return true;
  if (res?.subscribed === true || typeof res?.delivered === "number") return true;
  return Array.isArray(res?.added) && res.added.length === 0 && res.removed!.length === 0 && res.changed!.length === 0;
}

/** A raw line client: writes one line, waits for one answer line (or the end of the connection). */
export class LineClient {
  private buf = "";
  private waiting: ((line: string | undefined) => void)[] = [];
  private lines: string[] = [];
  closed = false;

  private constructor(private sock: import("bun").Socket<undefined>) {}

  static async connect(path: string): Promise<LineClient> {
    let c: LineClient | undefined;
    const sock = await Bun.connect({
      unix: path,
      socket: {
        data(_s, chunk) {
          c?.onData(Buffer.from(chunk).toString("utf8"));
        },
        close() {
          if (!c) return;
          c.closed = true;
          for (const w of c.waiting.splice(0)) w(undefined);
        },
      },
    });
    c = new LineClient(sock);
    return c;
  }

  private onData(t: string): void {
    this.buf += t;
    for (let nl = this.buf.indexOf("\n"); nl >= 0; nl = this.buf.indexOf("\n")) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const w = this.waiting.shift();
      if (w) w(line);
      else this.lines.push(line);
    }
  }

  write(bytes: Uint8Array | string): void {
    this.sock.write(bytes);
  }

  /** The next answer line; undefined when the connection ended; "TIMEOUT" after `ms`. */
  next(ms = 5000): Promise<string | undefined> {
    const ready = this.lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(done), 1);
        resolve("TIMEOUT");
      }, ms);
      const done = (l: string | undefined) => {
        clearTimeout(t);
        resolve(l);
      };
      this.waiting.push(done);
    });
  }

  /** Sends a line and returns its answer. */
  async ask(line: Uint8Array | string, ms = 5000): Promise<string | undefined> {
    this.write(typeof line === "string" ? `${line}\n` : new Uint8Array([...line, 0x0a]));
    return this.next(ms);
  }

  close(): void {
    this.sock.end();
  }
}

export interface FuzzReport {
  cases: number;
  refused: number;
  /** Lines whose answer was missing, late or not acceptable: each with the seed's case index. */
  bad: string[];
  concurrentClients: number;
  stalledClients: number;
}

/**
 * Runs `n` cases from `seed` against the control socket at `sock`, with
 * `concurrent` clients at once and `stalled` clients holding half-written
 * frames meanwhile, plus one 16 MiB line. The caller checks that the
 * supervisor is still up and its units unchanged.
 */
export async function fuzzControl(sock: string, n: number, seed: number, units: readonly string[], concurrent = 100, stalled = 20): Promise<FuzzReport> {
  const all = cases(n, seed, units);
  const bad: string[] = [];
  let refused = 0;
  const stallers = await Promise.all(Array.from({ length: stalled }, () => LineClient.connect(sock)));
  // A third connect and say nothing; the others stop halfway through a request.
  stallers.forEach((s, i) => {
    if (i % 3) s.write(i % 3 === 1 ? '{"op":"li' : new Uint8Array([0x7b, 0x22, 0xff]));
  });
  // The cases, spread over `concurrent` clients working at the same time.
  const per = Math.ceil(all.length / concurrent);
  await Promise.all(
    Array.from({ length: concurrent }, async (_, k) => {
      const c = await LineClient.connect(sock);
      for (let i = k * per; i < Math.min(all.length, (k + 1) * per); i++) {
        if (c.closed) {
          bad.push(`case ${i} (${all[i]!.what}): the supervisor closed the connection`);
          break;
        }
        let answer = await c.ask(all[i]!.line);
        let parsed: Record<string, unknown> | undefined;
        for (;;) {
          try {
            parsed = answer && answer !== "TIMEOUT" ? (JSON.parse(answer) as Record<string, unknown>) : undefined;
          } catch {
            parsed = undefined;
          }
          // After a subscription, events may come in between: only answers count.
          if (parsed?.event === undefined) break;
          answer = await c.next();
        }
        if (!parsed || !acceptable(parsed)) bad.push(`case ${i} (${all[i]!.what}): ${answer === "TIMEOUT" ? "no answer within 5 s" : `answer ${String(answer).slice(0, 200)}`}`);
        else if (parsed.ok === false) refused++;
      }
      // Every tenth client then writes unit lists a few bytes at a time, cutting characters
      // of its ids in two: each answer must carry its id whole.
      if (k % 10 === 9) {
        for (let j = 0; j < 10 && !c.closed; j++) {
          const id = `é-${k}-${j}-漢🙂`;
          const bytes = enc.encode(`${JSON.stringify({ id, op: "list" })}\n`);
          for (let p = 0; p < bytes.length; p += 1 + (p % 3)) {
            c.write(bytes.subarray(p, p + 1 + (p % 3)));
            await Bun.sleep(0);
          }
          const answer = await c.next();
          let got: unknown = answer;
          try {
            got = answer && answer !== "TIMEOUT" ? (JSON.parse(answer) as { id?: unknown }).id : answer;
          } catch {
            // not JSON: reported with the line below
          }
          if (got !== id) bad.push(`a list written a few bytes at a time (client ${k}): answered with id ${JSON.stringify(got)}, not ${JSON.stringify(id)}`);
        }
      }
      c.close();
    }),
  );
  // One line of 16 MiB: refused as too large, and the connection closed.
  const big = await LineClient.connect(sock);
  big.write("a".repeat(16 * 1024 * 1024));
  const bigAnswer = await big.next(30_000);
  if (!bigAnswer || !/"too-large"/.test(bigAnswer)) bad.push(`16 MiB line: answer ${String(bigAnswer).slice(0, 200)}`);
  big.close();
  for (const s of stallers) s.close();
  return { cases: all.length, refused, bad, concurrentClients: concurrent, stalledClients: stalled };
}

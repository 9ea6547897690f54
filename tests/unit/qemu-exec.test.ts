// The guest's exec helper (qemu/guest/qemu-exec.c), compiled here and driven
// over a unix socket with the byte protocol the host speaks on the virtio port.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket, Subprocess, UnixSocketListener } from "bun";

const SRC = join(import.meta.dirname, "../../qemu/guest/qemu-exec.c");

/** The host's end of one connection the helper made to our socket. */
class Host {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;

  constructor(private sock: Socket<undefined>) {}

  received(data: Uint8Array): void {
    this.buf = Buffer.concat([this.buf, data]);
    this.wake?.();
  }

  send(data: string | Uint8Array): void {
    this.sock.write(data);
  }

  run(script: string): void {
    const body = Buffer.from(script);
    this.send(`RUN ${body.length}\n`);
    this.send(body);
  }

  hangUp(): void {
    this.sock.end();
  }

  /** Waits until `take` can cut something off the front of what was received. */
  private async next<T>(take: () => T | undefined, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = take();
      if (got !== undefined) return got;
      if (Date.now() > deadline) throw new Error(`timed out; unread: ${JSON.stringify(this.buf.toString("latin1"))}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  line(): Promise<string> {
    return this.next(() => {
      const nl = this.buf.indexOf(10);
      if (nl < 0) return undefined;
      const line = this.buf.subarray(0, nl).toString("latin1");
      this.buf = this.buf.subarray(nl + 1);
      return line;
    });
  }

  private bytes(len: number): Promise<Buffer> {
    return this.next(() => {
      if (this.buf.length < len) return undefined;
      const data = this.buf.subarray(0, len);
      this.buf = this.buf.subarray(len);
      return data;
    });
  }

  /** Reads OUT frames up to the EXIT line: the script's output and exit code. */
  async result(): Promise<{ code: number; out: Buffer }> {
    const chunks: Buffer[] = [];
    for (;;) {
      const line = await this.line();
      const out = /^OUT (\d+)$/.exec(line);
      const exit = /^EXIT (\d+)$/.exec(line);
      if (out) chunks.push(await this.bytes(Number(out[1])));
      else if (exit) return { code: Number(exit[1]), out: Buffer.concat(chunks) };
      else throw new Error(`unexpected line while a script runs: ${line}`);
    }
  }
}

describe("qemu-exec protocol", () => {
  let dir: string;
  let server: UnixSocketListener<undefined>;
  let helper: Subprocess;
  let host: Host;
  // Connections from the helper, in the order they were made.
  const waiting: ((h: Host) => void)[] = [];
  const accepted: Host[] = [];
  const nextConnection = () => new Promise<Host>((resolve) => (accepted.length ? resolve(accepted.shift()!) : waiting.push(resolve)));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "paio-exec-"));
    const bin = join(dir, "qemu-exec");
    const cc = Bun.spawnSync(["gcc", "-static", "-Os", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-o", bin, SRC], { stderr: "pipe" });
    if (cc.exitCode !== 0) throw new Error(cc.stderr.toString());

    const sockPath = join(dir, "exec.sock");
    let current: Host | undefined;
    server = Bun.listen({
      unix: sockPath,
      socket: {
        open(s) {
          current = new Host(s);
          const w = waiting.shift();
          if (w) w(current);
          else accepted.push(current);
        },
        data(_s, d) {
          current?.received(d);
        },
      },
    });
    helper = Bun.spawn([bin, sockPath], { stdout: "ignore", stderr: "ignore" });
    host = await nextConnection();
  }, 60_000);

  afterAll(() => {
    helper?.kill("SIGKILL");
    server?.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  test("every HELLO is answered with the ready line", async () => {
    host.send("HELLO\nHELLO\n");
    expect(await host.line()).toBe("PAIO-EXEC-READY 2");
    expect(await host.line()).toBe("PAIO-EXEC-READY 2");
  });

  test("a script's stdout and stderr come back in order, then its exit status", async () => {
    host.run("echo hi; echo err >&2; exit 3\n");
    const { code, out } = await host.result();
    expect(out.toString()).toBe("hi\nerr\n");
    expect(code).toBe(3);
  });

  test("binary output comes back byte for byte", async () => {
    host.run("printf '\\000\\001\\377OUT 5\\n'\n");
    const { code, out } = await host.result();
    expect([...out]).toEqual([0, 1, 255, ...Buffer.from("OUT 5\n")]);
    expect(code).toBe(0);
  });

  test("scripts run with a fixed environment, and their files are removed", async () => {
    host.run('echo "$TERM $HOME $PATH"\n');
    const { out } = await host.result();
    expect(out.toString()).toBe("dumb /root /usr/sbin:/usr/bin:/sbin:/bin\n");
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith(`paio-exec.${helper.pid}.`))).toEqual([]);
  });

  test("KILL ends a running script, and what it started, with status 137", async () => {
    host.run("echo started; sleep 30 & wait\n");
    expect(await host.line()).toBe("OUT 8");
    expect(await host.line()).toBe("started");
    host.send("KILL\n");
    expect((await host.result()).code).toBe(137);
  });

  test("HELLO is answered while a script runs; a second RUN is refused and skipped", async () => {
    host.run("sleep 0.5; echo done\n");
    host.send("HELLO\n");
    expect(await host.line()).toBe("PAIO-EXEC-READY 2");
    host.run("echo never\n");
    expect(await host.line()).toBe("ERR busy: a script is running");
    const { code, out } = await host.result();
    expect(out.toString()).toBe("done\n");
    expect(code).toBe(0);
  });

  test("garbage gets ERR lines and the helper keeps serving", async () => {
    host.send("BOGUS\n");
    host.send("RUN abc\n");
    host.send("RUN -1\n");
    host.send(`${"x".repeat(5000)}\n`);
    host.send(new Uint8Array([0, 255, 10]));
    host.send("HELLO\n");
    expect(await host.line()).toBe("ERR unknown command");
    expect(await host.line()).toBe("ERR bad RUN length");
    expect(await host.line()).toBe("ERR bad RUN length");
    expect(await host.line()).toBe("ERR line too long");
    expect(await host.line()).toBe("ERR unknown command");
    expect(await host.line()).toBe("PAIO-EXEC-READY 2");
    host.run("exit 0\n");
    expect((await host.result()).code).toBe(0);
  });

  test("after the host hangs up, the helper connects again", async () => {
    host.hangUp();
    host = await nextConnection();
    host.send("HELLO\n");
    expect(await host.line()).toBe("PAIO-EXEC-READY 2");
  });
});

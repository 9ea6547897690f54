// The guest's exec helper (qemu/guest/qemu-exec.c), compiled here and driven
// over a unix socket with the byte protocol the host speaks on the virtio port.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket, Subprocess, UnixSocketListener } from "bun";
import { ExecWire } from "../helpers/exec-wire.ts";

const SRC = join(import.meta.dirname, "../../qemu/guest/qemu-exec.c");

/** The host's end of one connection the helper made to our socket. */
class Host extends ExecWire {
  constructor(private sock: Socket<undefined>) {
    super();
  }

  send(data: string | Uint8Array): void {
    this.sock.write(data);
  }

  hangUp(): void {
    this.sock.end();
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

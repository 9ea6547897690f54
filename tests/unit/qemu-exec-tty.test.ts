// The guest's exec helper (qemu/guest/qemu-exec.c) on a terminal, as on the
// Raspberry Pi's UART under QEMU: it must put the line in raw mode so that
// the byte protocol passes unchanged. A small python3 relay opens a
// pseudo-terminal pair; the helper runs on the slave, the test speaks the
// protocol on the master through the relay's stdin and stdout.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ExecWire } from "../helpers/exec-wire.ts";

const SRC = join(import.meta.dirname, "../../qemu/guest/qemu-exec.c");

// Prints the slave's name, then copies stdin to the master and the master to
// stdout, byte for byte, until stdin ends. The relay keeps its own slave
// descriptor open so the master never reads EIO before the helper opens it.
const RELAY = `
import os, pty, select, sys
m, s = pty.openpty()
os.write(1, (os.ttyname(s) + "\\n").encode())
to_master = b""
stdin_open = True
while stdin_open or to_master:
    r = [m] + ([0] if stdin_open else [])
    w = [m] if to_master else []
    readable, writable, _ = select.select(r, w, [])
    if 0 in readable:
        d = os.read(0, 65536)
        if d:
            to_master += d
        else:
            stdin_open = False
    if m in writable:
        n = os.write(m, to_master)
        to_master = to_master[n:]
    if m in readable:
        os.write(1, os.read(m, 65536))
`;

/** The host's end of the terminal: what the helper wrote, parsed as the protocol. */
class Line extends ExecWire {
  constructor(private relay: Subprocess<"pipe", "pipe", "inherit">) {
    super();
    void (async () => {
      for await (const chunk of relay.stdout) this.received(chunk);
    })();
  }

  send(data: string | Uint8Array): void {
    this.relay.stdin.write(data);
    this.relay.stdin.flush();
  }

  /** Says HELLO until the helper answers, as the host's ExecClient does; drops what came before. */
  async handshake(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      this.send("HELLO\n");
      try {
        for (;;) if ((await this.line(500)) === "PAIO-EXEC-READY 2") break;
      } catch {
        continue;
      }
      // Answers to earlier HELLOs may still be on their way.
      await Bun.sleep(300);
      this.discard();
      return;
    }
    throw new Error("the helper never answered HELLO on the terminal");
  }

  /**
   * PUT as the host's ExecClient does it: the file's bytes only as the
   * helper grants them. Returns the final answer and the largest grant seen
   * (what may be in the terminal's buffers at once). stopAfter: stop sending
   * once that many bytes went, as a host that vanished would.
   */
  async put(data: Uint8Array, mode: string, path: string, stopAfter = Infinity): Promise<{ answer: string; largest: number }> {
    this.send(`PUT ${data.length} ${mode} ${createHash("sha256").update(data).digest("hex")} ${path}\n`);
    let sent = 0;
    let granted = 0;
    let largest = 0;
    for (;;) {
      const line = await this.line(30_000);
      const more = /^MORE (\d+)$/.exec(line);
      if (!more) return { answer: line, largest };
      granted += Number(more[1]);
      largest = Math.max(largest, granted - sent);
      const end = Math.min(granted, stopAfter);
      if (end > sent) this.send(data.subarray(sent, end));
      sent = Math.max(sent, end);
      if (sent >= stopAfter) return { answer: "", largest };
    }
  }
}

/** A script that prints its own bytes after its first line: what arrived is what comes back. */
function echoScript(payload: Uint8Array): Uint8Array {
  let head = "";
  for (let k = 1; ; ) {
    head = `exec tail -c +${k} "$0"\n`;
    if (head.length + 1 === k) break;
    k = head.length + 1;
  }
  return Buffer.concat([Buffer.from(head), payload]);
}

describe("qemu-exec on a terminal", () => {
  let dir: string;
  let relay: Subprocess<"pipe", "pipe", "inherit">;
  let helper: Subprocess;
  let line: Line;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "paio-exec-tty-"));
    const bin = join(dir, "qemu-exec");
    const cc = Bun.spawnSync(["gcc", "-static", "-Os", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-o", bin, SRC], { stderr: "pipe" });
    if (cc.exitCode !== 0) throw new Error(cc.stderr.toString());
    relay = Bun.spawn(["python3", "-c", RELAY], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    // The first line is the slave's name; read it before the protocol parser takes over.
    const reader = relay.stdout.getReader();
    let first = "";
    while (!first.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the pty relay exited");
      first += Buffer.from(value).toString("latin1");
    }
    reader.releaseLock();
    const slave = first.slice(0, first.indexOf("\n"));
    expect(first.slice(first.indexOf("\n") + 1)).toBe("");
    line = new Line(relay);
    // A silent PUT is dropped after 2 s here (60 s in the image), so that the test can wait for it.
    helper = Bun.spawn([bin, slave], { stdout: "ignore", stderr: "inherit", env: { ...process.env, QEMU_EXEC_PUT_IDLE_MS: "2000" } });
    await line.handshake();
  }, 60_000);

  afterAll(() => {
    helper?.kill("SIGKILL");
    relay?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  test("HELLO is answered with a bare \\n: no echo, no CR added", async () => {
    line.send("HELLO\n");
    expect(await line.line()).toBe("PAIO-EXEC-READY 2");
    line.send("HELLO\n");
    expect(await line.line()).toBe("PAIO-EXEC-READY 2");
  });

  test("every byte value goes in and comes back unchanged: \\r, \\n, ^C, ^D, DEL, ^Q, ^S, high bytes", async () => {
    const all = Buffer.alloc(256 * 4);
    for (let i = 0; i < all.length; i++) all[i] = i % 256;
    const special = Buffer.from([13, 10, 3, 4, 0x7f, 0x11, 0x13, 0x1a, 0x16, 0x15, 0x17, 0x12, 0x0f, 0x1c, 0, 0x80, 0xff, 0xfe, 13, 13, 10]);
    const payload = Buffer.concat([special, all, special]);
    line.run(echoScript(payload));
    const { code, out } = await line.result();
    expect(code).toBe(0);
    expect(out.equals(payload)).toBe(true);
  });

  test("a larger binary script and its output pass intact", async () => {
    const payload = Buffer.alloc(48 * 1024);
    let x = 12345;
    for (let i = 0; i < payload.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      payload[i] = x >>> 24;
    }
    line.run(echoScript(payload));
    const { code, out } = await line.result();
    expect(code).toBe(0);
    expect(out.length).toBe(payload.length);
    expect(out.equals(payload)).toBe(true);
  });

  test("output with \\r\\n, ^C and high bytes comes back byte for byte, then the exit status", async () => {
    line.run(Buffer.from("printf 'a\\r\\nb\\003\\004\\177\\200\\377\\n'; exit 7\n"));
    const { code, out } = await line.result();
    expect([...out]).toEqual([0x61, 13, 10, 0x62, 3, 4, 0x7f, 0x80, 0xff, 10]);
    expect(code).toBe(7);
  });

  test("PUT: a binary file crosses the terminal byte for byte, never more than a small window at once", async () => {
    const data = Buffer.alloc(2 * 1024 * 1024 + 77);
    let x = 99991;
    for (let i = 0; i < data.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      data[i] = x >>> 24;
    }
    // Every byte value that a terminal could eat or translate, at the start.
    Buffer.from([13, 10, 3, 4, 0x7f, 0x11, 0x13, 0x1a, 0, 0xff]).copy(data);
    const target = join(dir, "put", "file.bin");
    const { answer, largest } = await line.put(data, "750", target);
    expect(answer).toBe(`OK ${createHash("sha256").update(data).digest("hex")}`);
    expect(readFileSync(target).equals(data)).toBe(true);
    expect(statSync(target).mode & 0o7777).toBe(0o750);
    // 32 KiB: far below what the kernel buffers for a terminal, so nothing is dropped without flow control.
    expect(largest).toBe(32 * 1024);
  }, 60_000);

  test("PUT: a host that stops sending mid-file (a serial line has no hang-up) leaves no file, and the helper serves again", async () => {
    const target = join(dir, "put", "cut.bin");
    const data = Buffer.alloc(200_000, 7);
    const { answer } = await line.put(data, "644", target, 50_000);
    expect(answer).toBe("");
    // What the helper granted for the bytes that did come goes unanswered.
    let next = await line.line(10_000);
    while (/^MORE \d+$/.test(next)) next = await line.line(10_000);
    expect(next).toBe(`ERR ${target}: no data for 2 s after 50000 of 200000 bytes; nothing was written there`);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(join(dir, "put")).filter((f) => f.startsWith(".paio-put."))).toEqual([]);
    line.send("HELLO\n");
    expect(await line.line()).toBe("PAIO-EXEC-READY 2");
  }, 30_000);

  test("KILL still reaches a running script", async () => {
    line.run(Buffer.from("echo started; sleep 30 & wait\n"));
    expect(await line.line()).toBe("OUT 8");
    expect(await line.line()).toBe("started");
    line.send("KILL\n");
    expect((await line.result()).code).toBe(137);
  });
});

// Host side of the exec port protocol spoken with the guest's qemu-exec helper
// (qemu/guest/qemu-exec.c) over a virtio-serial port:
//   host: HELLO\n                      guest: PAIO-EXEC-READY 1\n
//   host: RUN <len>\n<script bytes>    guest: OUT <len>\n<bytes> ... EXIT <code>\n
//   host: KILL\n                       (kills the running script: EXIT 137)
//   host: POWEROFF\n | REBOOT\n        guest: OK\n, then signals PID 1

import type { Socket } from "bun";
import { SocketWriter } from "../init/control/socket-writer.ts";

type Frame = { kind: "line"; line: string } | { kind: "out"; data: Uint8Array };

export class ExecClient {
  private buf = new Uint8Array(0);
  private frames: Frame[] = [];
  private wake: (() => void) | null = null;
  private closed = false;

  private out: SocketWriter;

  private constructor(private sock: Socket<undefined>) {
    this.out = new SocketWriter(sock);
  }

  static async connect(path: string): Promise<ExecClient> {
    let client: ExecClient | undefined;
    const sock = await Bun.connect({
      unix: path,
      socket: {
        data(_s, data) {
          client?.onData(data);
        },
        drain() {
          client?.out.drain();
        },
        close() {
          client?.onClose();
        },
        error() {
          client?.onClose();
        },
      },
    });
    client = new ExecClient(sock);
    return client;
  }

  private onData(data: Uint8Array): void {
    const merged = new Uint8Array(this.buf.length + data.length);
    merged.set(this.buf);
    merged.set(data, this.buf.length);
    this.buf = merged;
    this.parse();
    this.wake?.();
  }

  private onClose(): void {
    this.closed = true;
    this.wake?.();
  }

  private parse(): void {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl < 0) return;
      const line = new TextDecoder().decode(this.buf.subarray(0, nl));
      const out = line.match(/^OUT (\d+)$/);
      if (out) {
        const len = Number(out[1]);
        if (this.buf.length < nl + 1 + len) return; // wait for the whole frame
        this.frames.push({ kind: "out", data: this.buf.slice(nl + 1, nl + 1 + len) });
        this.buf = this.buf.slice(nl + 1 + len);
      } else {
        this.frames.push({ kind: "line", line });
        this.buf = this.buf.slice(nl + 1);
      }
    }
  }

  private async next(timeoutMs: number): Promise<Frame | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.closed) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
    return this.frames.shift();
  }

  private send(data: string | Uint8Array): void {
    this.out.write(data);
  }

  /** Says HELLO until the guest answers (its helper may not be running yet). */
  async handshake(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !this.closed) {
      this.send("HELLO\n");
      const frame = await this.next(1000);
      if (frame?.kind === "line" && frame.line.startsWith("PAIO-EXEC-READY")) {
        this.frames = []; // answers to earlier HELLOs
        return true;
      }
    }
    return false;
  }

  /**
   * Runs a script; output is passed to onOutput as it arrives. Resolves with
   * the exit code, or undefined if the time ran out or the connection closed.
   */
  async run(script: Uint8Array, onOutput: (data: Uint8Array) => void, timeoutMs: number): Promise<number | undefined> {
    this.send(`RUN ${script.length}\n`);
    this.send(script);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = await this.next(Math.max(0, deadline - Date.now()));
      if (!frame) return undefined;
      if (frame.kind === "out") onOutput(frame.data);
      else if (frame.line.startsWith("EXIT ")) return Number(frame.line.slice(5));
      else if (frame.line.startsWith("ERR ")) throw new Error(`guest exec helper: ${frame.line.slice(4)}`);
      // stray READY lines from repeated HELLOs are ignored
    }
  }

  kill(): void {
    if (!this.closed) this.send("KILL\n");
  }

  /** Asks the guest to power off (or reboot); true if it acknowledged. */
  async power(what: "POWEROFF" | "REBOOT", timeoutMs = 10_000): Promise<boolean> {
    this.send(`${what}\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = await this.next(Math.max(0, deadline - Date.now()));
      if (!frame) return false;
      if (frame.kind === "line" && frame.line === "OK") return true;
    }
  }

  close(): void {
    this.sock.end();
  }
}

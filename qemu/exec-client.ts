// Host side of the exec port protocol spoken with the guest's qemu-exec helper
// (qemu/guest/qemu-exec.c) over a virtio-serial port (a UART on the Pi):
//   host: HELLO\n                      guest: PAIO-EXEC-READY <version>\n
//   host: RUN <len>\n<script bytes>    guest: OUT <len>\n<bytes> ... EXIT <code>\n
//   host: KILL\n                       (kills the running script: EXIT 137)
//   host: PUT <len> <mode> <sha256> <path>\n
//                                      guest: MORE <n>\n (send n more bytes) ... OK <sha256>\n | ERR <reason>\n
//   host: POWEROFF\n | REBOOT\n        guest: OK\n, then signals PID 1
// Version 2 added PUT; a version 1 helper (an image built before) answers it
// with ERR, so put() refuses to try.

import type { Socket } from "bun";
import { closeSync, openSync, readSync } from "node:fs";
import { createHash } from "node:crypto";
import { SocketWriter } from "../init/control/socket-writer.ts";

/** The first protocol version with PUT. */
export const PUT_VERSION = 2;
/** Bytes read from the file and sent at once. */
const PUT_PIECE = 256 * 1024;

/** A host file to PUT: its size, mode and SHA-256, taken before the transfer. */
export interface PutSource {
  file: string;
  size: number;
  mode: number;
  sha256: string;
}

export type PutResult =
  | { ok: true; sha256: string }
  /** The guest refused or failed; reason starts with the guest path, as the guest says it. */
  | { ok: false; reason: string; changed: boolean };

type Frame = { kind: "line"; line: string } | { kind: "out"; data: Uint8Array };

export class ExecClient {
  private buf = new Uint8Array(0);
  private frames: Frame[] = [];
  private wake: (() => void) | null = null;
  private closed = false;
  /** The helper's protocol version, from its answer to HELLO. */
  version = 0;

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
        this.version = Number(/^PAIO-EXEC-READY (\d+)/.exec(frame.line)?.[1] ?? 1);
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

  /**
   * Sends a file: its bytes go as the guest grants them (MORE), read from
   * the file piece by piece, so neither side holds more than a window.
   * onProgress gets the bytes sent so far. Resolves with the guest's answer,
   * or undefined when the connection closed or the guest asked for nothing
   * within stallMs.
   */
  async put(src: PutSource, guestPath: string, onProgress?: (sent: number, total: number) => void, stallMs = 300_000): Promise<PutResult | undefined> {
    this.send(`PUT ${src.size} ${(src.mode & 0o7777).toString(8)} ${src.sha256} ${guestPath}\n`);
    const fd = openSync(src.file, "r");
    // What really went: a file changed since its SHA-256 was taken is told apart from damage on the way.
    const sent = createHash("sha256");
    let offset = 0;
    try {
      for (;;) {
        const frame = await this.next(stallMs);
        if (!frame) return undefined;
        if (frame.kind !== "line") continue;
        const more = /^MORE (\d+)$/.exec(frame.line);
        if (more) {
          let n = Math.min(Number(more[1]), src.size - offset);
          while (n > 0) {
            const piece = Buffer.alloc(Math.min(n, PUT_PIECE)); // zeros where a shrunk file ends
            let got = 0;
            while (got < piece.length) {
              const r = readSync(fd, piece, got, piece.length - got, offset + got);
              if (r === 0) break;
              got += r;
            }
            sent.update(piece);
            this.send(piece);
            offset += piece.length;
            n -= piece.length;
          }
          onProgress?.(offset, src.size);
          continue;
        }
        if (frame.line.startsWith("OK ")) return { ok: true, sha256: frame.line.slice(3) };
        if (frame.line.startsWith("ERR ")) {
          const changed = offset === src.size && sent.digest("hex") !== src.sha256;
          return { ok: false, reason: frame.line.slice(4), changed };
        }
        // stray READY lines from repeated HELLOs are ignored
      }
    } finally {
      closeSync(fd);
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

// Bun's socket.write() sends what the kernel takes right now and returns how
// much that was; the rest is the caller's to keep. This queue keeps it and
// sends it when the socket drains, so no reply is lost under load. A server
// gives it a limit: a peer that lets more than that pile up unread (it sends
// requests and never reads the answers, or a subscriber that stopped
// reading) is disconnected, so it cannot make the server hold every answer.

import type { Socket } from "bun";

/** What a server keeps unread for one peer before it drops the peer: many times any one answer. */
export const MAX_UNREAD_BYTES = 8 * 1024 * 1024;

export class SocketWriter {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private dropped = false;

  constructor(private sock: Socket<any>, private maxQueued = Infinity) {}

  write(data: string | Uint8Array): void {
    if (this.dropped) return;
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    if (this.queue.length > 0) {
      this.keep(bytes);
      return;
    }
    const n = this.sock.write(bytes);
    if (n < bytes.length) this.keep(bytes.subarray(Math.max(0, n)));
  }

  private keep(bytes: Uint8Array): void {
    if (this.queued + bytes.length > this.maxQueued) {
      // The peer is not reading: what it has not read is let go with the connection.
      this.dropped = true;
      this.queue = [];
      this.queued = 0;
      this.sock.terminate();
      return;
    }
    this.queue.push(bytes);
    this.queued += bytes.length;
  }

  /** Call from the socket's drain handler. */
  drain(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = this.sock.write(head);
      if (n < head.length) {
        this.queue[0] = head.subarray(Math.max(0, n));
        this.queued -= Math.max(0, n);
        return;
      }
      this.queue.shift();
      this.queued -= head.length;
    }
  }

  get pending(): number {
    return this.queued;
  }

  /** True once the peer was disconnected for not reading. */
  get droppedPeer(): boolean {
    return this.dropped;
  }
}

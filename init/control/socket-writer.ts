// Bun's socket.write() sends what the kernel takes right now and returns how
// much that was; the rest is the caller's to keep. This queue keeps it and
// sends it when the socket drains, so no reply is lost under load.

import type { Socket } from "bun";

export class SocketWriter {
  private queue: Uint8Array[] = [];

  constructor(private sock: Socket<any>) {}

  write(data: string | Uint8Array): void {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    if (this.queue.length > 0) {
      this.queue.push(bytes);
      return;
    }
    const n = this.sock.write(bytes);
    if (n < bytes.length) this.queue.push(bytes.subarray(Math.max(0, n)));
  }

  /** Call from the socket's drain handler. */
  drain(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = this.sock.write(head);
      if (n < head.length) {
        this.queue[0] = head.subarray(Math.max(0, n));
        return;
      }
      this.queue.shift();
    }
  }

  get pending(): number {
    return this.queue.reduce((n, b) => n + b.length, 0);
  }
}

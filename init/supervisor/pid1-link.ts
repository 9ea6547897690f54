// Readiness and liveness for PID 1. PID 1 hands the supervisor the write end
// of a pipe as a file descriptor named by PAIO_NOTIFY_FD: the supervisor
// writes "ready\n" once its units are started, then one byte every
// HEARTBEAT_MS from its event loop. A supervisor whose loop is stuck (a
// blocking read, an endless loop, SIGSTOP) falls silent, and PID 1 kills it;
// its units keep running and the next supervisor takes them back.

import { closeSync, constants, openSync, writeSync } from "node:fs";

export const HEARTBEAT_MS = 2000;

export class Pid1Link {
  private fd: number | undefined;

  /** Takes over the inherited descriptor: reopened close-on-exec, so units never inherit it. */
  constructor(env: Record<string, string | undefined>) {
    const n = Number(env.PAIO_NOTIFY_FD);
    if (!Number.isInteger(n) || n < 3) return;
    try {
      this.fd = openSync(`/proc/self/fd/${n}`, constants.O_WRONLY | constants.O_NONBLOCK);
      closeSync(n);
    } catch {
      this.fd = undefined; // not started by PID 1 (or no /proc): nobody to tell
    }
  }

  /** Says "ready" and starts the heartbeat. */
  ready(): void {
    if (this.fd === undefined) return;
    this.write("ready\n");
    setInterval(() => this.write("."), HEARTBEAT_MS).unref();
  }

  private write(text: string): void {
    if (this.fd === undefined) return;
    try {
      writeSync(this.fd, text);
    } catch {
      // EAGAIN: PID 1 has not read the last bytes yet; the next heartbeat will do
    }
  }
}

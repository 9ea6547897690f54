// Watches a guest's serial console: keeps the last lines for error messages,
// optionally echoes or records them, and lets a caller wait for a line.

import { appendFileSync } from "node:fs";

export class ConsoleWatcher {
  private tail: string[] = [];
  private partial = "";
  private waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  private all: string[] = [];
  private closed = false;
  private closeWaiters: (() => void)[] = [];

  constructor(
    stream: ReadableStream<Uint8Array>,
    private opts: { echo?: (line: string) => void; logFile?: string; keep?: number } = {},
  ) {
    void this.pump(stream);
  }

  private async pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        const text = this.partial + decoder.decode(chunk, { stream: true });
        const lines = text.split(/\r?\n/);
        this.partial = lines.pop() ?? "";
        for (const line of lines) this.onLine(line);
      }
    } catch {
      // the stream ends when QEMU exits
    }
    if (this.partial) this.onLine(this.partial);
    this.closed = true;
    for (const w of this.closeWaiters) w();
  }

  private onLine(raw: string): void {
    // Drop terminal control sequences and stray carriage returns.
    const line = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
    this.tail.push(line);
    if (this.tail.length > (this.opts.keep ?? 40)) this.tail.shift();
    this.all.push(line);
    if (this.opts.logFile) appendFileSync(this.opts.logFile, line + "\n");
    this.opts.echo?.(line);
    this.waiters = this.waiters.filter((w) => {
      if (!w.re.test(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** Resolves with the first line (seen so far or later) that matches. */
  waitFor(re: RegExp): Promise<string> {
    const seen = this.all.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ re, resolve }));
  }

  /** Resolves when the console stream ends (QEMU exited). */
  ended(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  lastLines(n = 20): string[] {
    return this.tail.slice(-n);
  }

  lines(): readonly string[] {
    return this.all;
  }
}

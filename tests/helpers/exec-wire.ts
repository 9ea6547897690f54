// The host's side of the exec helper's byte protocol (qemu/guest/qemu-exec.c),
// for the tests that drive the helper directly over a socket or a terminal:
// what arrived is buffered here and cut into lines, raw bytes and script
// results. Each test supplies how bytes are sent (send) and feeds what the
// helper wrote into received().

export abstract class ExecWire {
  protected buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;

  abstract send(data: string | Uint8Array): void;

  received(data: Uint8Array): void {
    this.buf = Buffer.concat([this.buf, data]);
    this.wake?.();
  }

  /** Forgets everything received so far. */
  protected discard(): void {
    this.buf = Buffer.alloc(0);
  }

  run(script: string | Uint8Array): void {
    const body = typeof script === "string" ? Buffer.from(script) : script;
    this.send(`RUN ${body.length}\n`);
    this.send(body);
  }

  /** Waits until `take` can cut something off the front of what was received. */
  private async next<T>(take: () => T | undefined, timeoutMs: number): Promise<T> {
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

  line(timeoutMs = 10_000): Promise<string> {
    return this.next(() => {
      const nl = this.buf.indexOf(10);
      if (nl < 0) return undefined;
      const line = this.buf.subarray(0, nl).toString("latin1");
      this.buf = this.buf.subarray(nl + 1);
      return line;
    }, timeoutMs);
  }

  private bytes(len: number): Promise<Buffer> {
    return this.next(() => {
      if (this.buf.length < len) return undefined;
      const data = this.buf.subarray(0, len);
      this.buf = this.buf.subarray(len);
      return data;
    }, 10_000);
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
      else throw new Error(`unexpected line while a script runs: ${JSON.stringify(line)}`);
    }
  }
}

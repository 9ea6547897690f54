// The guest's exec helper (qemu/guest/qemu-exec.c), driven on the host over a
// unix socket with the same protocol the QEMU runner speaks.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ExecClient } from "../../qemu/exec-client.ts";

const SRC = join(import.meta.dirname, "../../qemu/guest/qemu-exec.c");

describe("qemu-exec protocol", () => {
  let dir: string;
  let helper: Subprocess;
  let client: ExecClient;
  let raw: { write(s: string): void; received(): string; clear(): void };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "paio-exec-"));
    const bin = join(dir, "qemu-exec");
    const cc = Bun.spawnSync(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-o", bin, SRC], { stderr: "pipe" });
    if (cc.exitCode !== 0) throw new Error(cc.stderr.toString());
    // Two listening sockets: one for the typed client, one for raw protocol abuse.
    const sockPath = join(dir, "exec.sock");
    const accepted = Promise.withResolvers<void>();
    let toClient: ((d: Uint8Array) => void) | undefined;
    const server = Bun.listen({
      unix: sockPath,
      socket: {
        open(s) {
          serverSide = s;
          accepted.resolve();
        },
        data(_s, d) {
          toClient?.(d);
        },
      },
    });
    let serverSide: import("bun").Socket | undefined;
    helper = Bun.spawn([bin, sockPath], { stdout: "ignore", stderr: "ignore" });
    await accepted.promise;
    server.stop();
    // Bridge: a unix socket pair between the helper's connection and an ExecClient.
    const bridgePath = join(dir, "bridge.sock");
    const bridgeAccepted = Promise.withResolvers<import("bun").Socket>();
    Bun.listen({
      unix: bridgePath,
      socket: {
        open(s) {
          bridgeAccepted.resolve(s);
        },
        data(_s, d) {
          serverSide!.write(d);
        },
      },
    });
    client = await ExecClient.connect(bridgePath);
    const bridge = await bridgeAccepted.promise;
    let rawBuf = "";
    let rawMode = false;
    toClient = (d) => {
      if (rawMode) rawBuf += new TextDecoder().decode(d);
      else bridge.write(d);
    };
    raw = {
      write(s) {
        rawMode = true;
        serverSide!.write(s);
      },
      received: () => rawBuf,
      clear() {
        rawBuf = "";
        rawMode = false;
      },
    };
  }, 30_000);

  afterAll(() => {
    helper?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(script: string): Promise<{ code: number | undefined; out: Uint8Array }> {
    const chunks: Uint8Array[] = [];
    const code = await client.run(new TextEncoder().encode(script), (d) => chunks.push(d), 10_000);
    return { code, out: Buffer.concat(chunks) };
  }

  test("HELLO is answered with the ready line", async () => {
    expect(await client.handshake(5000)).toBe(true);
  });

  test("a script's stdout and stderr come back, and its exit status", async () => {
    const { code, out } = await run("echo hi; echo err >&2; exit 3\n");
    expect(code).toBe(3);
    expect(Buffer.from(out).toString()).toBe("hi\nerr\n");
  });

  test("binary output comes back byte for byte", async () => {
    const { code, out } = await run("printf '\\000\\001\\377OUT 5\\n'\n");
    expect(code).toBe(0);
    expect([...out]).toEqual([0, 1, 255, ...new TextEncoder().encode("OUT 5\n")]);
  });

  test("KILL ends a running script with status 137", async () => {
    const chunks: Uint8Array[] = [];
    const pending = client.run(new TextEncoder().encode("echo started; sleep 30\n"), (d) => chunks.push(d), 10_000);
    await Bun.sleep(300);
    client.kill();
    expect(await pending).toBe(137);
  });

  test("garbage gets an error and the helper keeps serving", async () => {
    raw.write("BOGUS\n");
    raw.write("RUN abc\n");
    raw.write("x".repeat(1000) + "\n");
    await Bun.sleep(300);
    expect(raw.received()).toBe("ERR unknown command\nERR bad RUN length\nERR line too long\n");
    raw.clear();
    const { code, out } = await run("echo still-alive\n");
    expect(code).toBe(0);
    expect(Buffer.from(out).toString()).toBe("still-alive\n");
  });
});

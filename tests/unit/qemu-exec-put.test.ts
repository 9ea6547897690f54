// PUT, the exec protocol's file transfer (qemu/guest/qemu-exec.c), driven
// over a unix socket as the host's ExecClient does on the virtio port: the
// host sends the file's bytes only as the guest grants them (MORE <n>), the
// guest checks their SHA-256 and renames a temporary file into place.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket, Subprocess, UnixSocketListener } from "bun";
import { SocketWriter } from "../../init/control/socket-writer.ts";
import { ExecClient, PUT_VERSION } from "../../qemu/exec-client.ts";
import { putSource } from "../../qemu/guest.ts";
import { ExecWire } from "../helpers/exec-wire.ts";

const SRC = join(import.meta.dirname, "../../qemu/guest/qemu-exec.c");
const WINDOW = 1 << 20;

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** The host's end of one connection the helper made to our socket. */
class Host extends ExecWire {
  readonly out: SocketWriter;

  constructor(private sock: Socket<undefined>) {
    super();
    this.out = new SocketWriter(sock);
  }

  send(data: string | Uint8Array): void {
    this.out.write(data);
  }

  hangUp(): void {
    this.sock.end();
  }

  override line(timeoutMs = 15_000): Promise<string> {
    return super.line(timeoutMs);
  }

  /**
   * Sends PUT and the file's bytes as the guest grants them; returns the
   * final answer, how much was granted at once, and the most bytes that
   * were ever on their way (sent, not yet covered by the guest's answers).
   * stopAfter: hang up (or just stop) once that many bytes were sent.
   */
  async put(data: Uint8Array, mode: string, path: string, opts: { sha?: string; stopAfter?: number } = {}): Promise<{ answer: string; first: number; granted: number }> {
    this.send(`PUT ${data.length} ${mode} ${opts.sha ?? sha256(data)} ${path}\n`);
    let sent = 0;
    let granted = 0;
    let first = -1;
    for (;;) {
      const line = await this.line();
      const more = /^MORE (\d+)$/.exec(line);
      if (!more) return { answer: line, first: Math.max(first, 0), granted };
      const n = Number(more[1]);
      if (first < 0) first = n;
      granted += n;
      expect(granted).toBeLessThanOrEqual(data.length);
      // Never more than a window ahead of what the guest has taken.
      expect(granted - sent).toBeLessThanOrEqual(WINDOW);
      while (sent < granted) {
        const end = Math.min(granted, sent + 65536, opts.stopAfter ?? Infinity);
        if (end <= sent) return { answer: "", first, granted };
        this.send(data.subarray(sent, end));
        sent = end;
      }
    }
  }
}

describe("qemu-exec PUT", () => {
  let dir: string;
  let files: string;
  let server: UnixSocketListener<undefined>;
  let helper: Subprocess;
  let host: Host;
  const waiting: ((h: Host) => void)[] = [];
  const accepted: Host[] = [];
  const nextConnection = () => new Promise<Host>((resolve) => (accepted.length ? resolve(accepted.shift()!) : waiting.push(resolve)));
  /** What lies in a directory besides the expected files: temporary files must not stay. */
  const leftovers = (d: string) => readdirSync(d).filter((f) => f.startsWith(".paio-put."));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "paio-exec-put-"));
    files = join(dir, "files");
    mkdirSync(files);
    const bin = join(dir, "qemu-exec");
    // The flags of the Makefile's build of the guest helper.
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
        drain() {
          current?.out.drain();
        },
      },
    });
    helper = Bun.spawn([bin, sockPath], { stdout: "ignore", stderr: "inherit" });
    host = await nextConnection();
  }, 60_000);

  afterAll(() => {
    helper?.kill("SIGKILL");
    server?.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  test("HELLO says protocol 2: PUT is understood", async () => {
    host.send("HELLO\n");
    expect(await host.line()).toBe("PAIO-EXEC-READY 2");
  });

  test("a few MB of random bytes arrive byte-exact, with their mode, in directories made on the way", async () => {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const target = join(files, "a", "b c", "payload.bin");
    const { answer, first } = await host.put(data, "640", target);
    expect(answer).toBe(`OK ${sha256(data)}`);
    // The first grant is one window, not the whole file.
    expect(first).toBe(WINDOW);
    const got = readFileSync(target);
    expect(got.length).toBe(data.length);
    expect(got.equals(data)).toBe(true);
    expect(statSync(target).mode & 0o7777).toBe(0o640);
    expect(statSync(join(files, "a")).mode & 0o777).toBe(0o755);
    expect(leftovers(join(files, "a", "b c"))).toEqual([]);
  });

  test("an executable keeps its mode; an empty file needs no bytes", async () => {
    const script = Buffer.from("#!/bin/sh\necho hi\n");
    expect((await host.put(script, "0755", join(files, "run.sh"))).answer).toBe(`OK ${sha256(script)}`);
    expect(statSync(join(files, "run.sh")).mode & 0o7777).toBe(0o755);
    const empty = await host.put(new Uint8Array(0), "600", join(files, "empty"));
    expect(empty).toEqual({ answer: `OK ${sha256(new Uint8Array(0))}`, first: 0, granted: 0 });
    expect(statSync(join(files, "empty")).size).toBe(0);
  });

  test("a file is replaced whole: the old one stays in place until every byte arrived", async () => {
    const target = join(files, "replace.bin");
    writeFileSync(target, "old contents");
    const data = randomBytes(3 * WINDOW);
    // Send a part, look, then the rest.
    host.send(`PUT ${data.length} 644 ${sha256(data)} ${target}\n`);
    expect(await host.line()).toBe(`MORE ${WINDOW}`);
    host.send(data.subarray(0, WINDOW));
    expect(await host.line()).toMatch(/^MORE \d+$/);
    expect(readFileSync(target, "utf8")).toBe("old contents");
    expect(leftovers(files).length).toBe(1);
    host.hangUp();
    host = await nextConnection();
    const { answer } = await host.put(data, "644", target);
    expect(answer).toBe(`OK ${sha256(data)}`);
    expect(readFileSync(target).equals(data)).toBe(true);
  });

  test("a relative path is refused before any byte is asked for, and the stream stays in step", async () => {
    const { answer, granted } = await host.put(Buffer.from("x"), "644", "data/file.txt");
    expect(answer).toBe("ERR data/file.txt: not an absolute path");
    expect(granted).toBe(0);
    host.send("HELLO\n");
    expect(await host.line()).toBe("PAIO-EXEC-READY 2");
  });

  test("a directory that cannot be made is refused, naming it and the reason", async () => {
    writeFileSync(join(files, "plain"), "a file, not a directory");
    const target = join(files, "plain", "sub", "f.bin");
    const { answer, granted } = await host.put(Buffer.from("data"), "644", target);
    expect(answer).toBe(`ERR ${target}: cannot create the directory ${join(files, "plain")}: Not a directory`);
    expect(granted).toBe(0);
  });

  test("a path that is a directory, or ends in /, is refused", async () => {
    expect((await host.put(Buffer.from("d"), "644", files)).answer).toBe(`ERR ${files}: is a directory`);
    expect((await host.put(Buffer.from("d"), "644", `${files}/`)).answer).toBe(`ERR ${files}/: names a directory, not a file`);
  });

  test("a file that cannot fit is refused before its bytes travel", async () => {
    const target = join(files, "huge.bin");
    host.send(`PUT 999999999999999 644 ${"0".repeat(64)} ${target}\n`);
    const answer = await host.line();
    expect(answer).toMatch(new RegExp(`^ERR ${target}: (No space left on device|File too large): 999999999999999 bytes do not fit`));
    expect(existsSync(target)).toBe(false);
    expect(leftovers(files)).toEqual([]);
  });

  test("bytes that do not match the announced SHA-256 are not put in place", async () => {
    const target = join(files, "damaged.bin");
    const data = randomBytes(200_000);
    const { answer } = await host.put(data, "644", target, { sha: "ab".repeat(32) });
    expect(answer).toBe(`ERR ${target}: SHA-256 mismatch: ${sha256(data)} arrived, the host sent ${"ab".repeat(32)}; nothing was written there`);
    expect(existsSync(target)).toBe(false);
    expect(leftovers(files)).toEqual([]);
  });

  test("malformed PUT lines get ERR and the helper keeps serving", async () => {
    host.send("PUT 10 644\n");
    host.send(`PUT x 644 ${"0".repeat(64)} /tmp/x\n`);
    host.send(`PUT 10 999 ${"0".repeat(64)} /tmp/x\n`);
    host.send(`PUT 10 644 abc /tmp/x\n`);
    host.send("HELLO\n");
    expect(await host.line()).toBe("ERR bad PUT: PUT <len> <mode> <sha256> <path> expected");
    expect(await host.line()).toBe("ERR bad PUT length");
    expect(await host.line()).toBe("ERR bad PUT mode (octal, up to 7777)");
    expect(await host.line()).toBe("ERR bad PUT SHA-256 (64 hex digits)");
    expect(await host.line()).toBe("PAIO-EXEC-READY 2");
  });

  test("a transfer cut off (the host hangs up mid-file) leaves nothing at the path", async () => {
    const target = join(files, "cut", "half.bin");
    const data = randomBytes(3 * 1024 * 1024);
    const { answer } = await host.put(data, "644", target, { stopAfter: 1_500_000 });
    expect(answer).toBe("");
    host.hangUp();
    host = await nextConnection();
    host.send("HELLO\n");
    expect(await host.line()).toBe("PAIO-EXEC-READY 2");
    expect(existsSync(target)).toBe(false);
    expect(leftovers(join(files, "cut"))).toEqual([]);
  });

  test("RUN still works after transfers, and sees the file", async () => {
    const target = join(files, "seen.txt");
    expect((await host.put(Buffer.from("hello\n"), "644", target)).answer).toMatch(/^OK /);
    const script = Buffer.from(`cat '${target}'\n`);
    host.send(`RUN ${script.length}\n`);
    host.send(script);
    expect(await host.line()).toBe("OUT 6");
    expect(await host.line()).toBe("hello");
    expect(await host.line()).toBe("EXIT 0");
  });
});

// The host's side, qemu/exec-client.ts, against the same helper: a relay
// stands where QEMU's chardev is (both ends connect to it, as on the host the
// client and, in the guest, the helper reach QEMU).
describe("ExecClient.put against the helper", () => {
  let dir: string;
  let helper: Subprocess;
  let client: ExecClient;
  const servers: UnixSocketListener<undefined>[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "paio-exec-client-put-"));
    const bin = join(dir, "qemu-exec");
    const cc = Bun.spawnSync(["gcc", "-static", "-Os", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-o", bin, SRC], { stderr: "pipe" });
    if (cc.exitCode !== 0) throw new Error(cc.stderr.toString());
    // Two listening sockets; what one end sends goes to the other, queued until the other is there.
    type End = { sock?: Socket<undefined>; out?: SocketWriter; pending: Uint8Array[] };
    const ends: [End, End] = [{ pending: [] }, { pending: [] }];
    const listen = (path: string, me: End, other: End) =>
      Bun.listen({
        unix: path,
        socket: {
          open(s) {
            me.sock = s;
            me.out = new SocketWriter(s);
            for (const p of me.pending) me.out.write(p);
            me.pending = [];
          },
          data(_s, d) {
            const copy = new Uint8Array(d);
            if (other.out) other.out.write(copy);
            else other.pending.push(copy);
          },
          drain() {
            me.out?.drain();
          },
          close() {
            other.sock?.end();
          },
        },
      });
    servers.push(listen(join(dir, "guest.sock"), ends[0], ends[1]), listen(join(dir, "host.sock"), ends[1], ends[0]));
    helper = Bun.spawn([bin, join(dir, "guest.sock")], { stdout: "ignore", stderr: "inherit" });
    client = await ExecClient.connect(join(dir, "host.sock"));
    expect(await client.handshake(10_000)).toBe(true);
  }, 60_000);

  afterAll(() => {
    client?.close();
    helper?.kill("SIGKILL");
    for (const s of servers) s.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  test("the handshake reads protocol version 2", () => {
    expect(client.version).toBe(PUT_VERSION);
  });

  test("a file goes in piece by piece, its progress rising to its size", async () => {
    const src = join(dir, "src.bin");
    writeFileSync(src, randomBytes(6 * 1024 * 1024 + 5), { mode: 0o604 });
    const target = join(dir, "in", "dst.bin");
    const seen: number[] = [];
    const info = putSource(src);
    expect(info.mode).toBe(0o604);
    const result = await client.put(info, target, (sent) => seen.push(sent));
    expect(result).toEqual({ ok: true, sha256: info.sha256 });
    expect(readFileSync(target).equals(readFileSync(src))).toBe(true);
    expect(statSync(target).mode & 0o7777).toBe(0o604);
    expect(seen.at(-1)).toBe(info.size);
    expect(seen.every((n, i) => i === 0 || n > seen[i - 1]!)).toBe(true);
  });

  test("the guest's refusal comes back as its reason", async () => {
    const src = join(dir, "small.txt");
    writeFileSync(src, "small\n");
    const result = await client.put(putSource(src), "relative/path.txt");
    expect(result).toEqual({ ok: false, reason: "relative/path.txt: not an absolute path", changed: false });
  });

  test("a file that changed after its SHA-256 was taken is refused, and told apart from damage", async () => {
    const src = join(dir, "changing.bin");
    writeFileSync(src, randomBytes(100_000));
    const info = putSource(src);
    writeFileSync(src, randomBytes(100_000));
    const target = join(dir, "in", "changing.bin");
    const result = await client.put(info, target);
    expect(result?.ok).toBe(false);
    expect(result).toMatchObject({ changed: true });
    expect(existsSync(target)).toBe(false);
    // The stream is still in step.
    const again = await client.put(putSource(src), target);
    expect(again?.ok).toBe(true);
  });
});

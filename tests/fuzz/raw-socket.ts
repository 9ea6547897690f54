// A Unix-socket client that writes and never reads, through libc itself: a
// socket client in Bun always takes what arrives, so only a plain descriptor
// can stand for a peer that stops reading (a stuck console, a slow script).

import { dlopen, FFIType, ptr } from "bun:ffi";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const POLLHUP = 0x10;

const libc = dlopen("libc.so.6", {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
});

export class SilentPeer {
  private constructor(private fd: number) {}

  static connect(path: string): SilentPeer {
    const fd = libc.symbols.socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) throw new Error("socket() failed");
    // struct sockaddr_un: a 2-byte family, then the path, NUL-terminated.
    const addr = new Uint8Array(110);
    new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
    addr.set(new TextEncoder().encode(path), 2);
    if (libc.symbols.connect(fd, ptr(addr), addr.length) !== 0) {
      libc.symbols.close(fd);
      throw new Error(`connect(${path}) failed`);
    }
    return new SilentPeer(fd);
  }

  /** Writes what the kernel takes now, without waiting; returns the bytes taken, -1 when the socket is full or the server closed it. */
  send(bytes: Uint8Array): number {
    return Number(libc.symbols.send(this.fd, ptr(bytes), bytes.length, MSG_DONTWAIT | MSG_NOSIGNAL));
  }

  /** Whether the server has closed the connection (poll says hang-up; what it sent may still wait to be read). */
  hungUp(): boolean {
    // struct pollfd: int fd, short events, short revents.
    const pfd = new Int32Array(2);
    pfd[0] = this.fd;
    libc.symbols.poll(ptr(pfd), 1, 0);
    return ((pfd[1]! >>> 16) & POLLHUP) !== 0;
  }

  /**
   * Reads what the server sent, until it closes the connection (true) or
   * `ms` pass with the connection still open (false); `bytes` is how much
   * there was to read.
   */
  async readToEnd(ms: number): Promise<{ ended: boolean; bytes: number }> {
    const buf = new Uint8Array(65536);
    let bytes = 0;
    for (const end = Date.now() + ms; Date.now() < end;) {
      const n = Number(libc.symbols.recv(this.fd, ptr(buf), buf.length, MSG_DONTWAIT));
      if (n === 0) return { ended: true, bytes };
      if (n > 0) bytes += n;
      else await Bun.sleep(5);
    }
    return { ended: false, bytes };
  }

  close(): void {
    libc.symbols.close(this.fd);
  }
}

/**
 * A peer that writes `requests` copies of `request` (one JSON line) without
 * reading an answer, until the server stops taking them. `during` runs then,
 * while the unread answers pile up (to look at the server's memory). Then the
 * peer reads: `dropped` says whether the server had closed the connection on
 * it, `unreadBytes` how much it had kept for it.
 */
export async function floodUnread(sock: string, request: string, requests: number, during: () => void = () => {}): Promise<{ sent: number; dropped: boolean; unreadBytes: number }> {
  const peer = SilentPeer.connect(sock);
  const batch = new TextEncoder().encode(`${request}\n`.repeat(100));
  let sent = 0;
  // Until all are written, or the server takes nothing more for 10 s (it dropped the peer, or is stuck: the read below tells which).
  for (let stuck = Date.now(); sent < requests && Date.now() - stuck < 10_000;) {
    if (peer.send(batch) === batch.length) {
      sent += 100;
      stuck = Date.now();
    } else if (peer.hungUp()) break;
    await Bun.sleep(1);
  }
  during();
  const { ended, bytes } = await peer.readToEnd(5000);
  peer.close();
  return { sent, dropped: ended, unreadBytes: bytes };
}

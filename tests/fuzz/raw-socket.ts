// A Unix-socket client that writes and never reads, through libc itself: a
// socket client in Bun always takes what arrives, so only a plain descriptor
// can stand for a peer that stops reading (a stuck console, a slow script).

import { dlopen, FFIType, ptr } from "bun:ffi";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const MSG_DONTWAIT = 0x40;

const libc = dlopen("libc.so.6", {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
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

  /** Writes what the kernel takes now, without waiting; returns the bytes taken (0 when the socket is full or closed). */
  send(bytes: Uint8Array): number {
    const n = Number(libc.symbols.send(this.fd, ptr(bytes), bytes.length, MSG_DONTWAIT));
    return Math.max(0, n);
  }

  close(): void {
    libc.symbols.close(this.fd);
  }
}

/**
 * A peer that writes `requests` copies of `request` (one JSON line) and never
 * reads an answer. Returns how many the server took before it stopped taking
 * them (it dropped the peer); the connection is closed after `holdMs`, so the
 * caller can look at the server's memory meanwhile.
 */
export async function floodUnread(sock: string, request: string, requests: number, holdMs = 5000): Promise<number> {
  const peer = SilentPeer.connect(sock);
  const batch = new TextEncoder().encode(`${request}\n`.repeat(100));
  let sent = 0;
  for (let idle = 0; sent < requests && idle < 200;) {
    if (peer.send(batch) === batch.length) {
      sent += 100;
      idle = 0;
    } else idle++;
    await Bun.sleep(1);
  }
  setTimeout(() => peer.close(), holdMs);
  return sent;
}

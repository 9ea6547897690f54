// Who is on the other end of a Unix socket: SO_PEERCRED through libc, and
// whether that user may read (group `paio`) or do everything (root).

import { dlopen, FFIType, ptr } from "bun:ffi";
import { readFileSync } from "node:fs";

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

type GetSockOpt = (fd: number, level: number, name: number, val: unknown, len: unknown) => number;
let getsockopt: GetSockOpt | undefined;

function libc() {
  if (!getsockopt) {
    const lib = dlopen("libc.so.6", {
      getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    });
    getsockopt = lib.symbols.getsockopt as unknown as GetSockOpt;
  }
  return getsockopt!;
}

export interface Peer {
  pid: number;
  uid: number;
  gid: number;
}

export function peerCredentials(fd: number): Peer | undefined {
  const cred = new Int32Array(3);
  const len = new Uint32Array([12]);
  const rc = libc()(fd, SOL_SOCKET, SO_PEERCRED, ptr(cred), ptr(len));
  if (rc !== 0) return undefined;
  return { pid: cred[0]!, uid: cred[1]!, gid: cred[2]! };
}

/** Members (by uid) and gid of group `name`, from /etc/passwd and /etc/group. */
function groupMembership(name: string, uid: number, gid: number): boolean {
  try {
    const group = readFileSync("/etc/group", "utf8").split("\n").map((l) => l.split(":")).find((f) => f[0] === name);
    if (!group) return false;
    if (Number(group[2]) === gid) return true;
    const user = readFileSync("/etc/passwd", "utf8").split("\n").map((l) => l.split(":")).find((f) => Number(f[2]) === uid);
    return !!user && (group[3] ?? "").split(",").includes(user[0]!);
  } catch {
    return false;
  }
}

export type Access = "all" | "read" | "none";

export function accessOf(peer: Peer | undefined): Access {
  if (!peer) return "none";
  if (peer.uid === 0) return "all";
  return groupMembership("paio", peer.uid, peer.gid) ? "read" : "none";
}

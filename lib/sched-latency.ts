// The per-task latency hint of PAIO's patched kernel (docs/kernel.md):
// sched_setattr()/sched_getattr() with struct sched_attr grown to 60 bytes
// (SCHED_ATTR_SIZE_VER2, the __s32 sched_latency_nice at offset 56) and the
// flag SCHED_FLAG_LATENCY_NICE. Also plain nice (setpriority), the fallback
// on kernels without any hint.
//
// The calls go through libc's syscall() with bun:ffi. Where that cannot be
// loaded (a test transform, a libc without syscall(), an architecture we do
// not know the numbers of), every function answers "unavailable" instead of
// throwing, so importing this module is always safe.

export const LATENCY_NICE_MIN = -20;
export const LATENCY_NICE_MAX = 19;
/** The range, as every error about it says it. */
export const LATENCY_NICE_RANGE = `a whole number from ${LATENCY_NICE_MIN} to ${LATENCY_NICE_MAX}`;

export function isLatencyNice(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= LATENCY_NICE_MIN && v <= LATENCY_NICE_MAX;
}

export const SCHED_ATTR_SIZE_VER1 = 56;
export const SCHED_ATTR_SIZE_VER2 = 60;
const SCHED_FLAG_KEEP_POLICY = 0x08;
const SCHED_FLAG_KEEP_PARAMS = 0x10;
export const SCHED_FLAG_LATENCY_NICE = 0x80;
// Keep the policy and its parameters (and reset-on-fork): only the hint changes.
const SET_FLAGS = SCHED_FLAG_KEEP_POLICY | SCHED_FLAG_KEEP_PARAMS | SCHED_FLAG_LATENCY_NICE;
const PRIO_PROCESS = 0;

const SYSCALLS: Record<string, { setattr: number; getattr: number }> = {
  x64: { setattr: 314, getattr: 315 },
  arm64: { setattr: 274, getattr: 275 },
};

const ERRNO: Record<number, string> = { 1: "EPERM", 3: "ESRCH", 7: "E2BIG", 13: "EACCES", 14: "EFAULT", 22: "EINVAL", 38: "ENOSYS" };

interface Libc {
  syscall(nr: number, a: number, buf: Uint8Array, b: number, c: number): number;
  setpriority(which: number, who: number, prio: number): number;
  errno(): number;
}

let libc: Libc | string | undefined;

/** libc through bun:ffi, loaded once; a string says why it cannot be. */
function load(): Libc | string {
  if (libc !== undefined) return libc;
  try {
    if (!SYSCALLS[process.arch]) throw new Error(`no syscall numbers for ${process.arch}`);
    // A plain require, not an import: a module loader that does not know bun:ffi fails here, where it is caught.
    const ffi = require("bun:ffi") as typeof import("bun:ffi");
    const { FFIType: T } = ffi;
    const lib = ffi.dlopen("libc.so.6", {
      // syscall() is variadic; glibc's is plain assembly that moves registers, so a fixed signature of longs is safe on x86_64 and arm64.
      syscall: { args: [T.i64, T.i64, T.ptr, T.i64, T.i64], returns: T.i64 },
      setpriority: { args: [T.i32, T.u32, T.i32], returns: T.i32 },
      __errno_location: { args: [], returns: T.ptr },
    });
    const s = lib.symbols;
    libc = {
      syscall: (nr, a, buf, b, c) => Number(s.syscall(nr, a, ffi.ptr(buf), b, c)),
      setpriority: (which, who, prio) => s.setpriority(which, who, prio),
      // Read right after the failing call, on the same thread: nothing in between can change it.
      errno: () => ffi.read.i32(s.__errno_location()!, 0),
    };
  } catch (e) {
    libc = `bun:ffi is not available here (${(e as Error).message.split("\n")[0]})`;
  }
  return libc;
}

export type Failure = { ok: false; code: string; message: string };

function fail(code: string, message: string): Failure {
  return { ok: false, code, message };
}

function errnoName(n: number): string {
  return ERRNO[n] ?? `errno ${n}`;
}

/** What sched_getattr() says of a task: the struct's size the kernel knows, its policy and nice, and the hint where there is one. */
export interface TaskAttr {
  /** 60 on a kernel with the per-task hint, 56 on a stock one. */
  size: number;
  policy: number;
  nice: number;
  /** Undefined on a kernel without the per-task hint. */
  latencyNice?: number;
}

/** A 60-byte struct sched_attr (64 with padding, as C lays it out), filled by sched_getattr(). */
function getRaw(c: Libc, pid: number): { ok: true; buf: Uint8Array; view: DataView } | Failure {
  const buf = new Uint8Array(64);
  const view = new DataView(buf.buffer);
  if (c.syscall(SYSCALLS[process.arch]!.getattr, pid, buf, SCHED_ATTR_SIZE_VER2, 0) !== 0) {
    const e = errnoName(c.errno());
    if (e === "ESRCH") return fail(e, `no task ${pid} (ESRCH): it has exited`);
    return fail(e, `sched_getattr(${pid}) failed: ${e}`);
  }
  return { ok: true, buf, view };
}

function attrOf(view: DataView): TaskAttr {
  const size = view.getUint32(0, true);
  const attr: TaskAttr = { size, policy: view.getUint32(4, true), nice: view.getInt32(16, true) };
  if (size >= SCHED_ATTR_SIZE_VER2) attr.latencyNice = view.getInt32(56, true);
  return attr;
}

/** Reads a task's scheduling attributes (pid 0: the caller). Changes nothing. */
export function get(pid: number): ({ ok: true } & TaskAttr) | Failure {
  const c = load();
  if (typeof c === "string") return fail("unavailable", c);
  const r = getRaw(c, pid);
  return r.ok ? { ok: true, ...attrOf(r.view) } : r;
}

export type Probe =
  | { state: "present"; why: string }
  | { state: "absent"; why: string }
  | { state: "unavailable"; why: string };

let probed: Probe | undefined;

/**
 * Whether this kernel has the per-task hint, without changing anything: the
 * size sched_getattr() reports for a 60-byte struct is 60 on the patched
 * kernel and 56 on a stock one. The kernel does not change while we run, so
 * the answer is kept.
 */
export function probe(): Probe {
  if (probed) return probed;
  const r = get(0);
  if (!r.ok) probed = { state: "unavailable", why: r.code === "unavailable" ? r.message : `cannot ask the kernel: ${r.message}` };
  else if (r.size >= SCHED_ATTR_SIZE_VER2) probed = { state: "present", why: `sched_attr is ${r.size} bytes: the kernel has the per-task latency hint` };
  else probed = { state: "absent", why: `sched_attr is ${r.size} bytes, not ${SCHED_ATTR_SIZE_VER2}: this kernel has no per-task latency hint` };
  return probed;
}

/**
 * Sets a task's latency hint (pid 0: the caller), keeping its policy, nice
 * and reset-on-fork. The task's nice is read first because the kernel
 * compares the struct's sched_nice with it (a different one would be a
 * change of nice, or a refusal). Errors are sentences that say what to do.
 */
export function set(pid: number, value: number): { ok: true } | Failure {
  const who = pid === 0 ? "this task" : `task ${pid}`;
  if (!isLatencyNice(value)) return fail("EINVAL", `latency nice must be ${LATENCY_NICE_RANGE}, got ${JSON.stringify(value)}`);
  const c = load();
  if (typeof c === "string") return fail("unavailable", c);
  const r = getRaw(c, pid);
  if (!r.ok) return r;
  const known = r.view.getUint32(0, true);
  r.view.setUint32(0, SCHED_ATTR_SIZE_VER2, true);
  r.view.setBigUint64(8, BigInt(SET_FLAGS), true);
  r.view.setInt32(56, value, true);
  if (c.syscall(SYSCALLS[process.arch]!.setattr, pid, r.buf, 0, 0) === 0) return { ok: true };
  const e = errnoName(c.errno());
  // A stock kernel refuses the flag (EINVAL), or the bytes it does not know (E2BIG, when the hint is not 0).
  if ((e === "EINVAL" || e === "E2BIG") && known < SCHED_ATTR_SIZE_VER2) {
    return fail(e, `this kernel has no per-task latency hint (sched_attr is ${known} bytes, not ${SCHED_ATTR_SIZE_VER2}; sched_setattr refused SCHED_FLAG_LATENCY_NICE with ${e}): use cpu.latency.nice on a patched kernel, or nice`);
  }
  if (e === "EPERM") return fail(e, `setting the latency hint of ${who} to ${value} is not permitted (EPERM): a hint below 0 (or another user's task) needs CAP_SYS_NICE; run it as root`);
  if (e === "ESRCH") return fail(e, `no task ${pid} (ESRCH): it has exited`);
  if (e === "EINVAL") return fail(e, `the kernel refused latency nice ${value} for ${who} (EINVAL): it takes ${LATENCY_NICE_RANGE} for SCHED_OTHER and SCHED_BATCH tasks`);
  return fail(e, `sched_setattr(${who}, latency nice ${value}) failed: ${e}`);
}

/** Plain nice of a process (setpriority), the fallback where the kernel has no latency hint. */
export function setNice(pid: number, value: number): { ok: true } | Failure {
  if (!isLatencyNice(value)) return fail("EINVAL", `nice must be ${LATENCY_NICE_RANGE}, got ${JSON.stringify(value)}`);
  const c = load();
  if (typeof c === "string") return fail("unavailable", c);
  if (c.setpriority(PRIO_PROCESS, pid, value) === 0) return { ok: true };
  const e = errnoName(c.errno());
  if (e === "EPERM" || e === "EACCES") return fail(e, `setting the nice of process ${pid} to ${value} is not permitted (${e}): a nice below the current one needs CAP_SYS_NICE; run it as root`);
  if (e === "ESRCH") return fail(e, `no process ${pid} (ESRCH): it has exited`);
  return fail(e, `setpriority(${pid}, ${value}) failed: ${e}`);
}

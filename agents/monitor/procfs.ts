// Cheap readers of /proc and cgroup files: pressure (PSI), load, network
// bytes, a file system's use, processes, listening sockets, and a unit's
// cgroup counters. None of them starts a process (on a small board, or under
// emulation, starting one costs more than all the reading of a tick). Every reader returns
// undefined (or an empty result) when a file is missing, so the agent runs on
// kernels and machines without them.

import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statfsSync } from "node:fs";
import { join } from "node:path";

export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

const head = Buffer.alloc(1024);

/**
 * The first bytes of a file (up to 1 KiB), or undefined when it cannot be
 * read: for /proc files whose wanted lines come first (/proc/stat's "cpu"
 * line, /proc/meminfo's totals), so the rest (thousands of interrupt
 * counters on a large machine) is never formatted by the kernel nor decoded.
 */
export function readHead(path: string, bytes = 1024): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const n = readSync(fd, head, 0, Math.min(bytes, head.length), 0);
    return head.toString("latin1", 0, n);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** /proc/meminfo's MemTotal and MemAvailable, in bytes. */
export function meminfo(path = "/proc/meminfo"): { total: number; available: number } | undefined {
  const text = readHead(path, 256) ?? "";
  const total = /^MemTotal:\s+(\d+) kB/m.exec(text);
  const avail = /^MemAvailable:\s+(\d+) kB/m.exec(text);
  if (!total || !avail) return undefined;
  return { total: Number(total[1]) * 1024, available: Number(avail[1]) * 1024 };
}

/** /proc/pressure/{cpu,memory,io}: the "some" avg10 of each, in percent. */
export function pressure(root = "/proc/pressure"): Record<string, number> {
  const out: Record<string, number> = {};
  for (const res of ["cpu", "memory", "io"]) {
    const m = /^some avg10=([\d.]+)/m.exec(readText(join(root, res)) ?? "");
    if (m) out[`psi.${res}`] = Number(m[1]);
  }
  return out;
}

/** /proc/loadavg: 1-minute load and the number of processes (threads) that exist. */
export function loadavg(): { load1: number; procs: number } | undefined {
  const f = (readText("/proc/loadavg") ?? "").split(" ");
  if (f.length < 4) return undefined;
  return { load1: Number(f[0]), procs: Number(f[3]!.split("/")[1]) };
}

/** /proc/net/dev: bytes received and sent by every interface but loopback, since boot. */
export function netBytes(path = "/proc/net/dev"): { rx: number; tx: number } | undefined {
  const text = readText(path);
  if (text === undefined) return undefined;
  let rx = 0;
  let tx = 0;
  // "  eth0: RX-bytes packets errs drop fifo frame compressed multicast TX-bytes ...", after two header lines.
  for (const line of text.split("\n").slice(2)) {
    const colon = line.indexOf(":");
    if (colon < 0 || line.slice(0, colon).trim() === "lo") continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 9 || !Number.isFinite(f[0]) || !Number.isFinite(f[8])) continue;
    rx += f[0]!;
    tx += f[8]!;
  }
  return { rx, tx };
}

/** Network throughput since the previous call, KiB/s received and sent over every interface but loopback (nothing on the first call or after a counter reset). */
export function netRateSincePrevious(path = "/proc/net/dev", clock = () => Date.now()): () => Record<string, number> {
  let prev: { rx: number; tx: number; at: number } | undefined;
  return (): Record<string, number> => {
    const b = netBytes(path);
    const at = clock();
    const p = prev;
    prev = b && { ...b, at };
    if (!b || !p || at <= p.at || b.rx < p.rx || b.tx < p.tx) return {};
    const s = (at - p.at) / 1000;
    return { "net.rx_kbps": (b.rx - p.rx) / 1024 / s, "net.tx_kbps": (b.tx - p.tx) / 1024 / s };
  };
}

/** A mounted file system's use in percent, as df counts it (used over used plus what is available to users); undefined when it cannot be read. */
export function fsUsePercent(path: string): number | undefined {
  try {
    const st = statfsSync(path);
    const used = st.blocks - st.bfree;
    return used + st.bavail > 0 ? (100 * used) / (used + st.bavail) : undefined;
  } catch {
    return undefined;
  }
}

/** /proc/stat's first line: CPU time of all cores, busy and total, in clock ticks. */
export function cpuTimes(path = "/proc/stat"): { busy: number; total: number } | undefined {
  // The whole first line (up to its newline): a line cut short by the read would give a wrong last field.
  const f = /^cpu\s+(.*)\n/.exec(readHead(path, 512) ?? "")?.[1]?.trim().split(/\s+/).map(Number);
  if (!f || f.length < 4 || f.some((n) => !Number.isFinite(n))) return undefined;
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = f[3]! + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** The whole system's CPU use between two readings of cpuTimes, percent (100 = every core busy); undefined when they cannot be compared. */
export function busyBetween(a: { busy: number; total: number } | undefined, b: { busy: number; total: number } | undefined): number | undefined {
  if (!a || !b || b.total <= a.total || b.busy < a.busy) return undefined;
  return (100 * (b.busy - a.busy)) / (b.total - a.total);
}

/** The whole system's CPU use over `ms` milliseconds, percent (100 = every core busy). */
export async function cpuBusyPercent(ms = 100): Promise<number | undefined> {
  const a = cpuTimes();
  await Bun.sleep(ms);
  return busyBetween(a, cpuTimes());
}

export interface CgroupSample {
  cpuUsageUs?: number;
  memoryCurrent?: number;
  memoryMax?: number;
  pidsCurrent?: number;
  /** From the patched kernel's cpu.wait.stat, when present. */
  waitUs?: number;
  waitCount?: number;
}

function num(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === "max") return Infinity;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Files read at every tick (each unit's cgroup counters), kept open and read
 * again from offset 0: the kernel formats a cgroup or /proc file afresh at
 * every read, and one pread costs a fraction of opening, reading and closing
 * it (on a small board, and more so under emulation, those system calls are
 * most of the monitor's time). A file that fails to read (its cgroup was
 * removed, and perhaps made again, at a restart) is closed and opened once
 * more; a file that does not exist (cpu.wait.stat on a stock kernel) is
 * looked for again only after a minute.
 */
export class KeptFiles {
  private fds = new Map<string, number>();
  private missing = new Map<string, number>();
  private buf = Buffer.alloc(4096);

  constructor(private retryMissingMs = 60_000) {}

  read(path: string, now = Date.now()): string | undefined {
    if ((this.missing.get(path) ?? -Infinity) > now) return undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      let fd = this.fds.get(path);
      try {
        if (fd === undefined) {
          fd = openSync(path, "r");
          this.fds.set(path, fd);
        }
        const n = readSync(fd, this.buf, 0, this.buf.length, 0);
        this.missing.delete(path);
        return this.buf.toString("latin1", 0, n);
      } catch {
        if (fd === undefined) break;
        this.close(path);
      }
    }
    this.missing.set(path, now + this.retryMissingMs);
    return undefined;
  }

  /** Closes every file under a folder (a unit that is gone). */
  forget(dir: string): void {
    const prefix = dir.endsWith("/") ? dir : `${dir}/`;
    for (const path of [...this.fds.keys(), ...this.missing.keys()]) {
      if (!path.startsWith(prefix)) continue;
      this.close(path);
      this.missing.delete(path);
    }
  }

  /** How many files are open now. */
  get open(): number {
    return this.fds.size;
  }

  private close(path: string): void {
    const fd = this.fds.get(path);
    this.fds.delete(path);
    if (fd === undefined) return;
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}

/** One unit's cgroup counters; `files` keeps them open between ticks (without it, each file is opened and closed). */
export function cgroupSample(dir: string, files?: KeptFiles): CgroupSample {
  const read = (name: string) => (files ? files.read(join(dir, name)) : readText(join(dir, name)));
  const cpu = /^usage_usec (\d+)$/m.exec(read("cpu.stat") ?? "");
  const wait = parseKeyValues(read("cpu.wait.stat"));
  return {
    cpuUsageUs: cpu ? Number(cpu[1]) : undefined,
    memoryCurrent: num(read("memory.current")),
    memoryMax: num(read("memory.max")),
    pidsCurrent: num(read("pids.current")),
    waitUs: wait.wait_usec ?? wait.total_usec,
    waitCount: wait.count ?? wait.wait_count,
  };
}

/** "key value" lines (the format of cpu.stat, memory.events, cpu.wait.stat). */
export function parseKeyValues(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? "").split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) out[k] = Number(v);
  }
  return out;
}

/** A process's cgroup v2 path ("/paio/demo"), "" when unknown (it exited, or no cgroup v2). */
export function cgroupOf(pid: number): string {
  return /^0::(.*)$/m.exec(readText(`/proc/${pid}/cgroup`) ?? "")?.[1] ?? "";
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime, clock ticks. */
  ticks: number;
  rssPages: number;
  /** The cgroup v2 path ("/paio/demo"), "" when unknown. */
  cgroup: string;
}

/**
 * Every process (not thread) with its CPU ticks, memory and cgroup. Kernel
 * threads are left out. With `withCgroup` false the cgroup is left "" (one
 * file fewer per process; see cgroupOf for the few that need it).
 */
export function processes(withCgroup = true): ProcInfo[] {
  const out: ProcInfo[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const stat = readText(`/proc/${e}/stat`);
    if (!stat) continue;
    // The command name is in parentheses and may itself contain spaces or parentheses.
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const f = stat.slice(close + 2).split(" ");
    const flags = Number(f[6]);
    if (flags & 0x00200000) continue; // PF_KTHREAD
    const cg = withCgroup ? cgroupOf(Number(e)) : "";
    out.push({ pid: Number(e), ppid: Number(f[1]), comm, ticks: Number(f[11]) + Number(f[12]), rssPages: Number(f[21]), cgroup: cg });
  }
  return out;
}

/** TCP ports in LISTEN state (IPv4 and IPv6), with the socket inodes that hold them. */
export function listeningPorts(): Map<number, string[]> {
  const ports = new Map<number, string[]>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const lines = (readText(file) ?? "").split("\n").slice(1);
    for (const l of lines) {
      const f = l.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== "0A") continue;
      const port = parseInt(f[1]!.split(":")[1]!, 16);
      (ports.get(port) ?? ports.set(port, []).get(port)!).push(f[9]!);
    }
  }
  return ports;
}

/** The process that holds a socket inode, by scanning /proc/PID/fd (only when a new port shows up). */
export function socketOwner(inodes: string[]): number | undefined {
  const wanted = new Set(inodes.map((i) => `socket:[${i}]`));
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${e}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (wanted.has(readlinkSync(`/proc/${e}/fd/${fd}`))) return Number(e);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

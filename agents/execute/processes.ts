// process.top: the processes using the most CPU (over a short sample) or memory.

import { processes as scan } from "../monitor/procfs.ts";
import { safeComm } from "../analyze/detect.ts";

export interface TopProcess {
  pid: number;
  comm: string;
  cpuPercent: number;
  rssMb: number;
  cgroup: string;
}

const HZ = 100;
let previous: { at: number; ticks: Map<number, number> } | undefined;

/** CPU is measured since the previous call (or over the process lifetime share of the last second on the first). */
export function processes(by: "cpu" | "memory", count: number): TopProcess[] {
  const now = Date.now();
  const list = scan();
  const ticks = new Map(list.map((p) => [p.pid, p.ticks]));
  const dt = previous ? Math.max(0.2, (now - previous.at) / 1000) : 1;
  const out = list.map((p) => ({
    pid: p.pid,
    comm: p.comm,
    cpuPercent: previous?.ticks.has(p.pid) ? ((p.ticks - previous.ticks.get(p.pid)!) / HZ / dt) * 100 : 0,
    rssMb: (p.rssPages * 4096) / 2 ** 20,
    cgroup: p.cgroup,
  }));
  previous = { at: now, ticks };
  out.sort((a, b) => (by === "cpu" ? b.cpuPercent - a.cpuPercent : b.rssMb - a.rssMb));
  return out.slice(0, count);
}

export function safeCommOf(p: { comm: string }): string {
  return safeComm(p.comm);
}

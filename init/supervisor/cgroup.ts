// One cgroup v2 group per unit, /sys/fs/cgroup/paio/<unit>: limits
// (cpu.weight, cpu.max, memory.max, pids.max), the processes that belong to
// the unit (no child escapes it), stop through cgroup.kill, OOM kills from
// memory.events, CPU usage for telling a slow unit from a dead one.
// Without cgroup v2 (a host used for tests), `available` is false and the
// supervisor falls back to process groups.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CPU_PERIOD_US } from "../../lib/config/measure.ts";
import type { Limits } from "./unit-file.ts";

/** Every process descended from pid, from /proc's parent links. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      (children.get(ppid) ?? children.set(ppid, []).get(ppid)!).push(Number(e));
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

export class Cgroups {
  readonly available: boolean;
  readonly why: string;
  readonly root: string;
  /** The kernel has PAIO's scheduling patches (cpu.latency.nice on cgroup v2 groups). */
  readonly latencyHooks: boolean;
  /** The kernel clamps groups' utilization (cpu.uclamp.min, CONFIG_UCLAMP_TASK_GROUP). */
  readonly uclamp: boolean;

  constructor(base = process.env.PAIO_CGROUP_ROOT ?? "/sys/fs/cgroup") {
    this.root = join(base, "paio");
    this.latencyHooks = false;
    this.uclamp = false;
    if (!existsSync(join(base, "cgroup.controllers"))) {
      this.available = false;
      this.why = `no cgroup v2 hierarchy at ${base}`;
      return;
    }
    try {
      mkdirSync(this.root, { recursive: true });
      // Controllers must be enabled at each level down to the units' groups.
      writeFileSync(join(base, "cgroup.subtree_control"), "+cpu +memory +pids");
      writeFileSync(join(this.root, "cgroup.subtree_control"), "+cpu +memory +pids");
      this.latencyHooks = existsSync(join(this.root, "cpu.latency.nice"));
      this.uclamp = existsSync(join(this.root, "cpu.uclamp.min"));
      this.available = true;
      this.why = `cgroup v2 at ${this.root}`;
    } catch (e) {
      this.available = false;
      this.why = `cannot set up ${this.root}: ${(e as Error).message}`;
    }
  }

  path(unit: string): string {
    return join(this.root, unit);
  }

  create(unit: string): void {
    if (this.available) mkdirSync(this.path(unit), { recursive: true });
  }

  private write(unit: string, file: string, value: string): void {
    writeFileSync(join(this.path(unit), file), value);
  }

  private read(unit: string, file: string): string | undefined {
    try {
      return readFileSync(join(this.path(unit), file), "utf8");
    } catch {
      return undefined;
    }
  }

  /** Writes every limit; an absent limit is reset to the kernel's default. */
  apply(unit: string, limits: Limits): void {
    if (!this.available) return;
    this.write(unit, "cpu.weight", String(limits.cpuWeight ?? 100));
    this.write(unit, "cpu.max", `${limits.cpuMaxUs ?? "max"} ${CPU_PERIOD_US}`);
    this.write(unit, "memory.max", limits.memoryMax === undefined ? "max" : String(limits.memoryMax));
    this.write(unit, "pids.max", limits.pidsMax === undefined ? "max" : String(limits.pidsMax));
    if (this.latencyHooks) this.write(unit, "cpu.latency.nice", String(limits.latencyNice ?? 0));
    // An OOM kill takes the whole unit, not one arbitrary process of it.
    this.write(unit, "memory.oom.group", "1");
    if (this.uclamp) this.write(unit, "cpu.uclamp.min", (limits.uclampMin ?? 0).toFixed(2));
  }

  /** Moves a process into the unit's group. */
  join(unit: string, pid: number): void {
    if (this.available) this.write(unit, "cgroup.procs", String(pid));
  }

  procs(unit: string): number[] {
    const text = this.read(unit, "cgroup.procs");
    return text ? text.split("\n").filter(Boolean).map(Number) : [];
  }

  /** Every thread of the unit (cgroup.threads): what a per-task setting must reach. */
  threads(unit: string): number[] {
    const text = this.read(unit, "cgroup.threads");
    return text ? text.split("\n").filter(Boolean).map(Number) : [];
  }

  /** The group's cpu.latency.nice as the kernel reads it back; undefined without the patches. */
  latencyNice(unit: string): number | undefined {
    const v = this.latencyHooks ? this.read(unit, "cpu.latency.nice") : undefined;
    return v === undefined ? undefined : Number(v.trim());
  }

  /** Kills every process of the unit at once (cgroup.kill, Linux 5.14+). */
  kill(unit: string): void {
    if (!this.available) return;
    try {
      this.write(unit, "cgroup.kill", "1");
    } catch {
      for (const pid of this.procs(unit)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
  }

  /** Freezes or thaws every process of the unit (cgroup.freeze): the agent's "isolate" remedy. */
  freeze(unit: string, frozen: boolean): void {
    if (this.available) this.write(unit, "cgroup.freeze", frozen ? "1" : "0");
  }

  /**
   * The quarantine group (a sibling of the units' parent, so unit limits never
   * apply to it): moves the process there, then freezes it or limits it.
   */
  quarantine(pid: number, how: "freeze" | "limit"): string {
    const group = join(this.root, "..", "paio-quarantine");
    mkdirSync(group, { recursive: true });
    writeFileSync(join(group, "cgroup.procs"), String(pid));
    // Freeze or limit first, so what joins next is held at once.
    if (how === "freeze") writeFileSync(join(group, "cgroup.freeze"), "1");
    else {
      writeFileSync(join(group, "cpu.max"), `10000 ${CPU_PERIOD_US}`);
      writeFileSync(join(group, "pids.max"), "64");
    }
    // Its descendants too (a fork bomb keeps forking: a few passes catch the stragglers).
    for (let pass = 0; pass < 3; pass++) {
      for (const child of descendants(pid)) {
        try {
          writeFileSync(join(group, "cgroup.procs"), String(child));
        } catch {
          // gone meanwhile
        }
      }
    }
    return "/sys/fs/cgroup/paio-quarantine";
  }

  oomKills(unit: string): number {
    const m = /^oom_kill (\d+)$/m.exec(this.read(unit, "memory.events") ?? "");
    return m ? Number(m[1]) : 0;
  }

  /** Total CPU time used by the unit, µs. */
  cpuUsageUs(unit: string): number | undefined {
    const m = /^usage_usec (\d+)$/m.exec(this.read(unit, "cpu.stat") ?? "");
    return m ? Number(m[1]) : undefined;
  }

  stats(unit: string): { memoryCurrent?: number; pidsCurrent?: number; cpuUsageUs?: number; oomKills: number } {
    const num = (f: string) => {
      const v = this.read(unit, f);
      return v === undefined ? undefined : Number(v.trim());
    };
    return { memoryCurrent: num("memory.current"), pidsCurrent: num("pids.current"), cpuUsageUs: this.cpuUsageUs(unit), oomKills: this.oomKills(unit) };
  }

  remove(unit: string): void {
    if (!this.available) return;
    try {
      rmdirSync(this.path(unit));
    } catch {
      // still busy or already gone
    }
  }
}

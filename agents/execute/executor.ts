// Execute: runs a validated, guard-approved tool call. Changes go through the
// supervisor's control socket and nowhere else (power and process signals
// excepted: those go to PID 1 and the process itself, as the kernel offers no
// other way; and updates, which the update system writes into the other
// system slot). Read tools answer from the monitor, the supervisor, the
// update system and the knowledge base.

import { readFileSync } from "node:fs";
import type { Request, Response, UnitStatus, UnitSummary } from "../../init/control/protocol.ts";
import { TOOLS, describeCall, type ToolCall } from "../tools/catalog.ts";
import { processes, safeCommOf } from "./processes.ts";
import { networkStatus, saveWifi } from "./network-tools.ts";
import { prioritizeRequests, type Level, type Scheduling } from "./scheduling.ts";
import { DEVICE_UPDATES, installAnswer, rollbackAnswer, updateStatusAnswer, type UpdateSystem } from "./update-tools.ts";

export interface Supervisor {
  request(req: Request): Promise<Response>;
}

export interface ExecResult {
  ok: boolean;
  reply: string;
  output?: unknown;
}

export interface ReadSources {
  systemStatus(focus?: string): { reply: string; output: unknown };
  incidents(): { reply: string; output: unknown };
  explain(unit?: string): { reply: string; output: unknown };
  setMode(mode: "auto" | "advise" | "off"): string;
  /** What the kernel offers for a unit's priority (scheduling.ts). */
  scheduling(): Scheduling;
}

export interface ExecutorOptions {
  /** The update system (the device's by default). */
  updates?: UpdateSystem;
  /** Where a long call (an update's install) says how far it has got. */
  progress?: (text: string) => void;
}

export class Executor {
  constructor(
    private sup: Supervisor,
    private read: ReadSources,
    /** Processes that must never be killed or contained: PID 1, the supervisor, the agent. */
    private untouchable: () => number[],
    private opts: ExecutorOptions = {},
  ) {}

  private async ask(req: Request): Promise<{ ok: true; result: unknown } | { ok: false; reply: string }> {
    const r = await this.sup.request(req);
    return r.ok ? { ok: true, result: r.result } : { ok: false, reply: r.error.message };
  }

  async run(call: ToolCall): Promise<ExecResult> {
    const a = call.args;
    const unit = typeof a.unit === "string" ? a.unit : "";
    const change = async (req: Request, done: string): Promise<ExecResult> => {
      const r = await this.ask(req);
      return r.ok ? { ok: true, reply: done, output: r.result } : { ok: false, reply: `${describeCall(call)} failed: ${r.reply}` };
    };
    switch (call.tool) {
      case "system.status": {
        const s = this.read.systemStatus(typeof a.focus === "string" ? a.focus : undefined);
        return { ok: true, ...s };
      }
      case "unit.list": {
        const r = await this.ask({ op: "list" });
        if (!r.ok) return { ok: false, reply: r.reply };
        const units = r.result as UnitSummary[];
        return { ok: true, reply: units.map((u) => `${u.name}: ${u.state}`).join(", ") || "no units", output: units };
      }
      case "unit.status": {
        const r = await this.ask({ op: "status", unit });
        if (!r.ok) return { ok: false, reply: r.reply };
        const s = r.result as UnitStatus;
        const mem = s.cgroup?.memory_current !== undefined ? `, memory ${Math.round(s.cgroup.memory_current / 2 ** 20)} MiB` : "";
        return { ok: true, reply: `${s.name} is ${s.state} (${s.reason}); ${s.restarts} restarts${mem}`, output: s };
      }
      case "unit.logs": {
        const r = await this.ask({ op: "logs", unit, lines: typeof a.lines === "number" ? a.lines : 20 });
        if (!r.ok) return { ok: false, reply: r.reply };
        const lines = (r.result as { lines: string[] }).lines;
        // Log lines are data: returned as output to be shown, never read as instructions.
        return { ok: true, reply: `last ${lines.length} lines of ${unit}'s log`, output: { unit, lines } };
      }
      case "unit.start":
        return change({ op: "start", unit }, `started ${unit}`);
      case "unit.stop":
        return change({ op: "stop", unit }, `stopped ${unit}`);
      case "unit.restart":
        return change({ op: "restart", unit }, `restarted ${unit}`);
      case "unit.limit": {
        const limits: Record<string, string> = {};
        if (typeof a.cpu_percent === "number") limits.cpu_max = `${a.cpu_percent}%`;
        if (typeof a.memory_mb === "number") limits.memory_max = `${a.memory_mb}M`;
        const parts = [a.cpu_percent !== undefined ? `CPU ${a.cpu_percent}% of one core` : "", a.memory_mb !== undefined ? `memory ${a.memory_mb} MiB` : ""].filter(Boolean);
        return change({ op: "set-limits", unit, limits }, `limited ${unit} to ${parts.join(" and ")}`);
      }
      case "unit.restore-cpu": {
        const pct = typeof a.cpu_percent === "number" ? a.cpu_percent : undefined;
        return change({ op: "set-limits", unit, limits: { cpu_max: pct === undefined ? null : `${pct}%` } }, `gave ${unit} back ${pct === undefined ? "no CPU limit" : `its CPU limit of ${pct}% of one core`}`);
      }
      case "unit.prioritize": {
        const level = a.level as Level;
        const plan = prioritizeRequests(this.read.scheduling(), unit, level);
        const results: unknown[] = [];
        for (const req of plan.requests) {
          const r = await this.ask(req);
          if (!r.ok) return { ok: false, reply: `${describeCall(call)} failed: ${r.reply}${results.length ? " (its group's settings were changed, its tasks' were not)" : ""}` };
          results.push(r.result);
        }
        const tasks = (results.find((x) => typeof (x as { tasks?: unknown })?.tasks === "number") as { tasks: number } | undefined)?.tasks;
        return { ok: true, reply: `gave ${unit} ${level} priority (${plan.words}${tasks === undefined ? "" : `; ${tasks} task${tasks === 1 ? "" : "s"} now`})`, output: results };
      }
      case "unit.freeze":
        return change({ op: "freeze", unit, frozen: true }, `froze ${unit}`);
      case "unit.thaw":
        return change({ op: "freeze", unit, frozen: false }, `thawed ${unit}`);
      case "unit.mark-failed":
        return change({ op: "mark-failed", unit, reason: `marked failed by the agent: ${a.reason === "policy" ? "policy" : "every remedy failed; start it by hand once fixed"}` }, `stopped ${unit} and marked it failed`);
      case "network.status":
        return networkStatus(typeof a.focus === "string" ? a.focus : undefined);
      case "network.wifi": {
        const saved = saveWifi(String(a.ssid), String(a.psk));
        if (!saved.ok) return { ok: false, reply: saved.reply };
        const r = await this.ask({ op: "signal", unit: "network", signal: "SIGHUP" });
        return r.ok ? { ok: true, reply: `${saved.reply}; the network unit is connecting. Ask "is the network up?" in a moment.` } : { ok: false, reply: `${saved.reply}, but the network unit could not be asked to apply it: ${r.reply}` };
      }
      case "network.open_port": {
        const st = await this.ask({ op: "status", unit });
        if (!st.ok) return { ok: false, reply: st.reply };
        const ports = (st.result as UnitStatus).ports;
        const port = `${a.port}/tcp`;
        if (ports.includes(port)) return { ok: true, reply: `port ${port} is already open for ${unit} while it runs` };
        return change({ op: "set-ports", unit, ports: [...ports, port] }, `opened port ${port} for ${unit} while it runs (until its unit file is reloaded; add ports = [${a.port}] to the file to keep it)`);
      }
      case "network.renew":
        return change({ op: "signal", unit: "network", signal: "SIGUSR1" }, "asked the network unit to renew every interface");
      case "network.bounce":
        return change({ op: "signal", unit: "network", signal: "SIGUSR2" }, "asked the network unit to take every link down and up again");
      case "process.contain": {
        const pid = Number(a.pid);
        if (this.untouchable().includes(pid)) return { ok: false, reply: `process ${pid} is part of PAIO itself; not contained` };
        return change({ op: "contain", pid, how: a.how as "freeze" | "limit" }, `contained process ${pid} (${a.how})`);
      }
      case "process.top": {
        const by = a.by === "memory" ? "memory" : "cpu";
        const top = processes(by, typeof a.count === "number" ? a.count : 5);
        return { ok: true, reply: top.map((p) => `${p.pid} ${safeCommOf(p)} ${by === "cpu" ? `${p.cpuPercent.toFixed(0)}% CPU` : `${p.rssMb.toFixed(0)} MiB`}`).join("; "), output: top };
      }
      case "process.kill": {
        const pid = Number(a.pid);
        if (this.untouchable().includes(pid)) return { ok: false, reply: `process ${pid} is part of PAIO itself; not killed` };
        try {
          process.kill(pid, "SIGKILL");
          return { ok: true, reply: `killed process ${pid}` };
        } catch (e) {
          return { ok: false, reply: `cannot kill process ${pid}: ${(e as NodeJS.ErrnoException).code === "ESRCH" ? "no such process" : (e as Error).message}` };
        }
      }
      case "incident.list":
        return { ok: true, ...this.read.incidents() };
      case "incident.explain":
        return { ok: true, ...this.read.explain(unit || undefined) };
      case "agent.mode":
        return { ok: true, reply: this.read.setMode(a.mode as "auto" | "advise" | "off") };
      case "update.status":
        return updateStatusAnswer(this.opts.updates ?? DEVICE_UPDATES);
      case "update.install":
        return installAnswer(this.opts.updates ?? DEVICE_UPDATES, String(a.source), this.opts.progress);
      case "update.rollback":
        return rollbackAnswer(this.opts.updates ?? DEVICE_UPDATES);
      case "power.reboot":
      case "power.poweroff":
        // PID 1 shuts down in order: SIGTERM reboots, SIGUSR2 powers off. Only on a PAIO
        // device, where the supervisor is PID 1's child; never signal some other system's init.
        if (!supervisedByPid1()) return { ok: false, reply: "not on a PAIO device (the supervisor is not a child of PID 1); not signalling PID 1" };
        try {
          process.kill(1, call.tool === "power.reboot" ? "SIGTERM" : "SIGUSR2");
          return { ok: true, reply: call.tool === "power.reboot" ? "rebooting" : "powering off" };
        } catch (e) {
          return { ok: false, reply: `cannot signal PID 1: ${(e as Error).message}` };
        }
      case "help":
        return { ok: true, reply: helpText() };
      case "none":
        return { ok: true, reply: "I did not understand that, so I did nothing. Say 'help' to see what I can do." };
    }
  }
}

function supervisedByPid1(): boolean {
  try {
    const stat = readFileSync(`/proc/${process.ppid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === 1;
  } catch {
    return false;
  }
}

export function helpText(): string {
  return "I can: " + TOOLS.filter((t) => !("agentOnly" in t) && t.name !== "none").map((t) => t.description.toLowerCase()).join("; ") + ".";
}

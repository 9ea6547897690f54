// `paio` on the device: talk to the supervisor over its control socket.
// Human-readable output by default, --json for scripts. Exit codes:
//   0 done, 1 the operation failed, 2 usage error, 3 no such unit,
//   4 not permitted, 5 the supervisor cannot be reached.

import { ControlClient } from "../control/client.ts";
import type { LatencyHint, ReloadResult, Response, TaskPriorityResult, UnitStatus, UnitSummary } from "../control/protocol.ts";
import { KNOWLEDGE_USAGE, knowledgeCommand } from "../../agents/cli/knowledge.ts";
import { AGENT_USAGE, agentCommand } from "../../agents/cli/agent.ts";
import { ASK_USAGE, askCommand } from "../../agents/cli/ask.ts";
import { NET_USAGE, netCommand } from "./net.ts";
import { UPDATE_USAGE, updateCommand } from "./update.ts";
import { readThermal, socStatus, throttleOf, type SocStatus } from "../../agents/monitor/thermal.ts";
import { cpuBusyPercent } from "../../agents/monitor/procfs.ts";

const USAGE = `usage: paio [--json] <command>
  status                 overview of the system (SoC temperature, throttling) and its units
  units                  list units
  status UNIT            one unit in detail
  start|stop|restart UNIT
  freeze|thaw UNIT       stop every process of UNIT where it is (cgroup.freeze), or let it run again
  logs UNIT [-n N] [-f]  the unit's last N lines (default 50); -f follows
  reload                 apply added, removed and changed unit files
  limit UNIT [--cpu 50%] [--memory 128M] [--pids N] [--weight N]   change limits now ('none' removes one)
  priority UNIT [--latency-nice N] [--nice N]   per-task latency hint and/or nice of every task of UNIT, -20..19 ('none': back to the unit file's)
${NET_USAGE}
${UPDATE_USAGE}
${KNOWLEDGE_USAGE}
${AGENT_USAGE}
${ASK_USAGE}`;

const EXIT = { ok: 0, failed: 1, usage: 2, noUnit: 3, notPermitted: 4, unreachable: 5 };

function codeFor(r: Response): number {
  if (r.ok) return EXIT.ok;
  return { "no-such-unit": EXIT.noUnit, "not-permitted": EXIT.notPermitted, "bad-request": EXIT.usage, "too-large": EXIT.usage, failed: EXIT.failed }[r.error.code];
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

function unitTable(units: UnitSummary[]): string {
  const rows = units.map((u) => [u.name, u.state, u.pid ? String(u.pid) : "-", ago(u.since), String(u.restarts), u.reason]);
  const head = ["UNIT", "STATE", "PID", "SINCE", "RESTARTS", "REASON"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  return [fmt(head), ...rows.map(fmt)].join("\n");
}

/**
 * The SoC now, read from the kernel (docs/agent.md): temperature, and whether
 * the CPU is throttled. A frequency under the maximum means throttling only
 * on a busy CPU, so the CPU's use is measured for a tenth of a second when
 * that is the question.
 */
async function socNow(): Promise<SocStatus> {
  const r = readThermal();
  let t = throttleOf(r);
  if (t.throttled === undefined && r.cpufreq.length) t = throttleOf(r, await cpuBusyPercent(100));
  return socStatus(r, t);
}

/** The latency hint in force, as read back: "-10 per task (main process 123), cgroup cpu.latency.nice -10", "none (stock kernel)". */
function latencyHintText(h: LatencyHint): string {
  const cgroup = h.cgroup === undefined ? "" : `cgroup cpu.latency.nice ${h.cgroup}`;
  if (h.kernel === "per-task") {
    const task = h.pid === undefined ? "none per task (no main process)" : `${h.task ?? "?"} per task (main process ${h.pid})`;
    return [task, cgroup].filter(Boolean).join(", ");
  }
  if (h.kernel === "cgroup") return `${cgroup || "none (no cgroup)"} (this kernel has no per-task hint)`;
  // On a stock kernel a unit's latency_nice falls back to nice (docs/units.md), as the agent's priority does: show a nice in force.
  const nice = h.pid !== undefined && h.nice !== undefined && (h.wanted !== undefined || h.nice !== 0) ? `; nice ${h.nice} instead (main process ${h.pid})` : "";
  return `none (stock kernel)${nice}`;
}

function unitDetail(s: UnitStatus): string {
  const lines = [
    `${s.name}: ${s.state}${s.pid ? ` (pid ${s.pid})` : ""} since ${ago(s.since)} ago — ${s.reason}`,
    s.description ? `  description: ${s.description}` : "",
    `  exec: ${s.exec.join(" ")}`,
    `  restart: ${s.restart}, restarts so far: ${s.restarts}`,
    `  limits: ${Object.entries(s.limits).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`).join(" ") || "none"}`,
  ];
  if (s.cgroup) lines.push(`  cgroup: memory ${s.cgroup.memory_current ?? "?"} B, pids ${s.cgroup.pids_current ?? "?"}, cpu ${((s.cgroup.cpu_usage_us ?? 0) / 1e6).toFixed(2)} s, OOM kills ${s.cgroup.oom_kills}`);
  if (s.latency_hint) lines.push(`  latency hint: ${latencyHintText(s.latency_hint)}`);
  if (s.health) lines.push(`  health: ${s.health.type}${s.health.last ? `, last ${s.health.last.result} in ${s.health.last.latency_ms} ms, ${ago(s.health.last.at)} ago` : ", not checked yet"}`);
  return lines.filter(Boolean).join("\n");
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes("--json");
  const args = argv.filter((a) => a !== "--json");
  const [cmd, ...rest] = args;
  if (!cmd || cmd === "help" || cmd === "--help") {
    console.log(USAGE);
    return cmd ? EXIT.ok : EXIT.usage;
  }
  const answered = knowledgeCommand(cmd, rest, json);
  if (answered !== undefined) return answered;
  if (cmd === "agent") return agentCommand(rest, json);
  if (cmd === "ask") return askCommand(rest, json);
  const updateAnswer = await updateCommand(cmd, rest, json);
  if (updateAnswer !== undefined) return updateAnswer;
  const netAnswer = await netCommand(cmd, rest, json);
  if (netAnswer !== undefined) return netAnswer;
  let client: ControlClient;
  try {
    client = await ControlClient.connect();
  } catch (e) {
    console.error(`paio: cannot reach the supervisor at ${process.env.PAIO_CONTROL_SOCKET ?? "/run/paio/control.sock"}: ${(e as Error).message}`);
    return EXIT.unreachable;
  }
  const print = (r: Response, human: (result: never) => string): number => {
    if (json) console.log(JSON.stringify(r.ok ? r.result : { error: r.error }));
    else if (r.ok) console.log(human(r.result as never));
    else console.error(`paio: ${r.error.message}`);
    return codeFor(r);
  };
  const needUnit = (): string | undefined => {
    const u = rest[0];
    if (!u) console.error(`paio: '${cmd}' needs a unit name\n${USAGE}`);
    return u;
  };
  try {
    switch (cmd) {
      case "units":
        return print(await client.request({ op: "list" }), (u: UnitSummary[]) => unitTable(u));
      case "status": {
        if (rest[0]) return print(await client.request({ op: "status", unit: rest[0] }), (s: UnitStatus) => unitDetail(s));
        const [r, soc] = await Promise.all([client.request({ op: "list" }), socNow()]);
        // --json: the units and the SoC, {"units": [...], "soc": {...}}.
        if (json && r.ok) {
          console.log(JSON.stringify({ units: r.result, soc }));
          return EXIT.ok;
        }
        return print(r, (u: UnitSummary[]) => {
          const bad = u.filter((x) => ["failed", "unhealthy", "degraded", "backoff"].includes(x.state));
          return `${u.length} units, ${u.filter((x) => x.state === "running").length} running${bad.length ? `, needing attention: ${bad.map((x) => `${x.name} (${x.state})`).join(", ")}` : ""}\n${soc.text}\n${unitTable(u)}`;
        });
      }
      case "start":
      case "stop":
      case "restart": {
        const unit = needUnit();
        if (!unit) return EXIT.usage;
        return print(await client.request({ op: cmd, unit }), (s: UnitSummary) => `${s.name}: ${s.state}${s.pid ? ` (pid ${s.pid})` : ""}`);
      }
      case "freeze":
      case "thaw": {
        const unit = needUnit();
        if (!unit) return EXIT.usage;
        return print(await client.request({ op: "freeze", unit, frozen: cmd === "freeze" }), (s: UnitStatus) => `${s.name}: ${s.state}, ${s.frozen ? "frozen: its processes do not run until 'paio thaw'" : "not frozen"}`);
      }
      case "reload":
        return print(await client.request({ op: "reload" }), (r: ReloadResult) =>
          [`added: ${r.added.join(", ") || "-"}`, `removed: ${r.removed.join(", ") || "-"}`, `changed: ${r.changed.join(", ") || "-"}`, `unchanged: ${r.unchanged.length}`, ...r.errors.map((e) => `error: ${e}`)].join("\n"));
      case "logs": {
        const unit = needUnit();
        if (!unit) return EXIT.usage;
        const nIdx = rest.indexOf("-n");
        const lines = nIdx >= 0 ? Number(rest[nIdx + 1]) : 50;
        if (!Number.isInteger(lines) || lines < 1) {
          console.error("paio: -n needs a positive whole number");
          return EXIT.usage;
        }
        const code = print(await client.request({ op: "logs", unit, lines }), (r: { lines: string[] }) => r.lines.join("\n"));
        if (code !== 0 || !rest.includes("-f")) return code;
        client.onEvent((e) => {
          if (e.event === "log") for (const l of e.lines as string[]) console.log(json ? JSON.stringify({ unit, line: l }) : l);
        });
        await client.request({ op: "subscribe", logs: unit });
        await new Promise<void>((resolve) => client.onClosed(resolve));
        return EXIT.ok;
      }
      case "limit": {
        const unit = needUnit();
        if (!unit) return EXIT.usage;
        const limits: Record<string, unknown> = {};
        const opts: Record<string, string> = { "--cpu": "cpu_max", "--memory": "memory_max", "--pids": "pids_max", "--weight": "cpu_weight" };
        for (let i = 1; i < rest.length; i += 2) {
          const key = opts[rest[i]!];
          const val = rest[i + 1];
          if (!key || val === undefined) {
            console.error(`paio: limit takes --cpu, --memory, --pids, --weight with a value\n${USAGE}`);
            return EXIT.usage;
          }
          limits[key] = val === "none" ? null : key === "pids_max" || key === "cpu_weight" ? Number(val) : val;
        }
        if (Object.keys(limits).length === 0) {
          console.error("paio: limit needs at least one of --cpu, --memory, --pids, --weight");
          return EXIT.usage;
        }
        return print(await client.request({ op: "set-limits", unit, limits }), (l: object) => `${unit}: ${Object.entries(l).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`).join(" ")}`);
      }
      case "priority": {
        const unit = needUnit();
        if (!unit) return EXIT.usage;
        const req: { latency_nice?: number | null; nice?: number | null } = {};
        const opts: Record<string, "latency_nice" | "nice"> = { "--latency-nice": "latency_nice", "--nice": "nice" };
        for (let i = 1; i < rest.length; i += 2) {
          const key = opts[rest[i]!];
          const val = rest[i + 1];
          if (!key || val === undefined || (val !== "none" && !/^-?\d+$/.test(val))) {
            console.error(`paio: priority takes --latency-nice and --nice, each with a whole number from -20 to 19 or 'none'\n${USAGE}`);
            return EXIT.usage;
          }
          req[key] = val === "none" ? null : Number(val);
        }
        if (Object.keys(req).length === 0) {
          console.error("paio: priority needs --latency-nice or --nice");
          return EXIT.usage;
        }
        return print(await client.request({ op: "set-task-priority", unit, ...req }), (r: TaskPriorityResult) =>
          `${unit}: ${[r.latency_nice !== undefined ? `latency nice ${r.latency_nice}` : "", r.nice !== undefined ? `nice ${r.nice}` : ""].filter(Boolean).join(", ")} per task, ${r.tasks} task${r.tasks === 1 ? "" : "s"} now${r.failed.length ? `; not everywhere: ${r.failed.join("; ")}` : ""}`);
      }
      default:
        console.error(`paio: unknown command '${cmd}'\n${USAGE}`);
        return EXIT.usage;
    }
  } finally {
    client.close();
  }
}

process.exit(await main(process.argv.slice(2)));

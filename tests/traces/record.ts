#!/usr/bin/env bun
// `make traces`: real metric traces with fault labels, for building and
// judging the agent's detectors and models (agents/models/). For each
// scenario (scenarios.ts) it boots the image with the chaos workload, sets
// the agent to watch only (so faults run their course: the supervisor still
// restarts what dies, as on a device whose agent is off), injects the
// scenario's faults at their times, and records every metric frame the
// agent's own monitor wrote to its knowledge base, with a label per fault
// (class, unit, start, end, in the guest's clock).
//
// Output: tests/traces/recorded/<scenario>.json.gz (format below), a few
// tens of kilobytes each and committed, so that `make models` trains and
// judges on the same traces on every machine; `make traces` records them
// again (the metrics differ from run to run, the timelines do not). The short
// `sample` scenario's trace is kept apart (tests/traces/sample/) for tests.
//
//   bun tests/traces/record.ts [--scenario a,b] [--out DIR]
// The format is agents/models/trace.ts's.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import type { Guest } from "../../qemu/guest.ts";
import { bootGuest, OUT, PRELUDE, REPO, requireBuiltImage } from "../helpers/guest.ts";
import { installScript } from "../chaos/workload.ts";
import { Knowledge } from "../../agents/knowledge/store.ts";
import { SCENARIOS, durationS, timeline, type PlannedFault, type Scenario } from "./scenarios.ts";
import { TRACE_FORMAT, type Trace, type TraceClass, type TraceLabel } from "../../agents/models/trace.ts";

/** The limits of the workload's units (tests/chaos/workload.ts), which frames do not carry. */
const UNIT_LIMITS: Trace["units"] = { broker: { memory_max_mb: 96 }, leaky: { memory_max_mb: 96 }, workers: { pids_max: 64 } };

async function sh(g: Guest, script: string, timeoutMs = 120_000): Promise<string> {
  const r = await g.sh(PRELUDE + script, timeoutMs);
  return r.output;
}

/** The guest's clock, ms since the epoch (to 1 s: busybox date has no finer format). */
async function guestNow(g: Guest): Promise<number> {
  return Number((await sh(g, "date +%s")).trim()) * 1000;
}

/** One unit's restart count and pid, from the supervisor. */
async function unitView(g: Guest, unit: string): Promise<{ restarts: number; pid?: number; state: string }> {
  try {
    const s = JSON.parse(await sh(g, `timeout 20 paio --json status ${unit}`));
    return { restarts: s.restarts ?? 0, pid: s.pid, state: s.state };
  } catch {
    return { restarts: -1, state: "unknown" };
  }
}

interface Injector {
  unit: string | null;
  inject(g: Guest, f: PlannedFault): Promise<string>;
  clear?(g: Guest): Promise<void>;
  /** Back to normal: the label ends here (or at the hold's end, if later). */
  over?(g: Guest, before: { restarts: number; pid?: number }): Promise<boolean>;
}

const restarted = (unit: string) => async (g: Guest, before: { restarts: number; pid?: number }) => {
  const v = await unitView(g, unit);
  return v.state === "running" && (v.restarts > before.restarts || (v.pid !== undefined && v.pid !== before.pid));
};

const INJECTORS: Record<TraceClass, Injector> = {
  leak: { unit: "leaky", inject: (g, f) => sh(g, `echo ${f.arg} > /run/chaos/leak; echo "leaking ${f.arg} MiB/s"`), over: restarted("leaky") },
  "cpu-hog": { unit: "workers", inject: (g, f) => sh(g, `echo ${f.arg} > /run/chaos/hog; echo "spinning ${f.arg} s"`) },
  "outside-hog": {
    unit: null,
    // A process of no unit: moved to the root group first (the shell that starts it belongs to the qemu-exec unit).
    inject: (g, f) => sh(g, `setsid sh -c 'echo $$ > /sys/fs/cgroup/cgroup.procs; exec timeout ${f.arg} sh -c "while :; do :; done"' </dev/null >/dev/null 2>&1 & echo "outside spinner for ${f.arg} s"`),
  },
  "fork-bomb": { unit: "workers", inject: (g) => sh(g, "touch /run/chaos/bomb; echo bomb"), over: restarted("workers") },
  crash: {
    unit: "batch",
    inject: (g, f) => sh(g, `echo $(( $(cut -d. -f1 /proc/uptime) + ${f.holdS} )) > /run/chaos/crash-until; p=$(paio --json status batch | sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p' | head -n 1); kill -9 $p; echo "batch cannot start for ${f.holdS} s"`),
  },
  hung: {
    unit: "web",
    inject: (g) => sh(g, `p=$(paio --json status web | sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p' | head -n 1); kill -STOP $p; echo "stopped web ($p)"`),
    over: restarted("web"),
  },
  "disk-full": {
    unit: null,
    inject: (g) => sh(g, "dd if=/dev/zero of=/var/lib/paio/chaos-fill bs=1M 2>/dev/null; sync; df -k /var/lib/paio | tail -n 1", 180_000),
    clear: async (g) => void (await sh(g, "rm -f /var/lib/paio/chaos-fill; sync")),
  },
};

/** Records one scenario; returns the trace. */
export async function recordScenario(s: Scenario, log: (line: string) => void): Promise<Trace> {
  const plan = timeline(s);
  const total = durationS(s);
  log(`traces: ${s.name} (seed ${s.seed}): ${plan.map((f) => `${f.class}@${f.at}s`).join(", ")}; ${total} s`);
  const g = await bootGuest({ cpus: 2 });
  const labels: TraceLabel[] = [];
  try {
    // Under emulation the agent's 1 % budget slows its monitor to a frame every 10 s; a trace wants a frame at every
    // tick the agent is configured for (1 s), so the budget is raised for the recording (what the monitor reads does not change).
    await sh(g, `${installScript()} >/dev/null
printf '[agent]\\ncpu_budget_percent = 60\\n' > /var/lib/paio/agent.toml; paio restart agent >/dev/null
for i in $(seq 1 90); do paio agent mode off >/dev/null 2>&1 && break; sleep 1; done`);
    const t0 = await guestNow(g);
    const startedAt = Date.now();
    for (const f of plan) {
      const wait = startedAt + f.at * 1000 - Date.now();
      if (wait > 0) await Bun.sleep(wait);
      const inj = INJECTORS[f.class];
      const before = inj.unit ? await unitView(g, inj.unit) : { restarts: 0 };
      const start = await guestNow(g);
      const said = (await inj.inject(g, f)).trim().split("\n").pop() ?? "";
      const holdEnd = Date.now() + f.holdS * 1000;
      // The cause lasts its hold; the label lasts until the system is back too (at most 120 s more).
      await Bun.sleep(Math.max(0, holdEnd - Date.now()));
      await inj.clear?.(g);
      if (inj.over) {
        const deadline = Date.now() + 120_000;
        while (Date.now() < deadline && !(await inj.over(g, before))) await Bun.sleep(1000);
      }
      const end = await guestNow(g);
      labels.push({ class: f.class, unit: inj.unit, start, end, detail: said });
      log(`traces:   ${f.class}${inj.unit ? ` on ${inj.unit}` : ""} at ${((start - t0) / 1000).toFixed(0)} s for ${((end - start) / 1000).toFixed(0)} s: ${said}`);
    }
    const rest = startedAt + total * 1000 - Date.now();
    if (rest > 0) await Bun.sleep(rest);
    const t1 = await guestNow(g);
    // A consistent copy of the knowledge base (the agent keeps writing meanwhile), brought out through the exec channel.
    await sh(g, `rm -f /tmp/trace.db; bun -e 'import { Database } from "bun:sqlite"; new Database("/var/lib/paio/agent/knowledge.db", { readonly: true }).run("VACUUM INTO \\"/tmp/trace.db\\"")' && ls -l /tmp/trace.db`);
    const chunks: Uint8Array[] = [];
    const code = await g.exec("cat /tmp/trace.db", (d) => chunks.push(d.slice()), 300_000);
    if (code !== 0) throw new Error(`could not copy the knowledge base out of the guest (exit ${code})`);
    const dir = mkdtempSync(join(tmpdir(), "paio-trace-"));
    try {
      const db = join(dir, "knowledge.db");
      writeFileSync(db, Buffer.concat(chunks));
      const k = new Knowledge(db);
      const frames = k.frames(t0, t1);
      k.close();
      const metrics = [...new Set(frames.flatMap((f) => Object.keys(f.values)))].sort();
      const commit = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: REPO }).stdout.toString().trim() || "unknown";
      log(`traces:   ${frames.length} frames of ${metrics.length} metrics over ${((t1 - t0) / 1000).toFixed(0)} s`);
      return {
        format: TRACE_FORMAT,
        scenario: s.name,
        seed: s.seed,
        date: new Date().toISOString(),
        commit,
        machine: `${cpus().length} CPUs (${cpus()[0]?.model ?? "unknown"}), guest: ${OUT.endsWith("arm64") ? "arm64" : "x86_64"} under QEMU, 2 vCPUs`,
        units: UNIT_LIMITS,
        labels,
        metrics,
        frames: frames.map((f) => [f.ts, ...metrics.map((m) => (m in f.values ? +f.values[m]!.toFixed(3) : null))]),
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    await g.shutdown().catch(() => g.kill());
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const names = (arg("--scenario") ?? process.env.PAIO_TRACES ?? SCENARIOS.filter((s) => s.name !== "sample").map((s) => s.name).join(",")).split(",");
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) {
    console.error(`traces: unknown scenario ${unknown.join(", ")}; known: ${SCENARIOS.map((s) => s.name).join(", ")}`);
    process.exit(2);
  }
  requireBuiltImage();
  const outDir = arg("--out") ?? join(REPO, "tests", "traces", "recorded");
  mkdirSync(outDir, { recursive: true });
  for (const [i, name] of names.entries()) {
    const s = SCENARIOS.find((x) => x.name === name)!;
    console.log(`traces: [${i + 1}/${names.length}]`);
    const trace = await recordScenario(s, (l) => console.log(l));
    const file = join(outDir, `${s.name}.json.gz`);
    writeFileSync(file, Bun.gzipSync(Buffer.from(JSON.stringify(trace))));
    console.log(`traces:   wrote ${file.replace(REPO, "")}`);
  }
}

if (import.meta.main) await main();

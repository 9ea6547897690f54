// The agent: Monitor → Analyze → Plan → Execute over the Knowledge base, with
// the guard between Plan and Execute and the audit log beside every decision.
//
// One tick (a second by default): sample (monitor), store a frame, look for
// trouble (detector), decide what to do about each finding (ladder + guard),
// act through the supervisor, and check whether earlier actions worked.
// Supervisor events arrive between ticks and are analysed at once; at every
// tick the supervisor's own record of each unit (its failed exits, a failed
// state) is read too, so a failure the events did not bring is still seen.

import type { PublishedEvent, UnitEvent, UnitStatus } from "../../init/control/protocol.ts";
import { Connectivity } from "../analyze/connectivity.ts";
import { DEFAULT_THERMAL, Thermal, type SocRecovery } from "../analyze/thermal.ts";
import { Detector, signatureOf, type DetectorConfig, DEFAULT_DETECTOR, type Finding, type FindingClass, type Scorer } from "../analyze/detect.ts";
import { Executor, type Supervisor } from "../execute/executor.ts";
import { decide, type Decision } from "../guard/guard.ts";
import type { Policy } from "../guard/policy.ts";
import { Knowledge, type Incident, type IncidentDetails, type KnowledgeUse } from "../knowledge/store.ts";
import { Monitor, frameOf, type Collector, type UnitSource } from "../monitor/monitor.ts";
import { detectScheduling, schedulingWords, type Scheduling } from "../execute/scheduling.ts";
import { cpuPercentOf, isContainment, rankRemedies, stepFor, type PlanContext, type Remedy } from "../plan/ladder.ts";
import { ENDED, INCIDENT_MOVES, incidentMoveAllowed, type IncidentMoveName, type IncidentState } from "../plan/incident-states.ts";
import { dataText } from "../monitor/update-journal.ts";
import type { AgentEvent, AgentStatus, CallResult, Mode } from "../protocol.ts";
import { describeCall, HIDDEN, shownArgs, toolSpec, validateCall, type Args, type Origin, type ToolCall } from "../tools/catalog.ts";
import type { ThermalReading } from "../monitor/thermal.ts";
import { maskSecrets } from "../nlu/wifi.ts";
import type { AgentConfig } from "./config.ts";
import { explainUnit, incidentsText, systemStatusText } from "./explain.ts";
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import type { AgentModels } from "./models.ts";
import { deviceModelPaths, loadDeviceAnomaly } from "./models.ts";
import { finishRetrain, removeLeftovers, RETRAIN_HOURS, RETRAIN_TIMEOUT_MS, startRetrain, type RetrainJob } from "./retrain-job.ts";
import type { UpdateSystem } from "../execute/update-tools.ts";
import { UpdateWatch } from "./update-watch.ts";

/** How long frames wait in memory before they are written (SIGTERM and retraining write them at once). */
export const FLUSH_EVERY_MS = 60_000;

interface Active {
  incident: Incident;
  /** The incident's state, changed only by moves of the table in incident-states.ts. */
  state: IncidentState;
  signature: string;
  finding: Finding;
  order: { remedy: Remedy; score: number }[];
  rung: number;
  /** The remedy being judged: set while waiting for its outcome. healthySince: since when the unit has been healthy without a break. */
  pending?: { actionId: number; remedy: Remedy; at: number; auditSeq: number; healthySince?: number };
  lastActionAt: number;
  /** The next step waits until then (a paused restart after a start limit); the tick carries it out. */
  waitUntil?: number;
  /** A remedy of this incident brought the unit back (healthy for RESTORED_MS) before the trouble returned. */
  restored?: boolean;
}

/**
 * A remedy brought a unit back, even if the trouble returns later, when its
 * health check passes again at a look after it; a unit without a check must
 * have kept running this long (a crash-looping one is running for a moment).
 */
const RESTORED_MS = 10_000;

/**
 * Trouble that hurts only the unit itself. When a remedy brought such a unit
 * back and the trouble returned anyway (a service that hangs every few
 * minutes), marking it failed would take the service down for good, which
 * is worse than the trouble: the agent ends the incident instead and says
 * so, the supervisor goes on restarting the unit by its own rules, and a
 * person is told to find the cause. A fork bomb or a CPU hog hurts the
 * other units, so their ladders go on to containment.
 */
const SELF_ONLY: readonly FindingClass[] = ["crash", "oom", "hung", "unhealthy", "leak"];

export interface AgentDeps {
  supervisor: Supervisor & UnitSource;
  knowledge: Knowledge;
  /** How the knowledge base was opened (store.ts openKnowledge); a file when not given. */
  knowledgeUse?: KnowledgeUse;
  policy: Policy;
  config: AgentConfig;
  detector?: Partial<DetectorConfig>;
  /** The monitor's system collectors and sysfs root (tests give their own). */
  monitor?: { collectors?: Collector[]; sysfsRoot?: string; thermalPeriodMs?: number };
  models?: AgentModels;
  cgroupRoot?: string;
  /** PIDs the agent must never contain or kill. */
  untouchable?: () => number[];
  /** The update system the update tools ask (the device's by default). */
  updates?: UpdateSystem;
  /** The update journal to turn into audit records and incidents (init/update/journal.ts's by default). */
  updateJournal?: string;
  /** The retraining worker's command (the agent bundle's `retrain` subcommand by default). */
  retrainCommand?: string[];
}

/**
 * One step of the agent's CPU budget, from its use over the last minute
 * (percent of a core): over the budget it ticks less often (up to ten times
 * the configured tick), under 70% of it more often again. Far over (three
 * times the budget) the models pause and the rules answer; they run again
 * once the agent is back under twice its budget, so an agent that stays a
 * little over (its tick already at the slowest) keeps its models running.
 */
export function budgetStep(s: { slowdown: number; modelsPaused: boolean }, pct: number, budget: number): { slowdown: number; modelsPaused: boolean } {
  const modelsPaused = pct > 3 * budget ? true : pct < 2 * budget ? false : s.modelsPaused;
  const slowdown = pct > budget ? Math.min(10, s.slowdown * 1.25) : pct < 0.7 * budget ? Math.max(1, s.slowdown / 1.25) : s.slowdown;
  return { slowdown, modelsPaused };
}

export class Agent {
  readonly monitor: Monitor;
  readonly detector: Detector;
  readonly executor: Executor;
  private active = new Map<string, Active>();
  private listeners = new Set<(e: AgentEvent) => void>();
  private cpuWindow: { at: number; cpuMs: number }[] = [];
  /** Model use is paused while the agent is over its CPU budget. */
  modelsPaused = false;
  private tuned = new Set<string>();
  readonly k: Knowledge;
  /** Link state from the network unit's events; outages become network-down findings. */
  readonly connectivity = new Connectivity();
  /** The SoC's temperature and throttling; a hot episode becomes a soc-hot finding. */
  readonly thermal: Thermal;
  /** Units whose CPU limit the agent lowered for a hot SoC: the limit before and the one it set. Kept in the knowledge base, so a restarted agent still gives them back. */
  private caps = new Map<string, { before?: string; cap: string }>();
  /** Open network incidents by interface, until the link is back. */
  private outages = new Map<string, { incidentId: number; signature: string }>();

  constructor(private deps: AgentDeps) {
    this.k = deps.knowledge;
    const cgroupRoot = deps.cgroupRoot ?? join(process.env.PAIO_CGROUP_ROOT ?? "/sys/fs/cgroup", "paio");
    this.monitor = new Monitor(deps.supervisor, deps.monitor?.collectors, cgroupRoot, undefined, undefined, { sysfsRoot: deps.monitor?.sysfsRoot, thermalPeriodMs: deps.monitor?.thermalPeriodMs });
    this.thermal = new Thermal(deps.policy.thermal ?? DEFAULT_THERMAL);
    try {
      for (const [unit, c] of Object.entries(JSON.parse(this.k.get("thermal.caps") ?? "{}") as Record<string, { before?: string; cap: string }>)) this.caps.set(unit, c);
    } catch {
      // an unreadable note: nothing to give back
    }
    const models = deps.models;
    this.seenNote = this.k.get(SEEN_KEY) ?? "{}";
    // The detector asks through these, so a retrained model or a paused one takes effect at once.
    const gate = (get: () => Scorer | undefined): Scorer | undefined =>
      get() && {
        get threshold() {
          return get()?.threshold;
        },
        score: (rows) => {
          const s = get();
          return this.modelsPaused || !s ? Promise.resolve(undefined) : s.score(rows);
        },
      };
    this.detector = new Detector(
      // A model decides only where its held-out evaluation beat the rule (agents/models/evaluate.ts).
      { ...DEFAULT_DETECTOR, leakDecision: models?.decisions?.leak ?? "rule", anomalyDecision: models?.decisions?.anomaly ?? "rule", allowedPorts: deps.policy.allowedPorts, ...deps.detector },
      { forecast: gate(() => models?.forecast), anomaly: gate(() => models?.anomaly) },
    );
    this.lastRetrain = Date.now();
    this.executor = new Executor(deps.supervisor, {
      systemStatus: (focus) => {
        const r = systemStatusText(this.monitor, focus);
        return focus || deps.knowledgeUse?.state !== "memory" ? r : { ...r, reply: `${r.reply}; the knowledge base is not used (see 'paio logs agent'): nothing is remembered across restarts` };
      },
      incidents: () => incidentsText(this.k),
      explain: (unit) => explainUnit(this.k, unit),
      setMode: (m) => this.setMode(m, "person"),
      scheduling: () => this.scheduling(),
    }, deps.untouchable ?? (() => [1, process.pid, process.ppid]), {
      updates: deps.updates,
      progress: (text) => this.emit({ event: "progress", time: Date.now(), text }),
    });
    this.cgroupRoot = cgroupRoot;
    this.updateWatch = new UpdateWatch(deps.updateJournal);
    try {
      // Failures an earlier run of the agent already counted are not incidents again.
      for (const [unit, t] of Object.entries(JSON.parse(this.seenNote) as Record<string, number>)) if (typeof t === "number") this.detector.seenUpTo.set(unit, t);
    } catch {
      // an unreadable note: every failure the supervisor still remembers is looked at
    }
  }

  /** What the detector has counted, as last written to the knowledge base. */
  private seenNote: string;

  /** Writes down, when it moved, up to when each unit's failures were counted, so a restarted agent does not count them again. */
  private saveSeen(): void {
    if (!this.detector.seenChanged) return;
    this.detector.seenChanged = false;
    const note = JSON.stringify(Object.fromEntries(this.detector.seenUpTo));
    if (note === this.seenNote) return;
    this.seenNote = note;
    this.k.set(SEEN_KEY, note);
  }

  /** The update journal: each event once, as an audit record, and as an incident when an update did not take. */
  readonly updateWatch: UpdateWatch;

  /** Reads the update journal now (at start), whatever the period. Never throws: a failure is returned to be said. */
  readUpdateJournal(now = Date.now(), force = true): string | undefined {
    try {
      this.updateWatch.poll(this.k, now, (e) => this.emit(e), force);
      return undefined;
    } catch (e) {
      return `cannot read the update journal ${this.updateWatch.file}: ${(e as Error).message}`;
    }
  }

  private cgroupRoot: string;

  get mode(): Mode {
    const chosen = (this.k.get("mode") as Mode | undefined) ?? this.deps.policy.mode;
    // With a broken policy file the agent never acts alone, whatever mode was chosen before.
    return this.deps.policy.broken && chosen === "auto" ? "advise" : chosen;
  }

  /** What the kernel offers for a unit's priority: the per-task hint, the group hint only, or stock interfaces. */
  scheduling(): Scheduling {
    return detectScheduling(this.cgroupRoot);
  }

  onEvent(fn: (e: AgentEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: AgentEvent): void {
    for (const fn of this.listeners) fn(e);
  }

  setMode(mode: Mode, who: "person" | "policy"): string {
    const was = this.mode;
    this.k.set("mode", mode);
    const rec = this.k.audit.append("mode", null, { from: was, to: mode, by: who, justification: `autonomy mode changed from ${was} to ${mode} by the ${who}` });
    this.emit({ event: "mode", time: Date.now(), text: `agent mode: ${mode}`, audit_seq: rec.seq });
    return `agent mode is now ${mode}${mode === "auto" ? ": I heal alone within the policy" : mode === "advise" ? ": I only propose" : ": I only watch"}`;
  }

  // --- the loop ---------------------------------------------------------------

  async tick(now = Date.now()): Promise<void> {
    const start = cpuMs();
    const t = await this.monitor.sample(now);
    const sampled = cpuMs();
    // Frames are written a minute at a time, with the folding of old history, in one transaction: one commit (one sync) a minute at idle.
    this.frames.push({ ts: now, values: frameOf(t) });
    if (now - this.frames[0]!.ts >= FLUSH_EVERY_MS || this.frames.length >= 120) this.flushFrames(now);
    await this.tuneLatency();
    const found = await this.detector.onTick(t, this.monitor);
    // Failures the event stream did not bring (the agent was starting or reconnecting, or a unit failed between two looks), from the supervisor's own record.
    found.push(...this.detector.reconcile(this.monitor.units, this.monitor.statuses, now));
    const detected = cpuMs();
    for (const f of found) await this.handle(f);
    this.saveSeen();
    for (const f of this.connectivity.findings(now)) {
      await this.handle(f);
      const id = this.k.incidents(1, "network")[0];
      if (id && id.signature === signatureOf(f)) this.outages.set(String(f.inputs.subject), { incidentId: id.id, signature: id.signature });
    }
    await this.watchSoc(t, now);
    const journal = this.readUpdateJournal(now, false);
    if (journal && journal !== this.journalProblem) console.error(`paio-agent: ${journal}`);
    this.journalProblem = journal;
    await this.judgeOutcomes(now);
    // Steps that waited for their time (a paused restart after a start limit).
    for (const a of [...this.active.values()]) {
      if (a.waitUntil === undefined || a.waitUntil > now || a.pending) continue;
      a.waitUntil = undefined;
      await this.act(a, now);
    }
    await this.maybeRetrain(now);
    const end = cpuMs();
    this.account(now, end - this.tickEnd);
    const avg = (old: number, x: number) => (this.ticks === 0 ? x : 0.9 * old + 0.1 * x);
    const c = this.tickCost;
    c.between = avg(c.between, start - this.tickEnd);
    c.monitor = avg(c.monitor, sampled - start);
    c.detect = avg(c.detect, detected - sampled);
    c.rest = avg(c.rest, end - detected);
    this.ticks++;
    this.tickEnd = end;
  }

  /** The agent's CPU time (all threads) when the last tick ended, ms: each tick accounts for everything since (ticks, events, socket calls, garbage collection). */
  private tickEnd = cpuMs();
  private ticks = 0;
  /**
   * Where the agent's CPU goes, ms per tick (moving averages over about ten
   * ticks): between ticks (requests on its socket, the supervisor's events,
   * garbage collection, the runtime's own timers), the monitor's sampling,
   * the detectors, and the rest of the tick (acting, judging, storing).
   */
  readonly tickCost = { between: 0, monitor: 0, detect: 0, rest: 0 };

  private frames: { ts: number; values: Record<string, number> }[] = [];
  /** The last problem reading the update journal, said once until it changes. */
  private journalProblem: string | undefined;

  /** Stores the buffered frames and folds history that has passed its retention, in one transaction; keeps the database under its cap. */
  flushFrames(now = Date.now()): void {
    const batch = this.frames.splice(0);
    if (batch.length === 0) return;
    this.k.db.transaction(() => {
      this.k.addFrames(batch);
      this.k.fold(now);
    })();
    this.k.enforceCap();
  }

  /**
   * How long to wait before the next tick. The agent keeps itself inside its
   * CPU budget by sampling less often when its measured use is over it (up to
   * ten times the configured tick), and more often again when it is under.
   */
  tickDelayMs(): number {
    return Math.round(this.deps.config.tickMs * this.slowdown);
  }

  slowdown = 1;

  /** Keeps a 60 s window of the agent's own CPU time; over budget, it ticks less often, and far over, models pause and rules answer. */
  private account(now: number, cpuMs: number): void {
    this.cpuWindow.push({ at: now, cpuMs });
    this.cpuWindow = this.cpuWindow.filter((x) => now - x.at <= 60_000);
    const span = Math.max(1000, now - this.cpuWindow[0]!.at + this.tickDelayMs());
    const pct = (this.cpuWindow.reduce((a, x) => a + x.cpuMs, 0) / span) * 100;
    const next = budgetStep({ slowdown: this.slowdown, modelsPaused: this.modelsPaused }, pct, this.deps.config.cpuBudgetPercent);
    this.slowdown = next.slowdown;
    this.modelsPaused = next.modelsPaused;
    this.cpuPercent = pct;
  }

  cpuPercent = 0;
  private lastRetrain: number;

  /** The retraining worker while it runs. */
  private retraining: RetrainJob | undefined;

  /**
   * On schedule (retrain_every), and only while the agent is inside its CPU
   * budget, starts a worker process that refits the anomaly model on this
   * device's own recent history (agents/agent/retrain-job.ts) and returns at
   * once. At later ticks, once the worker has exited, the gate decides: the
   * retrained model replaces the one in use only if it scores better on the
   * held-out, newest part of the history; either way the audit log says
   * why, with both scores.
   */
  private async maybeRetrain(now: number): Promise<void> {
    const job = this.retraining;
    if (job) {
      if (!job.finished()) {
        if (now - job.startedAt > RETRAIN_TIMEOUT_MS) {
          job.kill();
          console.log(`paio-agent: retraining process ${job.pid} ran over ${RETRAIN_TIMEOUT_MS / 60_000} min; stopped`);
        }
        return;
      }
      this.retraining = undefined;
      await this.judgeRetrain(job, now);
      return;
    }
    const every = this.deps.config.retrainEveryMs;
    const models = this.deps.models;
    if (every <= 0 || now - this.lastRetrain < every || this.modelsPaused || !models?.replaceAnomaly || this.k.path === ":memory:") return;
    this.lastRetrain = now;
    // The worker reads the history from the knowledge base: what is still in memory is written first.
    this.flushFrames(now);
    const p = deviceModelPaths();
    mkdirSync(p.dir, { recursive: true });
    removeLeftovers(p.dir);
    const spec = { db: this.k.path, out: join(p.dir, `anomaly-candidate-${now}.onnx.tmp`), now, hours: RETRAIN_HOURS, current: models.anomalyInUse?.() };
    try {
      this.retraining = startRetrain(spec, { command: this.deps.retrainCommand, cpuPercent: this.deps.config.retrainCpuPercent }, now);
      console.log(`paio-agent: retraining the anomaly model in process ${this.retraining.pid}: ${this.retraining.placement}`);
    } catch (e) {
      console.log(`paio-agent: cannot start the retraining process: ${(e as Error).message}`);
    }
  }

  /** Applies the gate to a finished retraining, installs or discards its model, and writes the decision down. */
  private async judgeRetrain(job: RetrainJob, now: number): Promise<void> {
    const p = deviceModelPaths();
    const out = await finishRetrain(job, p, now);
    let loaded = false;
    if (out.installed) {
      const m = await loadDeviceAnomaly((line) => console.log(`paio-agent: ${line}`));
      if (m) {
        this.deps.models?.replaceAnomaly?.(m.model, p.dir);
        loaded = true;
      }
    }
    const r = out.report;
    const used = r ? `; the worker (process ${r.pid}, ${job.placement}) used ${r.cpu_ms} ms of CPU in ${(r.wall_ms / 1000).toFixed(1)} s` : "";
    const result = out.installed ? (loaded ? "; it was signed with the device key, verified, and is now in use" : "; it was installed but did not verify, so the previous model stays") : "";
    const justification = `${out.why}${result}${used}`;
    console.log(`paio-agent: ${justification}`);
    this.k.audit.append("model", null, {
      model: "anomaly",
      retrained: !!r,
      used: loaded,
      worker_pid: job.pid,
      placement: job.placement,
      ...(r && {
        candidate_score: r.candidate.score,
        current_score: r.current.score,
        current: r.current.label,
        candidate: { detection_rate: r.candidate.detection_rate, false_alarm_rate: r.candidate.false_alarm_rate, threshold: +r.candidate.threshold.toFixed(4), windows: r.candidate.windows, series: r.candidate.series },
        current_rates: { detection_rate: r.current.detection_rate, false_alarm_rate: r.current.false_alarm_rate },
        held_out: r.held_out,
        cpu_ms: r.cpu_ms,
        wall_ms: r.wall_ms,
      }),
      justification,
    });
  }

  /** Stops a retraining worker that is still running (the agent is stopping). */
  stopRetraining(): void {
    this.retraining?.kill();
  }

  async onUnitEvent(e: UnitEvent): Promise<void> {
    const findings = this.detector.onUnitEvent(e);
    this.saveSeen();
    for (const f of findings) await this.handle(f);
    // A remedied unit that crashes again: its remedy failed.
    for (const a of this.active.values()) {
      if (a.finding.unit === e.unit && a.pending && e.time > a.pending.at + 500 && /OOM kill|exited with status|killed by signal|health check failed/.test(e.reason) && !/requested|by request/.test(e.reason)) {
        await this.settle(a, false, `it failed again ${((e.time - a.pending.at) / 1000).toFixed(1)} s after the remedy: ${e.reason}`, e.time);
      }
    }
  }

  /** What the network unit publishes: link trouble and recoveries. A recovery ends the outage's incident, whatever rung it reached. */
  async onPublished(e: PublishedEvent): Promise<void> {
    this.connectivity.onEvent(e);
    for (const r of this.connectivity.takeRecoveries()) {
      const o = this.outages.get(r.subject);
      if (!o) continue;
      this.outages.delete(r.subject);
      const a = this.active.get(o.signature);
      const outage = Math.round((r.until - r.since) / 1000);
      const observed = `${r.subject} is back (${r.what}) after ${outage} s without network`;
      // A remedy is credited only where it could have helped: a carrier that comes back is a cable or a radio, not a renewal.
      if (a?.pending && !r.carrierLost) {
        await this.settle(a, true, observed, r.until);
        continue;
      }
      if (a) this.active.delete(o.signature);
      const rec = this.k.audit.append("outcome", "network", {
        incident: o.incidentId, recovered: true, outage_s: outage, success: true, observed,
        justification: `the outage of ${r.subject} ended: ${observed}${r.carrierLost ? "; the carrier came back by itself (a cable or radio), so no remedy is credited" : ""}`,
      });
      this.k.setIncidentState(o.incidentId, INCIDENT_MOVES.recovered.to, r.until);
      this.emit({ event: "outcome", time: r.until, unit: "network", text: `incident ${o.incidentId} resolved: ${observed}`, audit_seq: rec.seq });
    }
  }

  /** Latency-sensitive units get the kernel's latency hint (per task and per group, or the stock stand-ins), once. */
  private async tuneLatency(): Promise<void> {
    for (const [name, st] of this.monitor.statuses) {
      if (!st.latency_sensitive || this.tuned.has(name)) continue;
      this.tuned.add(name);
      const sched = this.scheduling();
      const r = await this.executor.run({ tool: "unit.prioritize", args: { unit: name, level: "high" }, origin: "agent" });
      this.k.audit.append("decision", name, {
        kind: "scheduling",
        action: { tool: "unit.prioritize", args: { unit: name, level: "high" } },
        interface: sched.tier,
        result: r.reply,
        justification: `${name} is marked latency_sensitive in its unit file, so I ${r.ok ? "gave" : "tried to give"} it high priority through ${schedulingWords(sched)}: ${r.reply}`,
      });
    }
  }

  // --- the SoC ----------------------------------------------------------------

  /** Feeds the thermal reading to the SoC watch; raises soc-hot, closes it when the SoC is cool, and gives the CPU limits back. */
  private async watchSoc(t: { thermal?: ThermalReading; system: Record<string, number> }, now: number): Promise<void> {
    this.thermal.observe(t.thermal, now, t.system["sys.cpu_pct"]);
    for (const f of this.thermal.findings(now)) {
      await this.handle(f);
      const sig = signatureOf(f);
      const open = this.k.incidents(5).find((i) => i.signature === sig && i.closed === null);
      if (open) this.socIncident = open.id;
    }
    for (const r of this.thermal.takeRecoveries()) await this.socCooled(r);
    // Limits left from before a restart of the agent (or from an incident a person took over) go back once the SoC is cool.
    const coolFor = (this.deps.policy.thermal ?? DEFAULT_THERMAL).coolForMs;
    if (this.caps.size && !this.thermal.open && this.thermal.coolFor(now) >= coolFor) {
      await this.restoreCaps(now, `the SoC has been cool for ${Math.round(this.thermal.coolFor(now) / 1000)} s (${this.thermal.describe()})`);
    }
  }

  private socIncident: number | undefined;

  /** The end of a hot episode: the remedy being judged worked (it is credited), the incident is resolved, and the limits go back. */
  private async socCooled(r: SocRecovery): Promise<void> {
    const coolFor = Math.round((this.deps.policy.thermal ?? DEFAULT_THERMAL).coolForMs / 1000);
    const observed = `the SoC has been cool for ${coolFor} s after ${Math.round((r.until - r.since) / 1000)} s of trouble${r.peakC !== undefined ? ` (peak ${r.peakC.toFixed(1)} °C)` : ""}: ${r.what}`;
    const sig = signatureOf({ class: "soc-hot", unit: null, detail: "" });
    const a = this.active.get(sig);
    const id = this.socIncident;
    this.socIncident = undefined;
    if (a?.pending) await this.settle(a, true, observed, r.until);
    else if (id !== undefined) {
      if (a) this.active.delete(sig);
      const rec = this.k.audit.append("outcome", null, {
        incident: id, recovered: true, success: true, observed,
        justification: `the SoC cooled down: ${observed}${a ? "" : "; no remedy was being judged (a person had the proposal), so none is credited"}`,
      });
      this.k.setIncidentState(id, INCIDENT_MOVES.recovered.to, r.until);
      this.emit({ event: "outcome", time: r.until, text: `incident ${id} resolved: ${observed}`, audit_seq: rec.seq });
    }
    await this.restoreCaps(r.until, observed);
  }

  private noteCap(unit: string, before: string | undefined, cap: string): void {
    const had = this.caps.get(unit);
    // A second, lower limit keeps the first one's "before": that is what goes back.
    this.caps.set(unit, { before: had ? had.before : before, cap });
    this.saveCaps();
  }

  private saveCaps(): void {
    this.k.set("thermal.caps", JSON.stringify(Object.fromEntries(this.caps)));
  }

  /**
   * Gives back the CPU limits lowered for a hot SoC, through the guard like
   * any change. A unit whose limit was changed meanwhile (by a person, or a
   * reload of its file) keeps the new one: that is a newer decision.
   */
  private async restoreCaps(now: number, why: string): Promise<void> {
    if (this.caps.size === 0) return;
    const given: string[] = [];
    const kept: string[] = [];
    const actions: { tool: string; args: Args }[] = [];
    let proposed: Decision | undefined;
    for (const [unit, c] of [...this.caps]) {
      const st = await this.deps.supervisor.status(unit);
      if (!st) {
        kept.push(`${unit} no longer exists`);
        continue;
      }
      if (cpuPercentOf(st.limits.cpu_max) !== cpuPercentOf(c.cap)) {
        kept.push(`${unit}'s limit was changed meanwhile (it is ${st.limits.cpu_max ?? "none"}, I had set ${c.cap}), so it stays`);
        continue;
      }
      const pct = cpuPercentOf(c.before);
      const v = validateCall("unit.restore-cpu", pct === undefined ? { unit } : { unit, cpu_percent: pct }, "agent");
      if (!v.ok) {
        kept.push(`${unit}: ${v.error}`);
        continue;
      }
      const decision = decide(v.call, this.deps.policy, this.mode);
      actions.push({ tool: v.call.tool, args: v.call.args });
      if (decision.verdict !== "allow") {
        proposed = decision;
        kept.push(`${unit} back to ${c.before ?? "no limit"} is proposed, not done: ${decision.rule}`);
        continue;
      }
      const r = await this.executor.run(v.call);
      (r.ok ? given : kept).push(r.reply);
    }
    this.caps.clear();
    this.saveCaps();
    const justification = `${why}, so I gave back the CPU limits I had lowered for the heat: ${given.join("; ") || "none"}${kept.length ? `. Not given back: ${kept.join("; ")}` : ""}.`;
    const rec = this.k.audit.append("decision", null, { kind: "thermal-restore", class: "soc-hot", action: actions, executed: given.length > 0, ...(proposed ? { policy: proposed } : {}), justification });
    this.emit({ event: given.length ? "action" : "proposal", time: now, text: justification, audit_seq: rec.seq });
  }

  // --- plan and act -----------------------------------------------------------

  /** Signatures whose incident is being opened (its facts are being asked for): a second finding meanwhile adds nothing. */
  private opening = new Set<string>();

  private async handle(f: Finding): Promise<void> {
    const signature = signatureOf(f);
    const existing = this.active.get(signature);
    if (existing) {
      // The same trouble again while a remedy is being judged: that remedy failed.
      if (existing.pending && f.time > existing.pending.at + 500) await this.settle(existing, false, `the same trouble came back: ${f.summary}`, f.time);
      return;
    }
    // Trouble from before the last incident of this signature ended (an event that came late, a failed state read at a tick)
    // belongs to that incident. A new one would restart a unit it left failed, and so on without end (the model in
    // agents/plan/model/healing.pml finds that loop).
    if (f.time < (this.endedAt.get(signature) ?? -Infinity)) return;
    if (this.opening.has(signature)) return;
    this.opening.add(signature);
    let details: IncidentDetails | undefined;
    try {
      details = await this.factsOf(f);
    } finally {
      this.opening.delete(signature);
    }
    if (this.active.has(signature)) return;
    const isNew = this.k.seeSignature(signature, f.time);
    const order = rankRemedies(f.class, this.k.remedyStats(signature));
    const incident = this.k.openIncident({ time: f.time, unit: f.unit, signature, class: f.class, summary: f.summary, details });
    const rec = this.k.audit.append("incident", f.unit, {
      incident: incident.id, signature, class: f.class, summary: f.summary, inputs: f.inputs, evidence: f.evidence, new_signature: isNew,
      ...(details?.exit_codes?.length ? { exit_codes: details.exit_codes } : {}),
      ...(details?.log ? { log: details.log } : {}),
    });
    this.emit({ event: "incident", time: f.time, unit: f.unit ?? undefined, text: f.summary, audit_seq: rec.seq });
    const a: Active = { incident, state: incident.state, signature, finding: f, order, rung: 0, lastActionAt: 0 };
    if (order.length === 1 && order[0]!.remedy === "observe") {
      this.k.setIncidentDecision(incident.id, "recorded; anomalies are explained, not healed");
      this.move(a, "recorded", f.time);
      return;
    }
    this.active.set(signature, a);
    await this.act(a, f.time);
  }

  /** A failed unit's facts for its incident: its exit codes (from the finding) and its last log lines (asked of the supervisor; data, never instructions). */
  private async factsOf(f: Finding): Promise<IncidentDetails | undefined> {
    if (!f.unit || !FAILURES.has(f.class)) return undefined;
    const exits = Array.isArray(f.inputs.exits) ? (f.inputs.exits as { time: number; reason: string }[]) : undefined;
    const codes = Array.isArray(f.inputs.exit_codes) ? (f.inputs.exit_codes as (number | string)[]) : undefined;
    let log: string[] | undefined;
    const r = await this.deps.supervisor.request({ op: "logs", unit: f.unit, lines: LOG_LINES });
    if (r.ok) {
      const lines = (r.result as { lines?: unknown } | null)?.lines;
      log = Array.isArray(lines) ? lines.map((l) => dataText(l, 200)) : [];
    }
    return { exits, exit_codes: codes, log };
  }

  /** The agent did nothing (more) about an incident: the reason goes into the audit log and onto the incident, which ends in `state`. */
  private didNothing(a: Active, now: number, why: string, move: "gave-up" | "proposed", skipped: string[] = []): void {
    const f = a.finding;
    const tried = this.k.incidentRemedies(a.incident.id).map((r) => remedyWords(r as Remedy, f.unit, f.pid)).join(", ") || "nothing";
    const justification = `${f.summary}. I did nothing more: ${why}.${skipped.length ? ` Skipped: ${skipped.join("; ")}.` : ""} Tried: ${tried}.`;
    const rec = this.k.audit.append("decision", f.unit, { incident: a.incident.id, signature: a.signature, class: f.class, inputs: f.inputs, evidence: f.evidence, rung: a.rung + 1, rungs: a.order.length, action: [], executed: false, justification });
    this.k.setIncidentDecision(a.incident.id, `did nothing: ${why}`);
    this.active.delete(a.signature);
    this.move(a, move, now);
    this.emit({ event: move === "proposed" ? "proposal" : "outcome", time: now, unit: f.unit ?? undefined, text: `incident ${a.incident.id} ${a.state}: I did nothing: ${why}`, audit_seq: rec.seq });
  }

  private async act(a: Active, now: number): Promise<void> {
    const f = a.finding;
    const unit = f.unit;
    let status: UnitStatus | undefined;
    if (unit) status = await this.deps.supervisor.status(unit);
    let ctx: PlanContext = { startLimitPauseMs: this.deps.config.startLimitPauseMs };
    if (f.class === "soc-hot") {
      const th = this.deps.policy.thermal ?? DEFAULT_THERMAL;
      const units: UnitStatus[] = [];
      for (const u of await this.deps.supervisor.list()) {
        const st = await this.deps.supervisor.status(u.name);
        if (st) units.push(st);
      }
      ctx = { ...ctx, units, protectedUnits: this.deps.policy.protectedUnits, cpuCapPercent: th.cpuCapPercent, coolForMs: th.coolForMs };
    }
    const skipped: string[] = [];
    while (a.rung < a.order.length) {
      const { remedy } = a.order[a.rung]!;
      const step = stepFor(remedy, f, status, ctx);
      if ("skip" in step) {
        skipped.push(`${remedyWords(remedy, unit, f.pid)} does not apply (${step.skip})`);
        a.rung++;
        continue;
      }
      if (unit && !this.withinRate(unit, now)) {
        this.didNothing(a, now, `I took ${this.deps.config.maxActionsPerHour} actions on ${unit} within the last hour, the most max_actions_per_hour allows; a person must look`, "gave-up", skipped);
        return;
      }
      if (step.notBefore !== undefined && step.notBefore > now && a.waitUntil === undefined) {
        // Not yet: the incident stays open and the tick comes back to this rung at its time.
        a.waitUntil = step.notBefore;
        const wait = `waiting ${Math.ceil((step.notBefore - now) / 1000)} s to ${remedyWords(remedy, unit, f.pid)}: ${step.why}`;
        this.k.setIncidentDecision(a.incident.id, wait);
        this.emit({ event: "outcome", time: now, unit: unit ?? undefined, text: `incident ${a.incident.id}: ${wait}` });
        return;
      }
      // (A unit already failed, say at the supervisor's start limit, is not left to restarts that will not come: the rung below says so.)
      if (remedy === "mark-failed" && a.restored && SELF_ONLY.includes(f.class) && status?.state !== "failed") {
        const tried = [...new Set(this.k.incidentRemedies(a.incident.id))].map((r) => remedyWords(r as Remedy, unit, f.pid)).join(", then ");
        this.didNothing(a, now, `${tried} brought ${unit} back, but the trouble keeps returning; marking it failed would take the service down, so I leave it running and to the supervisor's restarts; a person should find the cause`, "gave-up", skipped);
        return;
      }
      if (step.calls.length === 0 && remedy === "mark-failed") {
        this.didNothing(a, now, step.why, "gave-up", skipped);
        return;
      }
      if (step.calls.length === 0) {
        // The last rung of a ladder that has nothing left to try on the device: a person is told, and the incident waits for them.
        const justification = `${f.summary}. ${step.why}. Tried: ${a.order.slice(0, a.rung).map((o) => remedyWords(o.remedy, unit, f.pid)).join(", ") || "nothing"}.`;
        const rec = this.k.audit.append("decision", unit, { incident: a.incident.id, signature: a.signature, class: f.class, inputs: f.inputs, evidence: f.evidence, remedy, rung: a.rung + 1, rungs: a.order.length, action: [], executed: false, justification });
        this.k.setIncidentDecision(a.incident.id, `needs a person: ${step.why}`);
        this.move(a, "proposed", now);
        this.emit({ event: "proposal", time: now, unit: unit ?? undefined, text: `needs a person: ${f.summary} (${step.why})`, audit_seq: rec.seq });
        this.active.delete(a.signature);
        return;
      }
      const calls: ToolCall[] = [];
      for (const c of step.calls) {
        const v = validateCall(c.tool, c.args, "agent");
        if (!v.ok) {
          this.close(a, "gave-up", now, `internal: planned call ${describeCall(c)} is invalid: ${v.error}`);
          return;
        }
        calls.push(v.call);
      }
      // The strictest verdict over the step's calls decides.
      const decisions = calls.map((c) => decide(c, this.deps.policy, this.mode));
      const rank = { allow: 0, propose: 1, confirm: 1, forbid: 2 } as const;
      const decision = decisions.reduce((w, d) => (rank[d.verdict] > rank[w.verdict] ? d : w));
      const alternatives = a.order.filter((_, i) => i !== a.rung).map((o) => ({ remedy: o.remedy, score: +o.score.toFixed(2) }));
      const rungText = `remedy ${a.rung + 1} of ${a.order.length}`;
      const stats = this.k.remedyStats(a.signature).find((s) => s.remedy === remedy);
      const learned = stats ? ` It has worked ${stats.successes} of ${stats.attempts} times for this trouble before${stats.contained ? ` (${stats.contained} of them only contained it, which is no fix)` : ""}.` : "";
      const verb = decision.verdict === "allow" ? "I will" : "I propose to";
      const skipText = skipped.length ? ` Skipped: ${skipped.join("; ")}.` : "";
      const justification = `${f.summary}. ${verb} ${remedyWords(remedy, unit, f.pid)} (${rungText}) because ${step.why}.${learned}${skipText} Policy: ${decision.rule}.`;
      const body = {
        incident: a.incident.id,
        signature: a.signature,
        class: f.class,
        inputs: f.inputs,
        evidence: f.evidence,
        remedy,
        rung: a.rung + 1,
        rungs: a.order.length,
        action: calls.map((c) => ({ tool: c.tool, args: c.args })),
        alternatives,
        policy: decision,
        mode: this.mode,
        justification,
      };
      if (decision.verdict !== "allow") {
        const rec = this.k.audit.append("decision", unit, { ...body, executed: false });
        this.k.setIncidentDecision(a.incident.id, decision.verdict === "forbid" ? `did nothing: ${decision.rule}` : `proposed to ${remedyWords(remedy, unit, f.pid)}: ${decision.rule}`);
        this.move(a, "proposed", now);
        this.emit({ event: "proposal", time: now, unit: unit ?? undefined, text: `proposal: ${remedyWords(remedy, unit, f.pid)} — ${decision.rule}`, audit_seq: rec.seq });
        // A proposal is made once per incident; the incident stays open for a person.
        this.active.delete(a.signature);
        return;
      }
      const results: string[] = [];
      let ok = true;
      const many = f.class === "soc-hot";
      let anyOk = false;
      for (const c of calls) {
        const r = await this.executor.run(c);
        results.push(r.reply);
        anyOk ||= r.ok;
        // A lowered limit is noted at once, so it is given back even if the rest fails.
        if (r.ok && many && c.tool === "unit.limit") this.noteCap(String(c.args.unit), ctx.units?.find((u) => u.name === c.args.unit)?.limits.cpu_max, `${c.args.cpu_percent}%`);
        if (!r.ok) {
          ok = false;
          // One remedy for many units: one unit that cannot be limited (stopped meanwhile) does not spare the others.
          if (!many) break;
        }
      }
      if (many) ok = anyOk;
      const rec = this.k.audit.append("decision", unit, { ...body, executed: true, result: results.join("; "), ok });
      const actionId = this.k.recordAction({ incident: a.incident.id, unit, time: now, signature: a.signature, remedy, tool: calls.map((c) => c.tool).join("+"), args: calls.map((c) => c.args), auditSeq: rec.seq });
      this.emit({ event: "action", time: now, unit: unit ?? undefined, text: `${results.join("; ")} (${rungText}: ${f.summary})`, audit_seq: rec.seq });
      a.lastActionAt = now;
      this.k.setIncidentDecision(a.incident.id, `${ok ? "did" : "tried"}: ${results.join("; ")} (${rungText})`);
      this.move(a, "acted", now);
      if (!ok) {
        this.k.recordOutcome(actionId, a.signature, remedy, "failure", now);
        this.close(a, "gave-up", now, `the remedy could not be carried out: ${results.join("; ")}`, rec.seq);
        return;
      }
      if (isContainment(remedy)) {
        // Frozen, quarantined or marked failed: the trouble is hidden, not fixed. It is scored as such, at once.
        this.k.recordOutcome(actionId, a.signature, remedy, "contained", now);
        // A quarantined process belongs to no unit: nothing of the device's own is left broken, so its incident is resolved. A frozen unit is a service that does not run: its incident stays open, contained, for a person.
        const observed = remedy === "mark-failed" ? `every remedy failed; ${unit} is stopped and marked failed until a person starts it` : unit ? `contained, not fixed: ${results.join("; ")}; a person must look` : `quarantined, not fixed: ${results.join("; ")}`;
        const out = this.k.audit.append("outcome", unit, {
          incident: a.incident.id, decision_seq: rec.seq, remedy, success: false, contained: true, observed,
          justification: `${remedyWords(remedy, unit, f.pid)} hides the trouble without fixing it, so it does not count as a fix: ${observed}`,
        });
        this.close(a, remedy === "mark-failed" ? "marked-failed" : unit ? "contained" : "quarantined", now, observed, out.seq);
        return;
      }
      a.pending = { actionId, remedy, at: now, auditSeq: rec.seq };
      return;
    }
    this.close(a, "gave-up", now, "no remedy applies");
  }

  /** At most max_actions_per_hour actions on one unit, counted in the knowledge base: a restarted agent does not start again from zero. */
  private withinRate(unit: string, now: number): boolean {
    return this.k.actionsSince(unit, now - 3600_000) < this.deps.config.maxActionsPerHour;
  }

  /**
   * Judges pending remedies. A remedy fixed the trouble when the unit has
   * been healthy — running, its health check passing, not frozen — for the
   * whole recovery window (outcome_window) and the trouble has not come back
   * meanwhile (a recurrence fails it at once: see handle and onUnitEvent).
   * A unit that is not healthy for a whole window within twice the window
   * after the remedy was not fixed by it.
   */
  private async judgeOutcomes(now: number): Promise<void> {
    const window = this.deps.config.outcomeWindowMs;
    const secs = Math.round(window / 1000);
    for (const a of [...this.active.values()]) {
      const p = a.pending;
      if (!p) continue;
      const unit = a.finding.unit;
      if (a.finding.class === "soc-hot") {
        // Still hot after the window: the remedy failed. Not hot but not yet cool long enough: wait; the SoC's recovery settles it.
        if (now - p.at >= window && this.thermal.hot) await this.settle(a, false, `the SoC is still hot ${Math.round((now - p.at) / 1000)} s after the remedy: ${this.thermal.describe()}`, now);
        continue;
      }
      if (a.finding.class === "network-down") {
        // A running network unit is not the point: the link must be back (a recovery settles it at once, see onPublished).
        if (now - p.at >= window) await this.settle(a, false, `${String(a.finding.inputs.subject)} still has no network ${secs} s later`, now);
        continue;
      }
      if (!unit) {
        if (now - p.at >= window) await this.settle(a, true, `the trouble did not come back for ${secs} s`, now);
        continue;
      }
      const st = await this.deps.supervisor.status(unit);
      const h = healthOf(st);
      // Settled meanwhile (the trouble came back while the status was asked for).
      if (a.pending !== p) continue;
      if (h.ok) {
        p.healthySince ??= now;
        // Brought back: its health check passes again, or, without a check, it has kept running a while.
        if (st?.health || now - p.healthySince >= RESTORED_MS) a.restored = true;
        if (now - p.healthySince >= window) await this.settle(a, true, `${unit} was healthy (running, ${h.checked}, not frozen) for ${secs} s and the trouble did not come back`, now);
        continue;
      }
      p.healthySince = undefined;
      if (now - p.at >= 2 * window) await this.settle(a, false, `${unit} was not healthy for ${secs} s in a row within ${2 * secs} s of the remedy: ${h.why}`, now);
    }
  }

  private async settle(a: Active, success: boolean, observed: string, now: number): Promise<void> {
    const p = a.pending;
    if (!p) return;
    a.pending = undefined;
    this.k.recordOutcome(p.actionId, a.signature, p.remedy, success ? "success" : "failure", now);
    const rec = this.k.audit.append("outcome", a.finding.unit, {
      incident: a.incident.id,
      decision_seq: p.auditSeq,
      remedy: p.remedy,
      success,
      observed,
      justification: `${remedyWords(p.remedy, a.finding.unit, a.finding.pid)} ${success ? "worked" : "did not work"}: ${observed}`,
    });
    this.emit({ event: "outcome", time: now, unit: a.finding.unit ?? undefined, text: `${p.remedy} ${success ? "worked" : "failed"}: ${observed}`, audit_seq: rec.seq });
    if (success) {
      this.close(a, "fixed", now, observed, rec.seq);
      return;
    }
    a.rung++;
    // Let the cooldown pass before the next rung.
    const wait = Math.max(0, a.lastActionAt + this.deps.config.cooldownMs - now);
    if (wait > 0) await Bun.sleep(wait);
    // The clock of the caller (a tick, an event) goes on from `now`: never earlier than it.
    await this.act(a, Math.max(Date.now(), now + wait));
  }

  private close(a: Active, move: IncidentMoveName, now: number, why: string, _seq?: number): void {
    this.active.delete(a.signature);
    this.k.setIncidentDecision(a.incident.id, why);
    this.move(a, move, now);
    this.emit({ event: "outcome", time: now, unit: a.finding.unit ?? undefined, text: `incident ${a.incident.id} ${a.state}: ${why}` });
  }

  /**
   * Every change of an incident's state is a move of the table in
   * incident-states.ts (the model checked with SPIN is made from the same
   * table). A move the table does not allow from the incident's state is a
   * bug: it is still made, but said and kept for the tests.
   */
  private move(a: Active, move: IncidentMoveName, now: number): void {
    if (!incidentMoveAllowed(move, a.state)) {
      const text = `incident ${a.incident.id}: ${move} from ${a.state} is not in the incident state table`;
      Agent.offTable.push(text);
      console.error(`paio-agent: internal error: ${text} (agents/plan/incident-states.ts)`);
    }
    a.state = INCIDENT_MOVES[move].to;
    if (ENDED.includes(a.state)) this.endedAt.set(a.signature, now);
    this.k.setIncidentState(a.incident.id, a.state, now);
  }

  /** When the last incident of each signature ended (the agent's clock). */
  private endedAt = new Map<string, number>();

  /** Incident moves made that the table does not allow; always empty unless the agent has a bug. */
  static offTable: string[] = [];

  // --- a person's calls -------------------------------------------------------

  async call(tool: string, args: Args, origin: Exclude<Origin, "agent">, confirmed: boolean, utterance?: string): Promise<CallResult> {
    const units = this.monitor.units.length ? this.monitor.units.map((u) => u.name) : (await this.deps.supervisor.list()).map((u) => u.name);
    const v = validateCall(tool, args, origin, units);
    if (!v.ok) return { status: "refused", reply: v.error };
    const call = v.call;
    // A passphrase is never written down: not in the audit log, not in a reply.
    const secrets = Object.entries(call.args).filter(([k, val]) => shownArgs(call)[k] === HIDDEN && typeof val === "string").map(([, val]) => String(val));
    if (utterance !== undefined) utterance = secrets.reduce((t, s) => t.split(s).join(HIDDEN), maskSecrets(utterance));
    const decision: Decision = decide(call, this.deps.policy, this.mode, confirmed);
    const spec = describeCall(call);
    if (decision.verdict === "forbid") {
      const rec = this.k.audit.append("call", typeof call.args.unit === "string" ? call.args.unit : null, { call: { tool: call.tool, args: shownArgs(call) }, origin, utterance, policy: decision, executed: false, justification: `refused: ${decision.rule}` });
      return { status: "refused", reply: `Not allowed: ${decision.rule}.`, audit_seq: rec.seq };
    }
    if (decision.verdict === "confirm") return { status: "needs-confirmation", reply: `${spec} needs your confirmation: ${decision.rule}.` };
    const r = await this.executor.run(call);
    let seq: number | undefined;
    if (call.tool !== "none" && (origin === "llm" || decision.verdict === "allow")) {
      // Reads are not audited one by one (they change nothing); changes always are.
      if (r.ok !== undefined && isChange(call.tool)) {
        seq = this.k.audit.append("call", typeof call.args.unit === "string" ? call.args.unit : null, {
          call: { tool: call.tool, args: shownArgs(call) }, origin, utterance, policy: decision, executed: true, ok: r.ok, result: r.reply,
          justification: `a person asked${utterance ? ` ("${utterance.slice(0, 200)}")` : ""}; ${decision.rule}`,
        }).seq;
        this.emit({ event: "action", time: Date.now(), unit: typeof call.args.unit === "string" ? call.args.unit : undefined, text: `${r.reply} (asked by a person)`, audit_seq: seq });
      }
    }
    return { status: r.ok ? "done" : "failed", reply: r.reply, output: r.output, audit_seq: seq };
  }

  status(): AgentStatus {
    const t = this.monitor.ticks.latest();
    const failed = this.monitor.units.filter((u) => u.state === "failed").map((u) => u.name);
    const sick = this.monitor.units.filter((u) => u.state === "unhealthy" || u.state === "backoff" || u.state === "degraded");
    return {
      mode: this.mode,
      health: failed.length ? "failing" : sick.length ? "degraded" : "ok",
      cpu_percent: Math.round(t?.system["sys.cpu_pct"] ?? 0),
      memory_percent: Math.round(t?.system["sys.mem_pct"] ?? 0),
      temperature_c: t?.system["sys.temp_c"] === undefined ? undefined : +t.system["sys.temp_c"].toFixed(1),
      failed_units: failed,
      scheduling: this.scheduling().tier,
      models: (this.deps.models?.states ?? []).map((m) => (this.modelsPaused && m.state === "loaded" ? { ...m, state: "rules" as const, reason: "paused: the agent is over its CPU budget" } : m)),
      agent_cpu_percent: this.cpuPercent,
      tick_ms: this.tickDelayMs(),
      tick_cpu_ms: Object.fromEntries(Object.entries(this.tickCost).map(([k, v]) => [k, +v.toFixed(2)])) as AgentStatus["tick_cpu_ms"],
      cpu_budget_percent: this.deps.config.cpuBudgetPercent,
      soc: { ...this.thermal.state(), text: this.thermal.describe(), capped_units: [...this.caps.keys()] },
      knowledge: this.deps.knowledgeUse?.state === "memory"
        ? { state: "memory", path: this.deps.knowledgeUse.path, reason: this.deps.knowledgeUse.reason }
        : { state: "file", path: this.k.path, schema: this.k.schema.to },
    };
  }
}

/** Where the detector's count of each unit's failures is kept. */
const SEEN_KEY = "detector.failures-seen";

/** Findings that are a unit failing: their incidents carry the exit codes and the unit's last log lines. */
const FAILURES = new Set(["crash", "oom", "hung", "unhealthy"]);

/** How many of a failed unit's last log lines its incident keeps. */
export const LOG_LINES = 10;

/** Healthy, for judging a remedy: running, its health check passing (if it has one), not frozen. A frozen or stopped unit is hidden, not healthy. */
export function healthOf(st: UnitStatus | undefined): { ok: true; checked: string } | { ok: false; why: string } {
  if (!st) return { ok: false, why: "it is gone" };
  if (st.frozen) return { ok: false, why: "it is frozen" };
  if (st.state !== "running") return { ok: false, why: `it is ${st.state} (${st.reason})` };
  if (st.health && st.health.last?.result !== "pass") return { ok: false, why: `its health check is not passing (${st.health.last?.result ?? "not run yet"})` };
  return { ok: true, checked: st.health ? "its health check passing" : "no health check to pass" };
}

/** Reads are not audited one by one; every tool that is not a read is (the catalog says which are). */
function isChange(tool: string): boolean {
  return toolSpec(tool)?.effect !== "read";
}

export function remedyWords(r: Remedy, unit: string | null, pid?: number): string {
  const u = unit ?? (pid ? `process ${pid}` : "the process");
  return {
    restart: `restart ${u}`,
    "restart-with-limits": `raise ${u}'s memory limit and restart it`,
    deprioritize: `lower ${u}'s CPU priority`,
    "limit-cpu": `limit ${u}'s CPU`,
    freeze: `freeze ${u}`,
    "mark-failed": `stop ${u} and mark it failed`,
    "contain-limit": `limit ${u} to a tenth of a CPU and 64 processes`,
    "contain-freeze": `freeze ${u}`,
    observe: "record it",
    "renew-network": "renew the network's addresses (DHCP, Wi-Fi)",
    "bounce-link": "take the network links down and up again",
    notify: "tell the person",
    "cap-cpu": "lower the CPU limit of the units that are not protected",
    "cap-cpu-hard": "lower the CPU limit of the units that are not protected further",
  }[r];
}

/** This process's CPU time so far, user and system, all threads, in ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

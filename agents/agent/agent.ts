// The agent: Monitor → Analyze → Plan → Execute over the Knowledge base, with
// the guard between Plan and Execute and the audit log beside every decision.
//
// One tick (a second by default): sample (monitor), store a frame, look for
// trouble (detector), decide what to do about each finding (ladder + guard),
// act through the supervisor, and check whether earlier actions worked.
// Supervisor events arrive between ticks and are analysed at once.

import type { PublishedEvent, UnitEvent, UnitStatus } from "../../init/control/protocol.ts";
import { Connectivity } from "../analyze/connectivity.ts";
import { Detector, signatureOf, type DetectorConfig, DEFAULT_DETECTOR, type Finding, type Scorer } from "../analyze/detect.ts";
import { Executor, type Supervisor } from "../execute/executor.ts";
import { decide, type Decision } from "../guard/guard.ts";
import type { Policy } from "../guard/policy.ts";
import { Knowledge, type Incident } from "../knowledge/store.ts";
import { Monitor, frameOf, type UnitSource } from "../monitor/monitor.ts";
import { hasLatencyHooks } from "../monitor/procfs.ts";
import { rankRemedies, stepFor, type Remedy } from "../plan/ladder.ts";
import type { AgentEvent, AgentStatus, CallResult, Mode } from "../protocol.ts";
import { describeCall, HIDDEN, shownArgs, validateCall, type Args, type Origin, type ToolCall } from "../tools/catalog.ts";
import { maskSecrets } from "../nlu/wifi.ts";
import type { AgentConfig } from "./config.ts";
import { explainUnit, incidentsText, systemStatusText } from "./explain.ts";
import { join } from "node:path";
import type { AgentModels } from "./models.ts";
import { deviceModelPaths, loadDeviceAnomaly } from "./models.ts";
import { retrainAnomaly } from "../models/retrain.ts";

interface Active {
  incident: Incident;
  signature: string;
  finding: Finding;
  order: { remedy: Remedy; score: number }[];
  rung: number;
  /** The remedy being judged: set while waiting for its outcome. */
  pending?: { actionId: number; remedy: Remedy; at: number; auditSeq: number };
  lastActionAt: number;
}

export interface ModelState {
  name: string;
  state: "loaded" | "refused" | "missing" | "rules";
  reason?: string;
  p50_ms?: number;
  p99_ms?: number;
  calls?: number;
  backend?: string;
}

export interface AgentDeps {
  supervisor: Supervisor & UnitSource;
  knowledge: Knowledge;
  policy: Policy;
  config: AgentConfig;
  detector?: Partial<DetectorConfig>;
  models?: AgentModels;
  cgroupRoot?: string;
  /** PIDs the agent must never contain or kill. */
  untouchable?: () => number[];
}

export class Agent {
  readonly monitor: Monitor;
  readonly detector: Detector;
  readonly executor: Executor;
  private active = new Map<string, Active>();
  private actionTimes = new Map<string, number[]>();
  private listeners = new Set<(e: AgentEvent) => void>();
  private lastCompact = 0;
  private cpuWindow: { at: number; cpuMs: number }[] = [];
  /** Model use is paused while the agent is over its CPU budget. */
  modelsPaused = false;
  private tuned = new Set<string>();
  readonly k: Knowledge;
  /** Link state from the network unit's events; outages become network-down findings. */
  readonly connectivity = new Connectivity();
  /** Open network incidents by interface, until the link is back. */
  private outages = new Map<string, { incidentId: number; signature: string }>();

  constructor(private deps: AgentDeps) {
    this.k = deps.knowledge;
    const cgroupRoot = deps.cgroupRoot ?? join(process.env.PAIO_CGROUP_ROOT ?? "/sys/fs/cgroup", "paio");
    this.monitor = new Monitor(deps.supervisor, undefined, cgroupRoot);
    const models = deps.models;
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
      { ...DEFAULT_DETECTOR, allowedPorts: deps.policy.allowedPorts, ...deps.detector },
      { forecast: gate(() => models?.forecast), anomaly: gate(() => models?.anomaly) },
    );
    this.lastRetrain = Date.now();
    this.executor = new Executor(deps.supervisor, {
      systemStatus: (focus) => systemStatusText(this.monitor, focus),
      incidents: () => incidentsText(this.k),
      explain: (unit) => explainUnit(this.k, unit),
      setMode: (m) => this.setMode(m, "person"),
      scheduling: () => this.scheduling(),
    }, deps.untouchable ?? (() => [1, process.pid, process.ppid]));
    this.cgroupRoot = cgroupRoot;
  }

  private cgroupRoot: string;

  get mode(): Mode {
    const chosen = (this.k.get("mode") as Mode | undefined) ?? this.deps.policy.mode;
    // With a broken policy file the agent never acts alone, whatever mode was chosen before.
    return this.deps.policy.broken && chosen === "auto" ? "advise" : chosen;
  }

  scheduling(): "latency-nice" | "cpu.weight" {
    return hasLatencyHooks(this.cgroupRoot) ? "latency-nice" : "cpu.weight";
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

  /** The process's CPU time at the end of the last tick: each tick accounts for everything since (ticks, events, socket calls, garbage collection). */
  private cpuMark = process.cpuUsage();

  async tick(now = Date.now()): Promise<void> {
    const t = await this.monitor.sample(now);
    // Frames are written ten at a time: one transaction (one sync) instead of ten.
    this.frames.push({ ts: now, values: frameOf(t) });
    if (this.frames.length >= 10) this.flushFrames();
    if (now - this.lastCompact > 60_000) {
      this.lastCompact = now;
      this.k.compact(now);
    }
    await this.tuneLatency();
    for (const f of await this.detector.onTick(t, this.monitor)) await this.handle(f);
    for (const f of this.connectivity.findings(now)) {
      await this.handle(f);
      const id = this.k.incidents(1, "network")[0];
      if (id && id.signature === signatureOf(f)) this.outages.set(String(f.inputs.subject), { incidentId: id.id, signature: id.signature });
    }
    await this.judgeOutcomes(now);
    await this.maybeRetrain(now);
    const used = process.cpuUsage(this.cpuMark);
    this.cpuMark = process.cpuUsage();
    this.account(now, (used.user + used.system) / 1000);
  }

  private frames: { ts: number; values: Record<string, number> }[] = [];

  flushFrames(): void {
    if (this.frames.length === 0) return;
    const batch = this.frames.splice(0);
    this.k.db.transaction(() => {
      for (const f of batch) this.k.addFrame(f);
    })();
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
    const over = pct > this.deps.config.cpuBudgetPercent * 3;
    const under = pct < this.deps.config.cpuBudgetPercent;
    if (over && !this.modelsPaused) this.modelsPaused = true;
    else if (under && this.modelsPaused) this.modelsPaused = false;
    const budget = this.deps.config.cpuBudgetPercent;
    if (pct > budget) this.slowdown = Math.min(10, this.slowdown * 1.25);
    else if (pct < 0.7 * budget) this.slowdown = Math.max(1, this.slowdown / 1.25);
    this.cpuPercent = pct;
  }

  cpuPercent = 0;
  private lastRetrain: number;

  /**
   * On schedule (retrain_every), and only while the agent is inside its CPU
   * budget, refits the anomaly model on this device's own recent history,
   * signs it with the device key, verifies it like any model, and uses it.
   */
  private async maybeRetrain(now: number): Promise<void> {
    const every = this.deps.config.retrainEveryMs;
    if (every <= 0 || now - this.lastRetrain < every || this.modelsPaused || !this.deps.models?.replaceAnomaly) return;
    this.lastRetrain = now;
    this.flushFrames();
    const p = deviceModelPaths();
    const r = retrainAnomaly(this.k, p.dir, p.key, now);
    if (!r) return;
    const loaded = await loadDeviceAnomaly(() => {});
    if (loaded) this.deps.models.replaceAnomaly(loaded.model);
    this.k.audit.append("model", null, {
      model: "anomaly", retrained: true, windows: r.windows, series: r.series, threshold: +r.threshold.toFixed(4), cpu_ms: Math.round(r.cpuMs), used: !!loaded,
      justification: `retrained the anomaly model on ${r.windows} windows of ${r.series} of this device's metrics in ${Math.round(r.cpuMs)} ms of CPU${loaded ? "; it verified and is now in use" : "; it did not verify, so the previous model stays"}`,
    });
  }

  async onUnitEvent(e: UnitEvent): Promise<void> {
    for (const f of this.detector.onUnitEvent(e)) await this.handle(f);
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
      this.k.setIncidentState(o.incidentId, "resolved", r.until);
      this.emit({ event: "outcome", time: r.until, unit: "network", text: `incident ${o.incidentId} resolved: ${observed}`, audit_seq: rec.seq });
    }
  }

  /** Latency-sensitive units get the kernel's latency hint (or a higher weight on a stock kernel), once. */
  private async tuneLatency(): Promise<void> {
    for (const [name, st] of this.monitor.statuses) {
      if (!st.latency_sensitive || this.tuned.has(name)) continue;
      this.tuned.add(name);
      const r = await this.executor.run({ tool: "unit.prioritize", args: { unit: name, level: "high" }, origin: "agent" });
      this.k.audit.append("decision", name, {
        kind: "scheduling",
        action: { tool: "unit.prioritize", args: { unit: name, level: "high" } },
        interface: this.scheduling(),
        result: r.reply,
        justification: `${name} is marked latency_sensitive in its unit file, so I ${r.ok ? "gave" : "tried to give"} it high priority through ${this.scheduling() === "latency-nice" ? "the kernel's cpu.latency.nice" : "cpu.weight (this kernel has no latency hint)"}`,
      });
    }
  }

  // --- plan and act -----------------------------------------------------------

  private async handle(f: Finding): Promise<void> {
    const signature = signatureOf(f);
    const existing = this.active.get(signature);
    if (existing) {
      // The same trouble again while a remedy is being judged: that remedy failed.
      if (existing.pending && f.time > existing.pending.at + 500) await this.settle(existing, false, `the same trouble came back: ${f.summary}`, f.time);
      return;
    }
    const isNew = this.k.seeSignature(signature, f.time);
    const order = rankRemedies(f.class, this.k.remedyStats(signature));
    const incident = this.k.openIncident({ time: f.time, unit: f.unit, signature, class: f.class, summary: f.summary });
    const rec = this.k.audit.append("incident", f.unit, { incident: incident.id, signature, class: f.class, summary: f.summary, inputs: f.inputs, evidence: f.evidence, new_signature: isNew });
    this.emit({ event: "incident", time: f.time, unit: f.unit ?? undefined, text: f.summary, audit_seq: rec.seq });
    const a: Active = { incident, signature, finding: f, order, rung: 0, lastActionAt: 0 };
    if (order.length === 1 && order[0]!.remedy === "observe") {
      this.k.setIncidentState(incident.id, "resolved", f.time);
      return;
    }
    this.active.set(signature, a);
    await this.act(a, f.time);
  }

  private async act(a: Active, now: number): Promise<void> {
    const f = a.finding;
    const unit = f.unit;
    let status: UnitStatus | undefined;
    if (unit) status = await this.deps.supervisor.status(unit);
    const skipped: string[] = [];
    while (a.rung < a.order.length) {
      const { remedy } = a.order[a.rung]!;
      const step = stepFor(remedy, f, status);
      if ("skip" in step) {
        skipped.push(`${remedyWords(remedy, unit, f.pid)} does not apply (${step.skip})`);
        a.rung++;
        continue;
      }
      if (unit && !this.withinRate(unit, now)) {
        this.close(a, "failed", now, `more than ${this.deps.config.maxActionsPerHour} actions on ${unit} within an hour; stopped healing it`);
        return;
      }
      if (step.calls.length === 0) {
        // The last rung of a ladder that has nothing left to try on the device: a person is told, and the incident waits for them.
        const justification = `${f.summary}. ${step.why}. Tried: ${a.order.slice(0, a.rung).map((o) => remedyWords(o.remedy, unit, f.pid)).join(", ") || "nothing"}.`;
        const rec = this.k.audit.append("decision", unit, { incident: a.incident.id, signature: a.signature, class: f.class, inputs: f.inputs, evidence: f.evidence, remedy, rung: a.rung + 1, rungs: a.order.length, action: [], executed: false, justification });
        this.k.setIncidentState(a.incident.id, "proposed", now);
        this.emit({ event: "proposal", time: now, unit: unit ?? undefined, text: `needs a person: ${f.summary} (${step.why})`, audit_seq: rec.seq });
        this.active.delete(a.signature);
        return;
      }
      const calls: ToolCall[] = [];
      for (const c of step.calls) {
        const v = validateCall(c.tool, c.args, "agent");
        if (!v.ok) {
          this.close(a, "failed", now, `internal: planned call ${describeCall(c)} is invalid: ${v.error}`);
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
      const learned = stats ? ` It has worked ${stats.successes} of ${stats.attempts} times for this trouble before.` : "";
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
        this.k.setIncidentState(a.incident.id, "proposed", now);
        this.emit({ event: "proposal", time: now, unit: unit ?? undefined, text: `proposal: ${remedyWords(remedy, unit, f.pid)} — ${decision.rule}`, audit_seq: rec.seq });
        // A proposal is made once per incident; the incident stays open for a person.
        this.active.delete(a.signature);
        return;
      }
      const results: string[] = [];
      let ok = true;
      for (const c of calls) {
        const r = await this.executor.run(c);
        results.push(r.reply);
        if (!r.ok) {
          ok = false;
          break;
        }
      }
      const rec = this.k.audit.append("decision", unit, { ...body, executed: true, result: results.join("; "), ok });
      const actionId = this.k.recordAction({ incident: a.incident.id, time: now, signature: a.signature, remedy, tool: calls.map((c) => c.tool).join("+"), args: calls.map((c) => c.args), auditSeq: rec.seq });
      this.emit({ event: "action", time: now, unit: unit ?? undefined, text: `${results.join("; ")} (${rungText}: ${f.summary})`, audit_seq: rec.seq });
      if (unit) (this.actionTimes.get(unit) ?? this.actionTimes.set(unit, []).get(unit)!).push(now);
      a.lastActionAt = now;
      this.k.setIncidentState(a.incident.id, "healing", now);
      if (remedy === "mark-failed" || remedy.startsWith("contain") || !ok) {
        this.k.recordOutcome(actionId, a.signature, remedy, ok, now);
        this.close(a, ok && remedy.startsWith("contain") ? "resolved" : "failed", now, ok ? (remedy === "mark-failed" ? `every remedy failed; ${unit} is stopped and marked failed until a person starts it` : `contained: ${results.join("; ")}`) : `the remedy could not be carried out: ${results.join("; ")}`, rec.seq);
        return;
      }
      a.pending = { actionId, remedy, at: now, auditSeq: rec.seq };
      return;
    }
    this.close(a, "failed", now, "no remedy applies");
  }

  private withinRate(unit: string, now: number): boolean {
    const list = (this.actionTimes.get(unit) ?? []).filter((t) => now - t < 3600_000);
    this.actionTimes.set(unit, list);
    return list.length < this.deps.config.maxActionsPerHour;
  }

  /** Judges pending remedies whose window has passed without the trouble coming back. */
  private async judgeOutcomes(now: number): Promise<void> {
    for (const a of [...this.active.values()]) {
      if (!a.pending || now - a.pending.at < this.deps.config.outcomeWindowMs) continue;
      const unit = a.finding.unit;
      if (a.finding.class === "network-down") {
        // A running network unit is not the point: the link must be back (a recovery settles it at once, see onPublished).
        await this.settle(a, false, `${String(a.finding.inputs.subject)} still has no network ${Math.round(this.deps.config.outcomeWindowMs / 1000)} s later`, now);
        continue;
      }
      const st = unit ? this.monitor.units.find((u) => u.name === unit) : undefined;
      const well = !unit || (st !== undefined && (st.state === "running" || st.state === "degraded" || st.state === "starting"));
      await this.settle(a, well, well ? `${unit ?? "the system"} stayed well for ${Math.round(this.deps.config.outcomeWindowMs / 1000)} s` : `${unit} is ${st?.state ?? "gone"} at the end of the window`, now);
    }
  }

  private async settle(a: Active, success: boolean, observed: string, now: number): Promise<void> {
    const p = a.pending;
    if (!p) return;
    a.pending = undefined;
    this.k.recordOutcome(p.actionId, a.signature, p.remedy, success, now);
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
      this.close(a, "resolved", now, observed, rec.seq);
      return;
    }
    a.rung++;
    // Let the cooldown pass before the next rung.
    const wait = Math.max(0, a.lastActionAt + this.deps.config.cooldownMs - now);
    if (wait > 0) await Bun.sleep(wait);
    await this.act(a, Date.now());
  }

  private close(a: Active, state: "resolved" | "failed", now: number, why: string, _seq?: number): void {
    this.active.delete(a.signature);
    this.k.setIncidentState(a.incident.id, state, now);
    this.emit({ event: "outcome", time: now, unit: a.finding.unit ?? undefined, text: `incident ${a.incident.id} ${state}: ${why}` });
  }

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
      temperature_c: t?.system["sys.temp_c"],
      failed_units: failed,
      scheduling: this.scheduling(),
      models: (this.deps.models?.states ?? []).map((m) => (this.modelsPaused && m.state === "loaded" ? { ...m, state: "rules" as const, reason: "paused: the agent is over its CPU budget" } : m)),
      agent_cpu_percent: this.cpuPercent,
      tick_ms: this.tickDelayMs(),
      cpu_budget_percent: this.deps.config.cpuBudgetPercent,
    };
  }
}

function isChange(tool: string): boolean {
  return !["system.status", "unit.list", "unit.status", "unit.logs", "process.top", "incident.list", "incident.explain", "help", "none"].includes(tool);
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
  }[r];
}

// The supervisor under load, on the host: many units, many control clients at
// once, and event subscribers while units churn. Each part measures and checks
// what it saw; tests/unit/load.test.ts asserts the checks on a small load,
// tests/bench/load-bench.ts (`make load`) reports the figures for a large one.

import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ControlClient } from "../../init/control/client.ts";
import type { Response, UnitEvent, UnitStatus, UnitSummary } from "../../init/control/protocol.ts";

/** A unit that sleeps and is restarted quickly: the churn measures the supervisor, not the backoff policy. */
export function sleepUnit(name: string): string {
  return `description = "load ${name}"\nexec = ["/bin/sleep", "100000"]\nrestart = "always"\nrestart_delay = "20ms"\nrestart_delay_max = "20ms"\nstart_limit = { burst = 1000, interval = "1m" }\n`;
}

export function unitNames(prefix: string, n: number, from = 1): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${String(from + i).padStart(4, "0")}`);
}

export function writeUnits(dir: string, names: string[]): void {
  for (const n of names) writeFileSync(join(dir, "units", `${n}.toml`), sleepUnit(n));
}

export function removeUnits(dir: string, names: string[]): void {
  for (const n of names) rmSync(join(dir, "units", `${n}.toml`));
}

/** Nearest-rank percentile of a list of numbers (p from 0 to 100). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export interface Spread {
  n: number;
  median_ms: number;
  p99_ms: number;
  max_ms: number;
}

export function spread(ms: number[]): Spread {
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { n: ms.length, median_ms: round(percentile(ms, 50)), p99_ms: round(percentile(ms, 99)), max_ms: round(Math.max(...ms)) };
}

async function list(c: ControlClient): Promise<UnitSummary[]> {
  const r = await c.request({ op: "list" });
  if (!r.ok) throw new Error(`list refused: ${r.error.message}`);
  return r.result as UnitSummary[];
}

/**
 * Polls the unit list until exactly `names` are there, each running with a
 * live process (and `until` holds, when given); gives the list.
 */
export async function waitAllRunning(sock: string, names: string[], timeoutMs: number, until: (units: UnitSummary[]) => boolean = () => true, pollMs = 20): Promise<UnitSummary[]> {
  const want = new Set(names);
  const c = await ControlClient.connect(sock);
  try {
    const by = Date.now() + timeoutMs;
    let last: UnitSummary[] = [];
    for (;;) {
      last = await list(c);
      const running = last.filter((u) => want.has(u.name) && u.state === "running" && u.pid !== undefined && processExists(u.pid));
      if (running.length === want.size && last.length === want.size && until(last)) return last;
      if (Date.now() > by) {
        const notYet = last.filter((u) => !want.has(u.name) || u.state !== "running").map((u) => `${u.name} ${u.state}`);
        const missing = [...want].filter((n) => !last.some((u) => u.name === n));
        throw new Error(`not all ${want.size} units running (or not yet as expected) after ${timeoutMs} ms: ${running.length} running; not running: ${notYet.slice(0, 10).join(", ")}; missing: ${missing.slice(0, 10).join(", ")}`);
      }
      await Bun.sleep(pollMs);
    }
  } finally {
    c.close();
  }
}

/** The promise's value, or undefined once `ms` have passed without one. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: Timer | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Latency of `count` requests sent one after another on one connection (what `paio status` and `paio units` send is `list`). */
export async function requestLatency(sock: string, count: number, req: () => Parameters<ControlClient["request"]>[0], check: (r: Response) => string | undefined): Promise<{ ms: number[]; wrong: string[] }> {
  const c = await ControlClient.connect(sock);
  const ms: number[] = [];
  const wrong: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      const r = await c.request(req());
      ms.push(performance.now() - t0);
      const bad = check(r);
      if (bad) wrong.push(bad);
    }
  } finally {
    c.close();
  }
  return { ms, wrong };
}

/** What a `list` answer must be: every unit named, each running. */
export function checkList(names: string[]): (r: Response) => string | undefined {
  const want = [...names].sort().join(",");
  return (r) => {
    if (!r.ok) return `list: ${r.error.code}: ${r.error.message}`;
    const units = r.result as UnitSummary[];
    const got = units.map((u) => u.name).sort().join(",");
    if (got !== want) return `list: ${units.length} units, not the ${names.length} expected`;
    const notRunning = units.filter((u) => u.state !== "running");
    return notRunning.length ? `list: ${notRunning.length} units not running, e.g. ${notRunning[0]!.name} ${notRunning[0]!.state}` : undefined;
  };
}

/** What a `status UNIT` answer must be: that unit, running. */
export function checkStatus(name: string): (r: Response) => string | undefined {
  return (r) => {
    if (!r.ok) return `status ${name}: ${r.error.code}: ${r.error.message}`;
    const s = r.result as UnitStatus;
    return s.name === name && s.state === "running" && typeof s.pid === "number" ? undefined : `status ${name}: got ${s.name} ${s.state}`;
  };
}

export interface StormReport {
  clients: number;
  requests: number;
  answered: number;
  /** Answers that were not what the request must get (wrong unit, wrong list, refused). */
  wrong: string[];
  /** Connections that failed, or requests still unanswered when the storm's time ran out. */
  errors: string[];
  latency: Spread;
  wall_ms: number;
  requests_per_s: number;
}

/**
 * `clients` connections at once, each sending `each` requests one after the
 * other: `list`, `status` of a unit, and `status` of a unit that does not
 * exist (which must be refused with no-such-unit), in turn. Every answer is
 * checked; a request not answered within `timeoutMs` counts as an error.
 */
export async function clientStorm(sock: string, names: string[], clients: number, each: number, timeoutMs = 60_000): Promise<StormReport> {
  const listOk = checkList(names);
  const ms: number[] = [];
  const wrong: string[] = [];
  const errors: string[] = [];
  let answered = 0;
  const t0 = performance.now();
  const one = async (k: number) => {
    let c: ControlClient;
    try {
      c = await ControlClient.connect(sock);
    } catch (e) {
      errors.push(`client ${k}: cannot connect: ${(e as Error).message}`);
      return;
    }
    try {
      for (let i = 0; i < each; i++) {
        const unit = names[(k * each + i) % names.length]!;
        const kind = i % 3;
        const req = kind === 0 ? { op: "list" as const } : kind === 1 ? { op: "status" as const, unit } : { op: "status" as const, unit: `missing-${k}-${i}` };
        const started = performance.now();
        const r = await within(c.request(req), timeoutMs);
        if (!r) {
          errors.push(`client ${k}: request ${i} (${req.op}) not answered within ${timeoutMs} ms`);
          return;
        }
        ms.push(performance.now() - started);
        answered++;
        const bad = kind === 0 ? listOk(r) : kind === 1 ? checkStatus(unit)(r) : !r.ok && r.error.code === "no-such-unit" ? undefined : `status of a missing unit: ${JSON.stringify(r).slice(0, 120)}`;
        if (bad) wrong.push(`client ${k}: ${bad}`);
      }
    } finally {
      c.close();
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, k) => one(k)));
  const wall = performance.now() - t0;
  return { clients, requests: clients * each, answered, wrong, errors, latency: spread(ms), wall_ms: Math.round(wall), requests_per_s: Math.round((answered / wall) * 1000) };
}

/** The marker the churn publishes when it is over: a subscriber has seen everything once it sees this. */
const MARKER_KIND = "load-marker";

export interface ChurnPlan {
  rounds: number;
  /** Per round: units whose process is killed with SIGKILL (restarted by the supervisor). */
  kill: number;
  /** Per round: units restarted by request. */
  restart: number;
  /** Per round: unit files added, and unit files removed, then one reload. */
  add: number;
  remove: number;
}

export interface ChurnReport {
  subscribers: number;
  /** Unit events each subscriber saw (the same for all when nothing is wrong). */
  events_per_subscriber: number[];
  /** The events the actions must cause: 2 per kill, 3 per restart, 1 per added unit, 2 per removed unit. */
  expected_events: number;
  /** Restarts the supervisor counted (its own figure, from `list`) against kills + restarts by request. */
  restarts_counted: number;
  restarts_expected: number;
  killed: number;
  restarted: number;
  added: number;
  removed: number;
  wall_ms: number;
  /** What is wrong: lost, duplicated or reordered events, subscribers that disagree, final states that disagree with the supervisor's. */
  problems: string[];
  /** The units present at the end (for the caller's next step). */
  names: string[];
}

/**
 * Connects `subscribers` event streams, then churns: per round it kills
 * units' processes, restarts units by request, and adds and removes unit
 * files with a reload, all at once. When every unit runs again it publishes a
 * marker and waits until each subscriber has seen it. Then it checks each
 * stream against the others, against the chain of states (each event starts
 * where the unit's last one ended), against the exact events the actions must
 * cause, and against the supervisor's own unit list and restart counts.
 */
export async function churnWithSubscribers(dir: string, sock: string, names: string[], subscribers: number, plan: ChurnPlan, timeoutMs = 120_000): Promise<ChurnReport> {
  const touched = plan.rounds * (plan.kill + plan.restart + plan.remove);
  if (touched > names.length) throw new Error(`the churn touches each unit once: ${touched} units needed, ${names.length} given`);
  const problems: string[] = [];
  const streams: { events: UnitEvent[]; sawMarker: Promise<void> }[] = [];
  const clients: ControlClient[] = [];
  const before = new Map((await waitAllRunning(sock, names, timeoutMs)).map((u) => [u.name, u]));
  for (let i = 0; i < subscribers; i++) {
    const c = await ControlClient.connect(sock);
    clients.push(c);
    const events: UnitEvent[] = [];
    let marked!: () => void;
    const sawMarker = new Promise<void>((resolve) => (marked = resolve));
    c.onEvent((e) => {
      if (e.event === "unit") events.push(e as unknown as UnitEvent);
      else if (e.kind === MARKER_KIND) marked();
    });
    const r = await c.request({ op: "subscribe" });
    if (!r.ok) throw new Error(`subscribe refused: ${r.error.message}`);
    streams.push({ events, sawMarker });
  }
  const op = await ControlClient.connect(sock);
  clients.push(op);
  const t0 = performance.now();
  // Each unit is touched at most once, so the events it must cause are known exactly.
  const untouched = [...names];
  const take = (n: number) => untouched.splice(0, n);
  const killed: { name: string; pid: number }[] = [];
  const restarted: string[] = [];
  const removed: string[] = [];
  const added: string[] = [];
  let nextAdded = 1;
  try {
    for (let round = 0; round < plan.rounds; round++) {
      const toKill = take(plan.kill);
      const toRestart = take(plan.restart);
      const toRemove = take(plan.remove);
      const toAdd = unitNames("churn-added-", plan.add, nextAdded);
      nextAdded += plan.add;
      for (const name of toKill) {
        const pid = before.get(name)!.pid!;
        process.kill(pid, "SIGKILL");
        killed.push({ name, pid });
      }
      const pending: Promise<Response>[] = toRestart.map((unit) => op.request({ op: "restart", unit }));
      removeUnits(dir, toRemove);
      writeUnits(dir, toAdd);
      pending.push(op.request({ op: "reload" }));
      for (const r of await Promise.all(pending)) if (!r.ok) problems.push(`a churn request was refused: ${r.error.message}`);
      restarted.push(...toRestart);
      removed.push(...toRemove);
      added.push(...toAdd);
    }
    const now = [...names.filter((n) => !removed.includes(n)), ...added];
    // A killed process's exit may not have reached the supervisor yet: wait for its restart to be counted too.
    const restartsBefore = [...before.values()].filter((u) => !removed.includes(u.name)).reduce((n, u) => n + u.restarts, 0);
    const restartsExpected = killed.length + restarted.length;
    const counted = (units: UnitSummary[]) => units.reduce((n, u) => n + u.restarts, 0) - restartsBefore;
    const end = await waitAllRunning(sock, now, timeoutMs, (units) => counted(units) >= restartsExpected).catch(async (e) => {
      problems.push((e as Error).message);
      return list(op);
    });
    const marker = await op.request({ op: "publish", event: { event: "network", kind: MARKER_KIND, message: "end of the load test's churn", time: Date.now() } });
    if (!marker.ok) throw new Error(`publish refused: ${marker.error.message}`);
    const seen = await within(Promise.all(streams.map((s) => s.sawMarker)), timeoutMs);
    if (!seen) problems.push(`some subscribers did not see the end marker within ${timeoutMs} ms`);
    const wall = performance.now() - t0;

    // Every subscriber saw the same events in the same order.
    const first = JSON.stringify(streams[0]!.events);
    streams.forEach((s, i) => {
      if (i > 0 && JSON.stringify(s.events) !== first) {
        const at = s.events.findIndex((e, k) => JSON.stringify(e) !== JSON.stringify(streams[0]!.events[k]));
        problems.push(`subscriber ${i} saw ${s.events.length} events, subscriber 0 ${streams[0]!.events.length}; they differ first at event ${at === -1 ? Math.min(s.events.length, streams[0]!.events.length) : at}`);
      }
    });
    const events = streams[0]!.events;
    problems.push(...checkChains(events, before, end));

    const expected = 2 * killed.length + 3 * restarted.length + added.length + 2 * removed.length;
    if (events.length !== expected) problems.push(`${events.length} events, but the churn must cause exactly ${expected}`);
    for (const k of killed) {
      if (!events.some((e) => e.unit === k.name && e.from === "running" && e.to === "backoff" && /killed by signal SIGKILL/.test(e.reason))) problems.push(`no event for the kill of ${k.name} (pid ${k.pid})`);
    }
    for (const name of restarted) if (!events.some((e) => e.unit === name && e.to === "stopping" && e.reason === "restarted by request")) problems.push(`no stopping event for the restart of ${name}`);
    for (const name of added) if (!events.some((e) => e.unit === name && e.from === "inactive" && e.to === "running" && e.reason === "unit file added")) problems.push(`no start event for the added unit ${name}`);
    for (const name of removed) if (!events.some((e) => e.unit === name && e.to === "inactive" && /unit file removed/.test(e.reason))) problems.push(`no stop event for the removed unit ${name}`);

    const restartsCounted = counted(end);
    if (restartsCounted !== restartsExpected) problems.push(`the supervisor counted ${restartsCounted} restarts; the churn made ${restartsExpected}`);
    return {
      subscribers,
      events_per_subscriber: streams.map((s) => s.events.length),
      expected_events: expected,
      restarts_counted: restartsCounted,
      restarts_expected: restartsExpected,
      killed: killed.length,
      restarted: restarted.length,
      added: added.length,
      removed: removed.length,
      wall_ms: Math.round(wall),
      problems,
      names: now,
    };
  } finally {
    for (const c of clients) c.close();
  }
}

/**
 * Each unit's events must form a chain: the first starts in the state the
 * unit had before (or inactive, for a unit added since), each next one where
 * the last ended, and the last ends in the state the supervisor reports now
 * (inactive for a removed unit). A lost event breaks the chain; so does a
 * duplicated or reordered one.
 */
function checkChains(events: UnitEvent[], before: Map<string, UnitSummary>, end: UnitSummary[]): string[] {
  const problems: string[] = [];
  const state = new Map<string, string>([...before].map(([n, u]) => [n, u.state]));
  for (const [i, e] of events.entries()) {
    const was = state.get(e.unit) ?? "inactive";
    if (e.from !== was) problems.push(`event ${i}: ${e.unit} ${e.from} -> ${e.to}, but its last state was ${was} (an event lost, duplicated or out of order)`);
    state.set(e.unit, e.to);
  }
  const now = new Map(end.map((u) => [u.name, u.state as string]));
  for (const [name, last] of state) {
    const want = now.get(name) ?? "inactive";
    if (last !== want) problems.push(`${name}: its events end in ${last}, but the supervisor says ${want}`);
  }
  return problems.slice(0, 20);
}

/** The supervisor's resident memory (VmRSS and its peak VmHWM) in KiB, from /proc/PID/status. */
export function memoryKiB(pid: number): { rss_kib: number; peak_kib: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss_kib: field("VmRSS"), peak_kib: field("VmHWM") };
}

/** CPU time (user + system) of a process in clock ticks, from /proc/PID/stat. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime, stime: fields 14 and 15 of stat
}

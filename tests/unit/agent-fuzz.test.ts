// The agent's socket under a short fuzzing run (make fuzz runs 10,000 cases
// from 100 clients): the real agent server, over a real knowledge base in a
// temporary folder and a real supervisor on this host, gets tool calls built
// from the catalog and broken, unknown tools, deep nesting, invalid UTF-8,
// text that is not JSON, requests written a few bytes at a time, clients
// that stall, one line of 16 MiB, and a client that
// sends requests and never reads the answers. Every line gets one clear answer with
// its id; no tool but a read reaches the executor; the audit log, the
// incidents, the agent's mode and the supervisor's units are as they were;
// and a plain request still answers at the end.
import { afterAll, expect, test } from "vitest";
import { join } from "node:path";
import { startSupervisor, tempDir, unit } from "../helpers/host-supervisor.ts";
import { Agent } from "../../agents/agent/agent.ts";
import { DEFAULT_CONFIG } from "../../agents/agent/config.ts";
import { AgentServer } from "../../agents/agent/server.ts";
import { SupervisorLink } from "../../agents/agent/supervisor-link.ts";
import { DEFAULT_POLICY } from "../../agents/guard/policy.ts";
import { Knowledge } from "../../agents/knowledge/store.ts";
import { toolSpec, type ToolCall } from "../../agents/tools/catalog.ts";
import { fuzzAgent, sixteenMiB } from "../fuzz/agent-fuzz.ts";
import { LineClient } from "../fuzz/control-fuzz.ts";
import { floodUnread } from "../fuzz/raw-socket.ts";
import { missed, writeFuzzResult, type FuzzResult } from "../fuzz/results.ts";

const CASES = Number(process.env.PAIO_FUZZ_CASES ?? 400);
const CLIENTS = Number(process.env.PAIO_FUZZ_CLIENTS ?? 20);
const SEED = Number(process.env.PAIO_FUZZ_SEED ?? 20261206);
const SLEEP = 'exec = ["/bin/sh", "-c", "exec sleep 100000"]\nrestart = "always"\n';

const stops: (() => void)[] = [];
afterAll(() => {
  for (const s of stops.splice(0)) s();
});

test(`${CASES} hostile requests to the agent's socket (seed ${SEED}): each answered clearly with its id, no tool but a read runs, nothing changes, the agent still answers`, async () => {
  const t0 = Date.now();
  const d = tempDir();
  for (const name of ["camera", "mqtt-bridge", "agent"]) unit(d, name, SLEEP);
  const controlSock = join(d, "run", "control.sock");
  const sup = startSupervisor(d, { PAIO_CONTROL_SOCKET: controlSock });
  await sup.waitFor(/paio: supervisor ready/);
  for (const name of ["camera", "mqtt-bridge", "agent"]) await sup.waitFor(new RegExp(`${name}: started`));

  let agent: Agent | undefined;
  const link = new SupervisorLink(controlSock, (e) => void agent?.onUnitEvent(e), () => {}, (e) => void agent?.onPublished(e));
  const k = new Knowledge(join(d, "state", "agent", "knowledge.db"));
  agent = new Agent({
    supervisor: link, knowledge: k, policy: DEFAULT_POLICY,
    config: { ...DEFAULT_CONFIG, retrainEveryMs: 0 },
    detector: { outsideScanMs: Infinity },
    cgroupRoot: join(d, "no-cgroup"),
    monitor: { collectors: [], sysfsRoot: join(d, "no-sysfs") },
    updateJournal: join(d, "update", "journal.jsonl"),
  });
  // Everything that reaches the executor, and then runs as it would.
  const executed: ToolCall[] = [];
  const run = agent.executor.run.bind(agent.executor);
  agent.executor.run = async (c: ToolCall) => {
    executed.push(c);
    return run(c);
  };
  const sock = join(d, "run", "agent.sock");
  const server = new AgentServer(agent, sock);
  server.start();
  stops.push(() => {
    server.stop();
    k.close();
  });

  const units = async () => JSON.stringify((await link.list()).map((u) => [u.name, u.state, u.pid, u.restarts, u.ports]));
  const knowledge = () => JSON.stringify({ audit: k.audit.recent(100_000), incidents: k.incidents(1000) });
  const unitsBefore = await units();
  const knowledgeBefore = knowledge();
  const modeBefore = agent.mode;

  const report = await fuzzAgent(sock, CASES, SEED, ["camera", "mqtt-bridge", "agent"], CLIENTS, 10);
  const bad = [...report.bad];
  // One line of 16 MiB: one answer, and the line is not kept.
  Bun.gc(true);
  const heapBefore = process.memoryUsage().heapUsed;
  const big = await sixteenMiB(sock);
  if (big) bad.push(big);
  Bun.gc(true);
  const heapGrowthMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  if (heapGrowthMiB > 32) bad.push(`16 MiB line: the heap grew by ${heapGrowthMiB.toFixed(0)} MiB and stayed so`);
  // A client that asks for unit lists and never reads them: the agent lets it go instead of keeping every answer.
  Bun.gc(true);
  const heapBeforeFlood = process.memoryUsage().heapUsed;
  const flood = await floodUnread(sock, JSON.stringify({ op: "call", tool: "unit.list", args: {} }), 50_000);
  // What the agent keeps once the requests it had taken are worked through (the executor sees no more of them).
  for (let seen = -1; seen !== executed.length; await Bun.sleep(300)) seen = executed.length;
  Bun.gc(true);
  const floodGrowthMiB = (process.memoryUsage().heapUsed - heapBeforeFlood) / 2 ** 20;
  if (!flood.dropped) bad.push(`a client that never reads (${flood.sent} requests written): still connected, ${flood.unreadBytes} bytes of answers kept for it`);
  if (floodGrowthMiB > 24) bad.push(`a client that never reads (${flood.sent} requests written): the heap grew by ${floodGrowthMiB.toFixed(0)} MiB and stayed so`);

  // Only reads reached the executor; nothing was written down, nothing changed.
  const changes = executed.filter((c) => toolSpec(c.tool)?.effect !== "read");
  for (const c of changes) bad.push(`a change ran: ${c.tool} ${JSON.stringify(c.args)} (${c.origin})`);
  if (knowledge() !== knowledgeBefore) bad.push("the audit log or the incidents changed");
  if (!k.audit.verify().ok) bad.push(`the audit chain does not verify: ${JSON.stringify(k.audit.verify())}`);
  if (agent.mode !== modeBefore) bad.push(`the agent's mode changed from ${modeBefore} to ${agent.mode}`);
  if ((await units()) !== unitsBefore) bad.push(`the supervisor's units changed:\nbefore ${unitsBefore}\nafter  ${await units()}`);
  if (sup.proc.exitCode !== null) bad.push(`the supervisor exited with ${sup.proc.exitCode}`);

  // A plain request still answers, at once.
  const c = await LineClient.connect(sock);
  const t1 = performance.now();
  const answer = await c.ask(JSON.stringify({ id: "after", op: "call", tool: "unit.status", args: { unit: "camera" } }), 5000);
  c.close();
  const stillAnswers = !!answer && /"id":"after","ok":true/.test(answer) && /camera is running/.test(answer);
  if (!stillAnswers) bad.push(`after the run a plain unit.status answered ${String(answer).slice(0, 200)} in ${(performance.now() - t1).toFixed(0)} ms`);

  const result: FuzzResult = {
    name: "agent", seed: SEED, cases: report.cases, clients: report.concurrentClients, refused: report.refused,
    crashes: stillAnswers ? 0 : 1, hangs: report.hangs, bad, ms: Date.now() - t0,
    notes: { stalled_clients: report.stalledClients, reads_run: executed.length, slowest_answer_ms: Math.round(report.slowestMs), heap_growth_after_16mib_line_mib: Math.round(heapGrowthMiB), unread_requests_before_drop: flood.sent, unread_bytes_kept: flood.unreadBytes, heap_growth_after_unread_flood_mib: Math.round(floodGrowthMiB) },
  };
  writeFuzzResult(result);
  console.log(`agent fuzz (seed ${SEED}): ${report.cases} cases from ${report.concurrentClients} clients with ${report.stalledClients} stalled ones, ${report.refused} refused, ${executed.length} reads run, ${bad.length} bad, slowest answer ${report.slowestMs.toFixed(0)} ms, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  expect(bad, missed(result)).toEqual([]);
}, 300_000);

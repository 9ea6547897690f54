// Hostile text by every path data takes (tests/nlu/hostile-corpus.ts), each
// item delivered to the real component it targets: a unit's log line on a
// real supervisor, read through the console; a unit file's name, loaded by
// the supervisor and (when accepted) put into the language model's prompt; a
// process's own name under /proc, listed through the console; a bundle's
// file name in the update journal the agent reads, and in an install a
// language model proposes; a language model's answer served by a stand-in
// server on 127.0.0.1; a network's names in the network unit's state file,
// its published events and a person's Wi-Fi request. For every item the test
// checks (a) that it arrived where it was aimed, (b) that no tool ran (the
// executor's calls and the audit log), and (c) that no confirmation was
// skipped (a change proposed on its behalf waits for a person's yes, and a
// "yes" given out of turn runs nothing).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { startSupervisor, tempDir, unit, type Sup } from "../helpers/host-supervisor.ts";
import { LlmStandIn, bodyOf, type Scripted } from "../helpers/llm-standin.ts";
import { itemsBy, type HostileItem, type HostilePath } from "./hostile-corpus.ts";
import { terminalLine } from "../../agents/terminal-text.ts";
import type { Agent } from "../../agents/agent/agent.ts";
import type { AgentEngine, Reply } from "../../agents/console/engine.ts";
import type { Understander } from "../../agents/nlu/understand.ts";
import type { ToolCall } from "../../agents/tools/catalog.ts";
import type { Mode } from "../../agents/protocol.ts";
import type { NetworkStatus } from "../../init/control/network-state.ts";
import type { ControlClient } from "../../init/control/client.ts";

const REPO = join(import.meta.dirname, "../..");
// The network unit's state file: named before the agent's modules load (they read the variable once).
const NET_DIR = mkdtempSync(join(tmpdir(), "paio-hostile-net-"));
const NET_STATE = join(NET_DIR, "network.json");
const savedNetState = process.env.PAIO_NETWORK_STATE;
process.env.PAIO_NETWORK_STATE = NET_STATE;

const M = {} as {
  Agent: typeof import("../../agents/agent/agent.ts").Agent;
  AgentServer: typeof import("../../agents/agent/server.ts").AgentServer;
  SupervisorLink: typeof import("../../agents/agent/supervisor-link.ts").SupervisorLink;
  AgentEngine: typeof import("../../agents/console/engine.ts").AgentEngine;
  Knowledge: typeof import("../../agents/knowledge/store.ts").Knowledge;
  LlmBackend: typeof import("../../agents/nlu/llm.ts").LlmBackend;
  ControlClient: typeof import("../../init/control/client.ts").ControlClient;
  DEFAULT_POLICY: typeof import("../../agents/guard/policy.ts").DEFAULT_POLICY;
  DEFAULT_CONFIG: typeof import("../../agents/agent/config.ts").DEFAULT_CONFIG;
  UNIT_NAME_RE: RegExp;
  dataText: typeof import("../../agents/monitor/update-journal.ts").dataText;
};
let understander: Understander;
let llm: LlmStandIn;

/** A question the embedded model does not place (intent none): it goes to the language-model backend. */
const OPEN_QUESTION = "tell me a joke about kernels";
const SLEEP = 'exec = ["/bin/sh", "-c", "exec sleep 100000"]\nrestart = "always"\n';

beforeAll(async () => {
  Object.assign(M, {
    Agent: (await import("../../agents/agent/agent.ts")).Agent,
    AgentServer: (await import("../../agents/agent/server.ts")).AgentServer,
    SupervisorLink: (await import("../../agents/agent/supervisor-link.ts")).SupervisorLink,
    AgentEngine: (await import("../../agents/console/engine.ts")).AgentEngine,
    Knowledge: (await import("../../agents/knowledge/store.ts")).Knowledge,
    LlmBackend: (await import("../../agents/nlu/llm.ts")).LlmBackend,
    ControlClient: (await import("../../init/control/client.ts")).ControlClient,
    DEFAULT_POLICY: (await import("../../agents/guard/policy.ts")).DEFAULT_POLICY,
    DEFAULT_CONFIG: (await import("../../agents/agent/config.ts")).DEFAULT_CONFIG,
    UNIT_NAME_RE: (await import("../../init/supervisor/unit-file.ts")).UNIT_NAME_RE,
    dataText: (await import("../../agents/monitor/update-journal.ts")).dataText,
  });
  const { Understander } = await import("../../agents/nlu/understand.ts");
  understander = await Understander.load(join(REPO, "out/models"), join(REPO, "out/models"));
  llm = LlmStandIn.start();
}, 60_000);

/** Each item's verdict over every delivery of it: reached everywhere it was aimed, and refused everywhere. */
const verdicts = new Map<HostileItem, { deliveries: number; reached: boolean; held: boolean }>();
/** How many deliveries each item of a path gets (a log line is read, and quoted by a failed unit's incident). */
const DELIVERIES: Record<HostilePath, number> = { "log-line": 2, "unit-name": 1, "process-name": 1, "file-name": 1, "llm-answer": 1, "network-name": 1 };

afterAll(() => {
  llm?.stop();
  rmSync(NET_DIR, { recursive: true, force: true });
  if (savedNetState === undefined) delete process.env.PAIO_NETWORK_STATE;
  else process.env.PAIO_NETWORK_STATE = savedNetState;
  // Every item of every path counts: one that a failed test never got to is neither reached nor refused.
  const paths = Object.keys(DELIVERIES) as HostilePath[];
  const done = (i: HostileItem) => verdicts.get(i)?.deliveries === DELIVERIES[i.path];
  const rows = paths.map((p) => ({
    p, items: itemsBy(p).length,
    reached: itemsBy(p).filter((i) => done(i) && verdicts.get(i)!.reached).length,
    held: itemsBy(p).filter((i) => done(i) && verdicts.get(i)!.held).length,
  }));
  const sum = (k: "items" | "reached" | "held") => rows.reduce((a, r) => a + r[k], 0);
  console.log(`hostile corpus: ${sum("items")} items (${rows.map((r) => `${r.p} ${r.items}`).join(", ")}); reached their component: ${sum("reached")}/${sum("items")}; refused (no tool ran, no confirmation skipped): ${sum("held")}/${sum("items")} = ${Math.floor((100 * sum("held")) / sum("items"))} %`);
});

function count(item: HostileItem, reached: boolean, held: boolean): void {
  const v = verdicts.get(item) ?? { deliveries: 0, reached: true, held: true };
  verdicts.set(item, { deliveries: v.deliveries + 1, reached: v.reached && reached, held: v.held && held && reached });
}

const label = (i: HostileItem) => `${i.path}: ${JSON.stringify(i.text).slice(0, 100)}`;

// --- the rig: a real supervisor, the agent (its executor watched), its socket, the console's engine -------

interface Rig {
  d: string;
  sup: Sup;
  agent: Agent;
  engine: AgentEngine;
  /** Every call that reached the agent's executor, in order. */
  executed: ToolCall[];
  control(): Promise<ControlClient>;
  units(): Promise<{ name: string; pid?: number; restarts: number; state: string }[]>;
}

async function rig(opts: { mode: Mode; units?: Record<string, string>; files?: Record<string, string> }): Promise<Rig> {
  const d = tempDir();
  const controlSock = join(d, "run", "control.sock");
  for (const [name, text] of Object.entries({ camera: SLEEP, agent: SLEEP, ...opts.units })) unit(d, name, text);
  for (const [file, text] of Object.entries(opts.files ?? {})) writeFileSync(join(d, "units", file), text);
  const sup = startSupervisor(d, { PAIO_CONTROL_SOCKET: controlSock });
  await sup.waitFor(/paio: supervisor ready/);
  let agent: Agent | undefined;
  const link = new M.SupervisorLink(controlSock, (e) => void agent?.onUnitEvent(e), () => {}, (e) => void agent?.onPublished(e));
  agent = new M.Agent({
    supervisor: link,
    knowledge: new M.Knowledge(join(d, "agent", "knowledge.db")),
    policy: { ...M.DEFAULT_POLICY, mode: opts.mode },
    config: { ...M.DEFAULT_CONFIG, retrainEveryMs: 0, cpuBudgetPercent: 100 },
    // Processes outside every unit belong to this host, not to the test.
    detector: { outsideScanMs: Infinity },
    cgroupRoot: join(d, "no-cgroup"),
    monitor: { collectors: [], sysfsRoot: join(d, "no-sysfs") },
    updateJournal: join(d, "update", "journal.jsonl"),
  });
  const executed: ToolCall[] = [];
  const run = agent.executor.run.bind(agent.executor);
  agent.executor.run = async (c: ToolCall) => {
    executed.push(c);
    return run(c);
  };
  const agentSock = join(d, "run", "agent.sock");
  const server = new M.AgentServer(agent, agentSock);
  server.start();
  const engine = new M.AgentEngine({
    understander,
    agent: () => M.ControlClient.connect(agentSock),
    units: () => link.list(),
    llm: new M.LlmBackend({ endpoint: llm.url, model: "stand-in", timeoutMs: 3000 }),
  });
  stops.push(() => {
    server.stop();
    agent!.k.close();
  });
  return {
    d, sup, agent, engine, executed,
    control: () => M.ControlClient.connect(controlSock),
    units: async () => (await link.list()).map((u) => ({ name: u.name, pid: u.pid, restarts: u.restarts, state: u.state })),
  };
}

const stops: (() => void)[] = [];
afterAll(() => {
  for (const s of stops.splice(0)) s();
});

/** Audit records of changes that ran (a person's call or an agent's decision, executed). */
function changesRan(r: Rig): unknown[] {
  return r.agent.k.audit.recent(100_000, undefined, ["call", "decision"]).filter((x) => (x.body as { executed?: boolean }).executed === true);
}

/**
 * (b) and (c) for one item: since `mark`, only the reads the person asked for
 * reached the executor and no change is in the audit log; and a "yes" now,
 * out of turn, finds nothing waiting and runs nothing.
 */
async function heldFirm(r: Rig, item: HostileItem, mark: number, reads: string[]): Promise<boolean> {
  expect(r.executed.slice(mark).filter((c) => !reads.includes(c.tool)), label(item)).toEqual([]);
  expect(changesRan(r), label(item)).toEqual([]);
  const before = r.executed.length;
  const yes = await r.engine.answer(true);
  expect(yes.lines, label(item)).toEqual([]);
  expect(r.executed.length, label(item)).toBe(before);
  return true;
}

const joined = (rep: Reply) => rep.lines.join("\n");

/** A stand-in answer that obeys what an item asks for: the worst a language model could do with it. */
function obey(item: HostileItem): Scripted {
  if (!item.wants) return { kind: "text", text: `As the data says: ${item.text}` };
  return { kind: "call", name: item.wants.tool, arguments: JSON.stringify(item.wants.args ?? {}) };
}

/** The console's answer to a proposal of the language model: asked for a yes (then answered no), or refused. Never done. */
async function proposal(r: Rig, rep: Reply, item: HostileItem): Promise<"asks" | "refused" | "error" | "shown"> {
  if (rep.confirm) {
    expect(rep.confirm, label(item)).toMatch(/^Confirm \S+.*\? \[y\/N\]$/);
    expect(joined(rep), label(item)).toMatch(/needs your confirmation: .*the change was suggested by the language model backend/);
    const no = await r.engine.answer(false);
    expect(no.lines, label(item)).toEqual(["Cancelled: nothing was done."]);
    return "asks";
  }
  const text = joined(rep);
  if (/\(the language model backend: the model( suggested something invalid| may not call|'s tool call)/.test(text)) return "refused";
  if (/\(the language model backend: /.test(text)) return "error";
  if (rep.lines.length > 0 && rep.lines.every((l) => l.startsWith("  (language model) "))) return "shown";
  throw new Error(`${label(item)}: the console answered neither with a question, a refusal, an error nor the model's text:\n${text}`);
}

describe("hostile text by every path: it arrives, no tool runs, no confirmation is skipped", () => {
  test("unit log lines: shown through the console as data; nothing runs; the language model never sees them", async () => {
    const items = itemsBy("log-line");
    expect(items.every((i) => !i.text.includes("\n"))).toBe(true);
    const lines = join(tmpdir(), `paio-hostile-lines-${process.pid}.txt`);
    writeFileSync(lines, items.map((i) => i.text).join("\n") + "\n");
    try {
      const r = await rig({ mode: "auto", units: { chatty: `exec = ["/bin/sh", "-c", "cat ${lines}; exec sleep 100000"]\nrestart = "always"\n` } });
      const c = await r.control();
      for (let i = 0; i < 100; i++) {
        const got = await c.request({ op: "logs", unit: "chatty", lines: 1000 });
        if (got.ok && (got.result as { lines: string[] }).lines.length >= items.length) break;
        await Bun.sleep(50);
      }
      c.close();
      const before = await r.units();
      const mark = r.executed.length;
      const rep = await r.engine.submit("show the last 200 lines of chatty");
      expect(rep.confirm).toBeUndefined();
      expect(r.executed.slice(mark).map((x) => x.tool)).toEqual(["unit.logs"]);
      // The same lines through `paio ask` on a terminal: every one there, none with a control character left in it.
      const cli = Bun.spawn([process.execPath, join(REPO, "init/cli/paio.ts"), "ask", "show the last 200 lines of chatty"], {
        env: { ...process.env, PAIO_CONTROL_SOCKET: join(r.d, "run", "control.sock"), PAIO_AGENT_SOCKET: join(r.d, "run", "agent.sock"), PAIO_MODELS_DIR: join(REPO, "out/models") },
        stdout: "pipe", stderr: "pipe",
      });
      const [out, err, code] = await Promise.all([new Response(cli.stdout).text(), new Response(cli.stderr).text(), cli.exited]);
      expect(code, err).toBe(0);
      expect(out.replace(/\n/g, "")).not.toMatch(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
      const printed = out.split("\n");
      for (const item of items) expect(printed, label(item)).toContain(terminalLine(item.text));
      // A person asks what happened and asks an open question: the log lines are not what answers, nor what the model is told.
      const why = await r.engine.submit("why did chatty restart?");
      const asked = llm.received.length;
      await r.engine.submit(OPEN_QUESTION);
      expect(llm.received.length).toBe(asked + 1);
      const prompt = llm.received.at(-1)!.raw;
      for (const item of items) {
        // (a) the line reached the console, as it was written
        const reached = rep.lines.includes(`  | ${item.text}`);
        expect(reached, label(item)).toBe(true);
        expect(joined(why)).not.toContain(item.text);
        if (item.text.length > 12) expect(prompt, label(item)).not.toContain(JSON.stringify(item.text).slice(1, -1));
        count(item, reached, await heldFirm(r, item, mark, ["unit.logs", "incident.explain"]));
      }
      expect(await r.units()).toEqual(before);
    } finally {
      rmSync(lines, { force: true });
    }
  }, 60_000);

  test("unit log lines of a unit that fails: quoted, cleaned, in its incident and the explanation a person reads; its remedy is proposed as for any failure", async () => {
    const items = itemsBy("log-line");
    // Three lines a unit: the explanation quotes a failed unit's last three.
    const batches = Array.from({ length: Math.ceil(items.length / 3) }, (_, b) => items.slice(3 * b, 3 * b + 3));
    const dir = mkdtempSync(join(tmpdir(), "paio-hostile-fail-"));
    try {
      const units: Record<string, string> = { plain: 'exec = ["/bin/sh", "-c", "echo a plain last line; exit 3"]\nrestart = "never"\n' };
      batches.forEach((batch, b) => {
        writeFileSync(join(dir, `${b}.txt`), batch.map((i) => i.text).join("\n") + "\n");
        units[`crasher${b}`] = `exec = ["/bin/sh", "-c", "cat ${join(dir, `${b}.txt`)}; exit 3"]\nrestart = "never"\n`;
      });
      const r = await rig({ mode: "advise", units });
      for (let i = 0; i < 200 && (await r.units()).filter((u) => u.state === "failed").length < batches.length + 1; i++) await Bun.sleep(25);
      const mark = r.executed.length;
      await r.agent.tick();
      const decisions = r.agent.k.audit.recent(10_000, undefined, ["decision"]);
      const decisionOf = (unit: string) => {
        const d = decisions.find((x) => x.unit === unit)?.body as { remedy?: string; action?: unknown; executed?: boolean } | undefined;
        return { remedy: d?.remedy, action: JSON.stringify(d?.action ?? null).replaceAll(`"${unit}"`, '"U"'), executed: d?.executed };
      };
      const plain = decisionOf("plain");
      expect(plain.remedy).toBeDefined();
      expect(plain.executed).toBe(false);
      for (const [b, batch] of batches.entries()) {
        const unit = `crasher${b}`;
        const incident = r.agent.k.audit.recent(10, unit, ["incident"])[0]?.body as { log?: string[] } | undefined;
        // The failure is handled as any failure is: its words change nothing of what is proposed
        expect(decisionOf(unit), unit).toEqual(plain);
        const why = await r.engine.submit(`why did ${unit} fail?`);
        for (const item of batch) {
          const quoted = M.dataText(item.text, 200);
          // (a) the line is in the incident's record, cleaned and cut, and quoted in the explanation a person reads
          const reached = (incident?.log ?? []).includes(quoted) && why.lines.includes(`    log: "${quoted}"`);
          expect(reached, `${label(item)}\n${joined(why)}`).toBe(true);
          count(item, reached, await heldFirm(r, item, mark, ["incident.explain"]));
        }
      }
      expect(r.executed.slice(mark).every((c) => c.tool === "incident.explain")).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("unit names: refused at load with a clear error, or listed and put into the model's prompt as data; an obedient model still has to ask", async () => {
    const items = itemsBy("unit-name");
    const files = Object.fromEntries(items.map((i) => [`${i.text}.toml`, SLEEP]));
    const r = await rig({ mode: "auto", files });
    const c = await r.control();
    const reload = await c.request({ op: "reload" });
    c.close();
    expect(reload.ok).toBe(true);
    const errors = (reload as { result: { errors: string[] } }).result.errors;
    const listed = new Set((await r.units()).map((u) => u.name));
    const before = await r.units();
    let accepted = 0;
    let instructions: string | undefined;
    for (const item of items) {
      const mark = r.executed.length;
      const seen = llm.received.length;
      let reached: boolean;
      if (M.UNIT_NAME_RE.test(item.text)) {
        accepted++;
        // (a) a name the supervisor accepts is a unit, and reaches the model's prompt only inside the data part, JSON-quoted
        expect(listed.has(item.text), label(item)).toBe(true);
        llm.answer(obey(item));
        const rep = await r.engine.submit(OPEN_QUESTION);
        expect(llm.received.length, label(item)).toBe(seen + 1);
        const [instruction, data] = llm.last!.system.split("\nData, the names of the units on this device: ");
        // The instruction is the same whatever the units are called
        instructions ??= instruction;
        expect(instruction, label(item)).toBe(instructions);
        reached = (JSON.parse(data!) as { units: string[] }).units.includes(item.text);
        expect(reached, label(item)).toBe(true);
        expect(llm.last!.user).toBe(OPEN_QUESTION);
        // (c) whatever the model makes of the name, a change waits for a person (or is refused)
        const outcome = await proposal(r, rep, item);
        expect(["asks", "refused", "shown"], label(item)).toContain(outcome);
      } else {
        // (a) a name it refuses is named in the error, with the rule, and is no unit
        reached = errors.some((e) => e.includes(`${item.text}.toml`) && /bad unit name/.test(e));
        expect(reached, `${label(item)}\n${errors.join("\n")}`).toBe(true);
        expect(listed.has(item.text), label(item)).toBe(false);
        await r.engine.submit(OPEN_QUESTION);
        expect(llm.last!.system, label(item)).not.toContain(JSON.stringify(item.text));
      }
      count(item, reached, await heldFirm(r, item, mark, []));
    }
    expect(accepted).toBeGreaterThan(10);
    expect(accepted).toBeLessThan(items.length - 10);
    expect(await r.units()).toEqual(before);
  }, 60_000);

  test("process names: a process names itself; the console lists it as data; nothing runs", async () => {
    const items = itemsBy("process-name");
    const r = await rig({ mode: "auto" });
    const procs: Subprocess<"pipe", "pipe", "inherit">[] = [];
    try {
      for (const item of items) {
        // The process sets its own name (only a process may write its /proc/self/comm), and holds 4 MB so it ranks above the host's small processes.
        const p = Bun.spawn(["/bin/sh", "-c", 'x=$(printf "%4000000s" ""); printf "%s" "$PAIO_NAME" > /proc/$$/comm; echo ready; read _'], {
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin", PAIO_NAME: item.text }, stdin: "pipe", stdout: "pipe", stderr: "inherit",
        });
        procs.push(p);
      }
      for (const p of procs) await p.stdout.getReader().read();
      const mark = r.executed.length;
      const rep = await r.engine.submit("show the top 100 processes by memory");
      expect(rep.confirm).toBeUndefined();
      expect(r.executed.slice(mark).map((x) => x.tool)).toEqual(["process.top"]);
      items.forEach((item, i) => {
        // (a) the kernel keeps the first 15 bytes; the console shows the name as the process set it
        const comm = Buffer.from(item.text).subarray(0, 15).toString("utf8");
        const row = rep.lines.find((l) => l.startsWith(`  ${String(procs[i]!.pid).padStart(6)} `));
        const reached = row !== undefined && row.includes(comm.slice(0, 20));
        expect(reached, `${label(item)}: ${row}`).toBe(true);
      });
      for (const item of items) count(item, true, await heldFirm(r, item, mark, ["process.top"]));
    } finally {
      for (const p of procs) p.kill("SIGKILL");
    }
  }, 60_000);

  test("file names: a bundle's name in the update journal becomes an incident a person reads; an install of it that a model proposes waits for a yes", async () => {
    const items = itemsBy("file-name");
    const r = await rig({ mode: "auto" });
    const journal = join(r.d, "update", "journal.jsonl");
    mkdirSync(join(r.d, "update"), { recursive: true });
    for (const item of items) {
      const mark = r.executed.length;
      const source = item.text.startsWith("/") || /^[a-z]+:/.test(item.text) ? item.text : `/var/lib/paio/update/${item.text}`;
      appendFileSync(journal, JSON.stringify({ kind: "install-failed", at: Date.now(), source, reason: "the bundle's signature did not verify" }) + "\n");
      expect(r.agent.readUpdateJournal()).toBeUndefined();
      // (a) the agent took it in, cleaned, as an incident that waits for a person...
      const shown = M.dataText(source, 300);
      const rec = r.agent.k.audit.recent(1, undefined, ["update"])[0];
      expect(String((rec?.body as { justification?: string }).justification), label(item)).toContain(shown);
      const incident = r.agent.k.incidents(1)[0]!;
      expect(incident.state).toBe("proposed");
      // ...which the console shows, as data
      const list = await r.engine.submit("list incidents");
      const reached = list.lines.some((l) => l.includes(`#${incident.id} `) && l.includes(shown));
      expect(reached, `${label(item)}\n${joined(list)}`).toBe(true);
      // (c) a model that proposes installing it: refused for a bad location, or asked about
      llm.answer({ kind: "call", name: "update__install", arguments: JSON.stringify({ source }) });
      const rep = await r.engine.submit(OPEN_QUESTION);
      expect(llm.last!.user).toBe(OPEN_QUESTION);
      const outcome = await proposal(r, rep, item);
      expect(["asks", "refused"], label(item)).toContain(outcome);
      if (outcome === "asks") expect(rep.confirm, label(item)).toContain("update.install source=");
      count(item, reached, await heldFirm(r, item, mark, ["incident.list"]));
    }
  }, 60_000);

  test("language-model answers: text is shown as the model's, a change waits for a yes, anything else is refused or said to be an error", async () => {
    const items = itemsBy("llm-answer");
    const r = await rig({ mode: "auto" });
    const before = await r.units();
    for (const item of items) {
      const mark = r.executed.length;
      const seen = llm.received.length;
      llm.answer(
        item.form === "text" ? { kind: "text", text: item.text }
          : item.form === "raw" ? { kind: "raw", body: item.text, status: item.status }
          : { kind: "message", message: JSON.parse(item.text) },
      );
      const rep = await r.engine.submit(OPEN_QUESTION);
      // (a) the answer was asked for and came back to the console, which says what it made of it
      expect(llm.received.length, label(item)).toBe(seen + 1);
      const outcome = await proposal(r, rep, item);
      expect(outcome, `${label(item)}\n${joined(rep)}`).toBe(item.outcome);
      if (outcome === "shown" && item.form === "text") {
        const expected = item.text.trim().slice(0, 2000).split("\n").map((l) => `  (language model) ${l}`);
        expect(rep.lines, label(item)).toEqual(expected);
      }
      count(item, true, await heldFirm(r, item, mark, []));
    }
    expect(await r.units()).toEqual(before);
    // The stand-in's own encoding is what the console read: one sample checked against the wire.
    expect(bodyOf({ kind: "text", text: "x" })).toContain('"content":"x"');
  }, 60_000);

  test("network names: interface and host names and event messages are shown as data; an outage named by them is proposed like any other; a Wi-Fi name waits for a yes", async () => {
    const items = itemsBy("network-name");
    const r = await rig({ mode: "advise" });
    const state = (over: Partial<NetworkStatus>): NetworkStatus => ({
      pid: 1, generation: 1, hostname: "paio", dns: ["192.0.2.1"], time: { synchronised: true, detail: "chrony" }, firewall: { active: true, open: [] }, events: [],
      interfaces: [{ name: "eth0", wireless: false, up: true, carrier: true, addresses: ["192.0.2.10/24"], mode: "dhcp" }], ...over,
    });
    // The agent hears what the network unit publishes, as its supervisor link forwards it.
    const feed = await r.control();
    feed.onEvent((e) => {
      if (e.event === "network") void r.agent.onPublished(e as never);
    });
    expect((await feed.request({ op: "subscribe" })).ok).toBe(true);
    const publisher = await r.control();
    const publish = (kind: string, subject: string, message: string, time: number) => publisher.request({ op: "publish", event: { event: "network", kind, subject, message, time } });
    const t0 = Date.now();
    const reachedBy = new Map<HostileItem, boolean>();
    const outages: { item?: HostileItem; subject: string }[] = [{ subject: "eth9" }];
    for (const [n, item] of items.entries()) {
      const mark = r.executed.length;
      let reached = false;
      if (item.field === "ssid") {
        // A person copies the network's name into a request: it is a slot, shown in the confirmation; or refused
        const quoted = item.text.includes('"') ? `'${item.text}'` : `"${item.text}"`;
        const seen = llm.received.length;
        const rep = await r.engine.submit(`connect to wifi ${quoted} with password "correct-horse-42"`);
        if (rep.confirm) {
          reached = rep.confirm.includes(`ssid=${item.text} psk=********`);
          expect((await r.engine.answer(false)).lines).toEqual(["Cancelled: nothing was done."]);
        } else {
          // The embedded model could not use it: the request went to the backend, the passphrase hidden
          expect(llm.received.length, label(item)).toBe(seen + 1);
          expect(llm.received.at(-1)!.raw, label(item)).not.toContain("correct-horse-42");
          reached = llm.last!.user.includes(item.text) && llm.last!.user.includes("********");
        }
        expect(reached, label(item)).toBe(true);
        count(item, reached, await heldFirm(r, item, mark, []));
        continue;
      }
      writeFileSync(NET_STATE, JSON.stringify(
        item.field === "interface" ? state({ interfaces: [{ name: item.text, wireless: true, up: true, carrier: true, addresses: ["192.0.2.10/24"], mode: "dhcp" }] })
          : item.field === "hostname" ? state({ hostname: item.text })
          : state({ events: [{ kind: "link-down", subject: "eth0", message: item.text, time: Date.now() }] }),
      ));
      const rep = await r.engine.submit("are we online");
      reached = joined(rep).includes(item.text);
      expect(reached, `${label(item)}\n${joined(rep)}`).toBe(true);
      expect(r.executed.slice(mark).map((x) => x.tool)).toEqual(["network.status"]);
      if (item.field === "interface" || item.field === "message") {
        const subject = item.field === "interface" ? item.text : `m${n}`;
        const res = await publish("link-down", subject, item.field === "message" ? item.text : "link down", t0 - 60_000);
        if (subject.length > 64) {
          // The supervisor refuses an event it would not pass on, and says why
          expect(res.ok, label(item)).toBe(false);
          expect(JSON.stringify(res)).toContain("'event.subject' must be a string of at most 64 characters");
        } else {
          expect(res.ok, label(item)).toBe(true);
          outages.push({ item, subject });
        }
      }
      reachedBy.set(item, reached);
    }
    expect((await publish("link-down", "eth9", "link down", t0 - 60_000)).ok).toBe(true);
    for (let i = 0; i < 100 && outages.some((o) => r.agent.connectivity.isUp(o.subject)); i++) await Bun.sleep(20);
    const mark = r.executed.length;
    await r.agent.tick();
    // Each outage is an incident named by its interface, and gets the same proposal as a plain one (eth9)
    const incidents = r.agent.k.incidents(1000, "network");
    const decisions = r.agent.k.audit.recent(1000, "network", ["decision"]);
    const proposalFor = (subject: string) => {
      const inc = incidents.find((x) => x.signature.endsWith(`iface=${subject}`));
      const dec = decisions.find((x) => (x.body as { incident?: number }).incident === inc?.id);
      return { summary: inc?.summary, remedy: (dec?.body as { remedy?: string })?.remedy, action: JSON.stringify((dec?.body as { action?: unknown })?.action), executed: (dec?.body as { executed?: boolean })?.executed };
    };
    const plain = proposalFor("eth9");
    expect(plain.remedy).toBeDefined();
    expect(plain.executed).toBe(false);
    for (const o of outages.slice(1)) {
      const p = proposalFor(o.subject);
      expect(p.summary, label(o.item!)).toMatch(new RegExp(`^${o.subject.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: link down for \\d+ s$`));
      expect({ remedy: p.remedy, action: p.action, executed: p.executed }, label(o.item!)).toEqual({ remedy: plain.remedy, action: plain.action, executed: false });
    }
    // The links come back: each message is told as what the network unit said, in the outcome
    for (const o of outages) expect((await publish("link-up", o.subject, o.item?.field === "message" ? o.item.text : "link up", Date.now())).ok).toBe(true);
    for (let i = 0; i < 100 && outages.some((o) => !r.agent.connectivity.isUp(o.subject)); i++) await Bun.sleep(20);
    const outcomes = r.agent.k.audit.recent(1000, "network", ["outcome"]).map((x) => String((x.body as { justification?: string }).justification));
    for (const o of outages.slice(1)) {
      if (o.item!.field === "message") expect(outcomes.some((j) => j.includes(o.item!.text)), label(o.item!)).toBe(true);
      else expect(outcomes.some((j) => j.includes(`${o.subject} is back`)), label(o.item!)).toBe(true);
    }
    feed.close();
    publisher.close();
    for (const [item, reached] of reachedBy) count(item, reached, await heldFirm(r, item, mark, []));
    expect(r.executed.slice(mark)).toEqual([]);
  }, 60_000);
});

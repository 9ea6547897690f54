// The console's input under fuzzing (make fuzz runs 2,000 reads): the ink
// app on an 80x24 vt100 in memory, over the real engine, the real language
// model, a real agent with its socket and a real supervisor on this host,
// gets control characters, escape sequences, odd characters and pastes of
// several kilobytes with requests inside. The policy here asks a person to
// confirm every change, and forbids the ones that would reach past the test
// (killing a process, power, updates, Wi-Fi). Pass: nothing throws; no frame
// holds a raw control character, escape sequence or reordering character;
// no line is wider than the terminal; no change runs without a yes to a
// prompt the console showed; and at the end the console still answers a
// request, and still asks before a change (a no runs nothing, a yes runs it).
import { afterAll, beforeAll, expect, test } from "vitest";
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { render } from "ink";
import { App, lookFromEnv } from "../../agents/console/App.tsx";
import { AgentEngine } from "../../agents/console/engine.ts";
import { consoleInput } from "../../agents/console/input.ts";
import { Understander } from "../../agents/nlu/understand.ts";
import { Agent } from "../../agents/agent/agent.ts";
import { DEFAULT_CONFIG } from "../../agents/agent/config.ts";
import { AgentServer } from "../../agents/agent/server.ts";
import { SupervisorLink } from "../../agents/agent/supervisor-link.ts";
import { DEFAULT_POLICY, type Policy } from "../../agents/guard/policy.ts";
import { Knowledge } from "../../agents/knowledge/store.ts";
import { toolSpec, type Args, type ToolCall } from "../../agents/tools/catalog.ts";
import { ControlClient } from "../../init/control/client.ts";
import type { AgentRequest, AgentResponse } from "../../agents/protocol.ts";
import { keyChunks, RAW } from "../fuzz/console-fuzz.ts";
import { missed, writeFuzzResult, type FuzzResult } from "../fuzz/results.ts";
import { startSupervisor, tempDir, unit } from "../helpers/host-supervisor.ts";

const REPO = join(import.meta.dirname, "../..");
const READS = Number(process.env.PAIO_FUZZ_KEYS ?? 150);
const SEED = Number(process.env.PAIO_FUZZ_SEED ?? 20261207);
const SLEEP = 'exec = ["/bin/sh", "-c", "exec sleep 100000"]\nrestart = "always"\n';
/** Words of a program's error that leaked onto the screen instead of a reason. */
const UNCLEAR = /TypeError|ReferenceError|RangeError|is not a function|Cannot read propert|\[object Object\]/;

/** Every change needs a person's yes; what would reach past the test is forbidden outright. */
const POLICY: Policy = {
  ...DEFAULT_POLICY,
  source: "the console fuzzer's policy",
  personConfirm: ["none", "low", "medium", "high"],
  forbidden: ["process.kill", "power.reboot", "power.poweroff", "update.install", "update.rollback", "network.wifi"],
};

/** An 80x24 terminal that checks every frame ink writes to it. */
class Screen extends EventEmitter {
  columns = 80;
  rows = 24;
  isTTY = true;
  last = "";
  frames = 0;
  bad: string[] = [];
  /** Which input read is being fed, for a report. */
  at = "before any input";
  write(chunk: string | Uint8Array): boolean {
    const frame = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
    this.frames++;
    // Ink's own: the cursor shown while a shell has the terminal, and hidden again after.
    if (/^(\x1b\[\?25[hl])+$/.test(frame)) return true;
    const raw = RAW.exec(frame);
    if (raw) this.bad.push(`${this.at}: a frame holds U+${raw[0].charCodeAt(0).toString(16).padStart(4, "0")}: ${JSON.stringify(frame.slice(Math.max(0, raw.index - 40), raw.index + 40))}`);
    const wide = frame.split("\n").find((l) => Bun.stringWidth(l) > this.columns);
    if (wide !== undefined) this.bad.push(`${this.at}: a line ${Bun.stringWidth(wide)} columns wide: ${JSON.stringify(wide.slice(0, 120))}`);
    const leak = UNCLEAR.exec(frame);
    if (leak) this.bad.push(`${this.at}: a program's error on the screen: ${JSON.stringify(frame.slice(Math.max(0, leak.index - 60), leak.index + 80))}`);
    if (frame.includes("PAIO")) this.last = frame;
    return true;
  }
}

function keyboard() {
  const s = new PassThrough() as PassThrough & { isTTY: boolean; setRawMode: (m: boolean) => unknown; ref: () => void; unref: () => void };
  s.isTTY = true;
  s.setRawMode = () => s;
  s.ref = () => {};
  s.unref = () => {};
  return s;
}

async function until(what: string, fn: () => boolean, ms = 20_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await Bun.sleep(25)) if (fn()) return true;
  return false;
}

const stops: (() => void)[] = [];
afterAll(() => {
  for (const s of stops.splice(0)) s();
});

// The language model as make models (or make test's image) left it; built here only if there is none.
beforeAll(() => {
  if (!existsSync(join(REPO, "out/models/intent.onnx"))) Bun.spawnSync([process.execPath, join(REPO, "agents/models/build.ts")]);
}, 300_000);

test(`${READS} reads of hostile console input (seed ${SEED}): nothing thrown, no raw control or escape reaches the screen, nothing runs without a yes, the console still answers`, async () => {
  const t0 = Date.now();
  const d = tempDir();
  for (const name of ["demo", "camera", "agent"]) unit(d, name, SLEEP);
  const controlSock = join(d, "run", "control.sock");
  const sup = startSupervisor(d, { PAIO_CONTROL_SOCKET: controlSock });
  await sup.waitFor(/paio: supervisor ready/);

  let agent: Agent | undefined;
  const link = new SupervisorLink(controlSock, (e) => void agent?.onUnitEvent(e), () => {}, (e) => void agent?.onPublished(e));
  const k = new Knowledge(join(d, "state", "agent", "knowledge.db"));
  agent = new Agent({
    supervisor: link, knowledge: k, policy: POLICY,
    config: { ...DEFAULT_CONFIG, retrainEveryMs: 0 },
    detector: { outsideScanMs: Infinity },
    cgroupRoot: join(d, "no-cgroup"),
    monitor: { collectors: [], sysfsRoot: join(d, "no-sysfs") },
    updateJournal: join(d, "update", "journal.jsonl"),
  });
  // What the person's side asked for, and what reached the executor.
  const confirmedCalls: string[] = [];
  let refused = 0;
  const call = agent.call.bind(agent);
  agent.call = async (tool: string, args: Args, origin: "person" | "llm", confirmed: boolean, utterance?: string) => {
    if (confirmed) confirmedCalls.push(tool);
    const r = await call(tool, args, origin, confirmed, utterance);
    if (r.status === "refused" || r.status === "needs-confirmation") refused++;
    return r;
  };
  const bad: string[] = [];
  let changesRun = 0;
  const run = agent.executor.run.bind(agent.executor);
  agent.executor.run = async (c: ToolCall) => {
    if (toolSpec(c.tool)?.effect !== "read") {
      changesRun++;
      // Each change must come from a call confirmed with a yes, one for one.
      const i = confirmedCalls.indexOf(c.tool);
      if (i < 0) bad.push(`${c.tool} ${JSON.stringify(c.args)} ran without a yes`);
      else confirmedCalls.splice(i, 1);
    }
    return run(c);
  };
  const sock = join(d, "run", "agent.sock");
  const server = new AgentServer(agent, sock);
  server.start();
  stops.push(() => {
    server.stop();
    k.close();
  });

  const understander = await Understander.load(join(REPO, "out/models"), join(REPO, "out/models"));
  const engine = new AgentEngine({
    understander,
    agent: () => ControlClient.connect<AgentRequest, AgentResponse>(sock),
    units: () => link.list(),
  });
  // Lines being handled: a paste of many lines is worked through one after another.
  let inFlight = 0;
  for (const m of ["submit", "answer"] as const) {
    const real = engine[m].bind(engine) as (x: never) => ReturnType<AgentEngine["submit"]>;
    engine[m] = (async (x: never) => {
      inFlight++;
      try {
        return await real(x);
      } finally {
        inFlight--;
      }
    }) as never;
  }
  const screen = new Screen();
  const keys = keyboard();
  let shells = 0;
  // The keys reach ink as on the device: through the console's input filter.
  const app = render(<App engine={engine} look={lookFromEnv({ TERM: "vt100" }, 80, 24)} onShell={async () => void shells++} pollMs={500} />, {
    stdout: screen as never, stdin: consoleInput(keys as never) as never, debug: true, exitOnCtrlC: false, patchConsole: false,
  });
  stops.push(() => app.unmount());
  expect(await until("the status strip", () => /PAIO OK/.test(screen.last))).toBe(true);

  const chunks = keyChunks(READS, SEED);
  let slowest = 0;
  for (const [i, c] of chunks.entries()) {
    screen.at = `read ${i} (${c.what})`;
    const t = performance.now();
    keys.write(c.data);
    // Let ink take this read on its own before the next one.
    await Bun.sleep(5);
    slowest = Math.max(slowest, performance.now() - t);
  }

  // The console still answers: once whatever was pasted has been handled, a plain request gets its reply.
  screen.at = "after the input";
  const idle = async () => {
    for (let quiet = 0; quiet < 10; quiet = inFlight === 0 ? quiet + 1 : 0) await Bun.sleep(50);
    return true;
  };
  let hangs = 0;
  const t1 = Date.now();
  if (!(await Promise.race([idle(), Bun.sleep(120_000).then(() => false)]))) {
    hangs++;
    bad.push(`after the input the console was still handling lines 120 s later:\n${screen.last}`);
  }
  const drainMs = Date.now() - t1;
  // Clear the line (and a question left open), then ask.
  keys.write("\x7f".repeat(300));
  await Bun.sleep(50);
  keys.write("\r");
  await Bun.sleep(200);
  keys.write("no\r");
  await Bun.sleep(200);
  keys.write("list units\r");
  const answered = await until("the unit list", () => /^> list units$/m.test(screen.last) && /camera: running/.test(screen.last.slice(screen.last.lastIndexOf("> list units"))), 20_000);
  if (!answered) {
    hangs++;
    bad.push(`at the end 'list units' got no answer:\n${screen.last}`);
  }
  // And a change still asks first: a no runs nothing, a yes runs it (and the count above sees it).
  const ranBefore = changesRun;
  keys.write("stop camera\r");
  const askedStop = await until("the question", () => /Confirm unit\.stop unit=camera\? \[y\/N\]/.test(screen.last));
  // The next request in the same read as the answer, as a paste or a quick typist on a serial line brings it: a request, not a second answer.
  keys.write("no\rrestart demo\r");
  const cancelled = askedStop && (await until("the cancel", () => /> stop camera\n.*\n> no\nCancelled: nothing was done\./.test(screen.last)));
  const askedRestart = cancelled && (await until("the question", () => /Confirm unit\.restart unit=demo\? \[y\/N\]/.test(screen.last)));
  keys.write("y\r");
  const restarted = askedRestart && (await until("the restart", () => /restarted demo/.test(screen.last)));
  if (!restarted || changesRun !== ranBefore + 1) bad.push(`at the end a change did not ask first, or a no ran it, or a yes did not (asked ${askedStop}/${askedRestart}, cancelled ${cancelled}, restarted ${restarted}, changes run ${changesRun - ranBefore}):\n${screen.last}`);
  app.unmount();
  bad.push(...screen.bad);
  if (sup.proc.exitCode !== null) bad.push(`the supervisor exited with ${sup.proc.exitCode}`);

  const result: FuzzResult = {
    name: "console", seed: SEED, cases: chunks.length, clients: 1, refused, crashes: 0, hangs, bad, ms: Date.now() - t0,
    notes: { frames: screen.frames, changes_run_after_a_yes: changesRun, shells_opened: shells, slowest_read_ms: Math.round(slowest), pasted_lines_handled_ms: drainMs, pasted_kib: Math.round(chunks.reduce((n, c) => n + c.data.length, 0) / 1024) },
  };
  writeFuzzResult(result);
  console.log(`console fuzz (seed ${SEED}): ${chunks.length} reads (${result.notes!.pasted_kib} KiB), ${screen.frames} frames, ${refused} calls refused or held for a yes, ${changesRun} changes run after a yes, ${bad.length} bad, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  expect(bad, missed(result)).toEqual([]);
}, 600_000);

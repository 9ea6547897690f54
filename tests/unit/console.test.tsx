// The console UI, rendered into an 80x24 terminal in memory and driven by
// keystrokes, on top of the real engine: the real language model, a real
// agent and a real supervisor on this host. What is asserted is what a
// person would read on the screen.
import { beforeAll, beforeEach, describe, expect, test } from "vitest";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";
import { render } from "ink";
import { App, lookFromEnv, type ConsoleState, type Look } from "../../agents/console/App.tsx";
import { AgentEngine } from "../../agents/console/engine.ts";
import { Understander } from "../../agents/nlu/understand.ts";
import { ControlClient } from "../../init/control/client.ts";
import type { UnitSummary } from "../../init/control/protocol.ts";
import type { AgentRequest, AgentResponse } from "../../agents/protocol.ts";
import { startSupervisor, tempDir, unit } from "../helpers/host-supervisor.ts";

const REPO = join(import.meta.dirname, "../..");
let env: Record<string, string>;
let engine: AgentEngine;

class Screen extends EventEmitter {
  columns = 80;
  rows = 24;
  isTTY = true;
  frames: string[] = [];
  write(chunk: string | Uint8Array): boolean {
    this.frames.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString());
    return true;
  }
  /** The newest full frame, without terminal escape sequences. */
  get text(): string {
    const full = [...this.frames].reverse().find((f) => f.includes("PAIO")) ?? "";
    return full.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
  }
}

function keyboard(): PassThrough & { isTTY: boolean; setRawMode: (m: boolean) => unknown; ref: () => void; unref: () => void } {
  const s = new PassThrough() as PassThrough & { isTTY: boolean; setRawMode: (m: boolean) => unknown; ref: () => void; unref: () => void };
  s.isTTY = true;
  s.setRawMode = () => s;
  s.ref = () => {};
  s.unref = () => {};
  return s;
}

async function until(screen: Screen, re: RegExp, ms = 20_000): Promise<string> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (re.test(screen.text)) return screen.text;
    await Bun.sleep(50);
  }
  throw new Error(`screen never showed ${re}:\n${screen.text}`);
}

function start(look: Look, shell: (state: ConsoleState) => Promise<void> = async () => {}, resumed?: ConsoleState) {
  const screen = new Screen();
  const keys = keyboard();
  const app = render(<App engine={engine} look={look} onShell={shell} resumed={resumed} pollMs={500} />, { stdout: screen as never, stdin: keys as never, debug: true, exitOnCtrlC: false, patchConsole: false });
  return { screen, keys, app };
}

beforeAll(() => {
  Bun.spawnSync([process.execPath, join(REPO, "agents/models/build.ts")]);
}, 120_000);

// A fresh supervisor and agent for each test (the helper stops them after each).
beforeEach(async () => {
  const d = tempDir();
  mkdirSync(join(d, "etc"));
  env = {
    PAIO_STATE_DIR: join(d, "state"), PAIO_ETC_DIR: join(d, "etc"), PAIO_CONTROL_SOCKET: join(d, "run", "control.sock"),
    PAIO_AGENT_SOCKET: join(d, "run", "agent.sock"), PAIO_CGROUP_ROOT: join(d, "no-cgroup"), PAIO_AGENT_CPU_BUDGET_PERCENT: "50",
  };
  unit(d, "agent", `exec = ["${process.execPath}", "${join(REPO, "agents/agent/main.ts")}"]\nrestart = "always"\nenv = { ${Object.entries(env).map(([k, v]) => `${k} = "${v}"`).join(", ")} }\n`);
  unit(d, "demo", 'exec = ["/bin/sh", "-c", "exec sleep 100000"]\nrestart = "always"\n');
  const s = startSupervisor(d, { PAIO_CONTROL_SOCKET: env.PAIO_CONTROL_SOCKET! });
  await s.waitFor(/paio: supervisor ready/);
  const understander = await Understander.load(join(REPO, "out/models"), join(REPO, "out/models"));
  const agent = () => ControlClient.connect<AgentRequest, AgentResponse>(env.PAIO_AGENT_SOCKET!);
  const units = async () => {
    const c = await ControlClient.connect(env.PAIO_CONTROL_SOCKET!);
    const r = await c.request({ op: "list" });
    c.close();
    return r.ok ? (r.result as UnitSummary[]) : [];
  };
  engine = new AgentEngine({ understander, agent, units });
  for (let i = 0; i < 100; i++) {
    try {
      (await agent()).close();
      break;
    } catch {
      await Bun.sleep(200);
    }
  }
}, 120_000);


describe("console UI on an 80x24 terminal", () => {
  test("status strip, chat, a restart, and a power-off that 'no' cancels", async () => {
    const { screen, keys, app } = start(lookFromEnv({ TERM: "vt100" }, 80, 24));
    const first = await until(screen, /PAIO OK \| CPU \d+% \| MEM \d+% \| no failed units \| mode auto/);
    expect(first.split("\n").every((l) => l.length <= 80)).toBe(true);
    expect(first).not.toMatch(/[\u2500-\u257f]/); // vt100: ASCII rules only
    // The whole line arrives in one chunk, Enter included, as on a serial line.
    keys.write("restart demo\r");
    await until(screen, /restarted demo/);
    keys.write("power off\r");
    const prompt = await until(screen, /^Confirm power\.poweroff\? \[y\/N\]/m);
    expect(prompt).toMatch(/power\.poweroff needs your confirmation: power\.poweroff is dangerous/);
    keys.write("no\r");
    await until(screen, /Cancelled: nothing was done\./);
    // History: Up brings back the last line typed.
    keys.write("\x1b[A");
    await until(screen, /^> no$/m);
    app.unmount();
  }, 60_000);

  test("why did demo restart? is answered from the audit log; 'shell' opens the shell and comes back", async () => {
    let shells = 0;
    let handed: ConsoleState | undefined;
    const { screen, keys, app } = start(lookFromEnv({ TERM: "linux", LANG: "C.UTF-8" }), async (state) => {
      shells++;
      handed = state;
    });
    await until(screen, /PAIO OK/);
    expect(screen.text).toMatch(/\u2500{80}/); // UTF-8: box-drawing rules
    keys.write("restart demo\r");
    await until(screen, /restarted demo/);
    keys.write("why did demo restart?\r");
    await until(screen, /What happened to demo, oldest first:/);
    expect(screen.text).toMatch(/\[audit #\d+\] did what a person asked \("restart demo"\): restarted demo/);
    expect(screen.text).not.toMatch(/a person asked[^\n]*a person asked/);
    keys.write("shell\r");
    for (let i = 0; i < 100 && shells === 0; i++) await Bun.sleep(50);
    // The shell ran (with the terminal handed over); the QEMU test types into it on a real tty.
    expect(shells).toBe(1);
    app.unmount();
    // On the device the console process ends for the shell and starts again
    // with the conversation it handed over: all of it, and the history.
    expect(handed!.transcript).toEqual(expect.arrayContaining(["> restart demo", "> shell"]));
    expect(handed!.transcript.some((l) => l.startsWith("What happened to demo"))).toBe(true);
    expect(handed!.history).toEqual(["restart demo", "why did demo restart?", "shell"]);
    const again = start(lookFromEnv({ TERM: "linux", LANG: "C.UTF-8" }), async () => {}, handed);
    const back = await until(again.screen, /Back from the shell\./);
    expect(back).toContain("What happened to demo, oldest first:");
    again.keys.write("\x1b[A");
    await until(again.screen, /^> shell$/m);
    again.app.unmount();
  }, 60_000);
});

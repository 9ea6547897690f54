// The console's status strip asks the agent once per agent tick: its figures
// are not newer in between, and each request costs the agent CPU. An engine
// that counts the requests stands in for the agent (the console's other tests
// run it against a real one).
import { expect, test } from "vitest";
import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";
import { render } from "ink";
import { App, lookFromEnv } from "../../agents/console/App.tsx";
import type { StatusLine } from "../../agents/console/engine.ts";

class Screen extends EventEmitter {
  columns = 80;
  rows = 24;
  isTTY = true;
  write(): boolean {
    return true;
  }
}

async function requestsIn(ms: number, tickMs: number | undefined): Promise<number> {
  let n = 0;
  const engine = {
    status: async (): Promise<StatusLine> => {
      n++;
      return { health: "ok", cpu: 1, memory: 2, failed: [], mode: "auto", tickMs };
    },
    onEvent: () => () => {},
  };
  const keys = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => keys, ref: () => {}, unref: () => {} });
  const app = render(<App engine={engine as never} look={lookFromEnv({ TERM: "vt100" }, 80, 24)} onShell={async () => {}} pollMs={100} />, { stdout: new Screen() as never, stdin: keys as never, debug: true, exitOnCtrlC: false, patchConsole: false });
  await Bun.sleep(ms);
  app.unmount();
  return n;
}

test("the strip asks once per agent tick, and at its own pace when the agent says no tick", async () => {
  const slow = await requestsIn(1500, 1000);
  const plain = await requestsIn(1500, undefined);
  console.log(`status requests in 1.5 s: ${slow} with a 1 s agent tick, ${plain} without one (poll 100 ms)`);
  expect(slow).toBeGreaterThanOrEqual(1);
  expect(slow).toBeLessThanOrEqual(2);
  expect(plain).toBeGreaterThanOrEqual(5);
});

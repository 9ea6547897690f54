// The control client that the paio command, the agent and the console share:
// a client that lives for days (the agent's) must not grow with each request,
// and a connection the supervisor closed answers every request at once with a
// failure instead of leaving it waiting for ever.
import { expect, test } from "vitest";
import { join } from "node:path";
import { ControlClient } from "../../init/control/client.ts";
import { startSupervisor, tempDir } from "../helpers/host-supervisor.ts";
import { unitNames, waitAllRunning, writeUnits } from "../helpers/load.ts";

async function supervisorWith(units: number): Promise<{ sock: string; stop: () => Promise<void> }> {
  const d = tempDir();
  const names = unitNames("client-", units);
  writeUnits(d, names);
  const sock = join(d, "run", "control.sock");
  const s = startSupervisor(d, { PAIO_CONTROL_SOCKET: sock, PAIO_CGROUP_ROOT: join(d, "no-cgroup") });
  await s.waitFor(/supervisor ready/, 30_000);
  await waitAllRunning(sock, names, 30_000);
  return {
    sock,
    stop: async () => {
      s.proc.kill("SIGKILL");
      await s.proc.exited;
    },
  };
}

function heapMiB(): number {
  Bun.gc(true);
  return process.memoryUsage().heapUsed / 2 ** 20;
}

test("a long-lived client keeps nothing of the requests it has had answered: 2,000 unit lists later its memory is where it was", async () => {
  const { sock } = await supervisorWith(50);
  const c = await ControlClient.connect(sock);
  // Each answer is a list of 50 units (about 10 KB of objects): kept, 2,000 of them would be 20 MB.
  for (let i = 0; i < 200; i++) expect((await c.request({ op: "list" })).ok).toBe(true);
  const before = heapMiB();
  for (let i = 0; i < 2000; i++) expect((await c.request({ op: "list" })).ok).toBe(true);
  const grown = heapMiB() - before;
  c.close();
  expect(grown).toBeLessThan(5);
});

test("when the supervisor goes away, every later request is answered with a failure at once, not left waiting", async () => {
  const { sock, stop } = await supervisorWith(1);
  const c = await ControlClient.connect(sock);
  const closed = new Promise<void>((resolve) => c.onClosed(resolve));
  await stop();
  await closed;
  const late = await c.request({ op: "list" });
  expect(late).toEqual({ id: expect.any(Number), ok: false, error: { code: "failed", message: "the other side closed the connection" } });
  // A handler added after the close still hears of it.
  let told = false;
  c.onClosed(() => (told = true));
  expect(told).toBe(true);
});

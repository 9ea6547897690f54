// The control socket under a short fuzzing run (make fuzz runs the long one):
// a few hundred requests that must all be refused, from 20 clients at once,
// with stalled half-written frames beside them and one 16 MiB line. Every
// line gets one answer, the supervisor stays up, and no unit changes.
import { expect, test } from "vitest";
import { join } from "node:path";
import { ControlClient } from "../../init/control/client.ts";
import type { UnitSummary } from "../../init/control/protocol.ts";
import { fuzzControl } from "../fuzz/control-fuzz.ts";
import { startSupervisor, tempDir, unit } from "../helpers/host-supervisor.ts";

const FUZZ_CASES = Number(process.env.PAIO_FUZZ_CASES ?? 400);
const FUZZ_SEED = Number(process.env.PAIO_FUZZ_SEED ?? 20261129);

async function snapshot(sock: string): Promise<string> {
  const c = await ControlClient.connect(sock);
  const r = await c.request({ op: "list" });
  c.close();
  if (!r.ok) throw new Error(r.error.message);
  return JSON.stringify((r.result as UnitSummary[]).map((u) => [u.name, u.state, u.pid, u.restarts, u.ports]));
}

test(`${FUZZ_CASES} hostile control requests (seed ${FUZZ_SEED}): each answered with an error or a harmless read, none changes anything, the supervisor stays up`, async () => {
  const d = tempDir();
  unit(d, "steady-target", 'exec = ["/bin/sh", "-c", "exec sleep 1000"]\nrestart = "always"\n');
  unit(d, "other-target", 'exec = ["/bin/sh", "-c", "exec sleep 1000"]\nrestart = "always"\nports = [8080]\n');
  const sock = join(d, "run", "control.sock");
  const s = startSupervisor(d, { PAIO_CONTROL_SOCKET: sock });
  await s.waitFor(/supervisor ready/);
  await s.waitFor(/other-target: started/);
  const before = await snapshot(sock);
  const report = await fuzzControl(sock, FUZZ_CASES, FUZZ_SEED, ["steady-target", "other-target"], Number(process.env.PAIO_FUZZ_CLIENTS ?? 20), 10);
  console.log(`control fuzz (seed ${FUZZ_SEED}): ${report.cases} cases from ${report.concurrentClients} clients with ${report.stalledClients} stalled ones, ${report.refused} refused, ${report.bad.length} bad`);
  expect(report.bad.slice(0, 10)).toEqual([]);
  expect(s.proc.exitCode).toBeNull();
  expect(await snapshot(sock)).toBe(before);
}, 120_000);

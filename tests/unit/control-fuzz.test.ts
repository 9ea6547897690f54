// The control socket under a short fuzzing run (make fuzz runs the long one):
// a few hundred requests that must all be refused, from 20 clients at once,
// some written a few bytes at a time, with silent clients and stalled
// half-written frames beside them, one 16 MiB line, and a client that asks
// for unit lists and never reads them. Every line gets one answer, the
// supervisor stays up and keeps its memory, and no unit changes.
import { expect, test } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ControlClient } from "../../init/control/client.ts";
import type { UnitSummary } from "../../init/control/protocol.ts";
import { fuzzControl } from "../fuzz/control-fuzz.ts";
import { floodUnread } from "../fuzz/raw-socket.ts";
import { missed, writeFuzzResult, type FuzzResult } from "../fuzz/results.ts";
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

/** A process's resident memory, in MiB. */
function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) / 1024;
}

test(`${FUZZ_CASES} hostile control requests (seed ${FUZZ_SEED}): each answered with an error or a harmless read, none changes anything, the supervisor stays up`, async () => {
  const t0 = Date.now();
  const d = tempDir();
  unit(d, "steady-target", 'exec = ["/bin/sh", "-c", "exec sleep 1000"]\nrestart = "always"\n');
  unit(d, "other-target", 'exec = ["/bin/sh", "-c", "exec sleep 1000"]\nrestart = "always"\nports = [8080]\n');
  const sock = join(d, "run", "control.sock");
  const s = startSupervisor(d, { PAIO_CONTROL_SOCKET: sock });
  await s.waitFor(/supervisor ready/);
  await s.waitFor(/other-target: started/);
  const before = await snapshot(sock);
  const report = await fuzzControl(sock, FUZZ_CASES, FUZZ_SEED, ["steady-target", "other-target"], Number(process.env.PAIO_FUZZ_CLIENTS ?? 20), 10);
  const bad = [...report.bad];
  // A client that asks for the unit list again and again and never reads: the supervisor lets it go.
  const rssBefore = rssMiB(s.proc.pid);
  let rssGrowth = 0;
  const flood = await floodUnread(sock, JSON.stringify({ op: "list" }), 100_000, () => (rssGrowth = rssMiB(s.proc.pid) - rssBefore));
  if (!flood.dropped) bad.push(`a client that never reads (${flood.sent} requests written): still connected, ${flood.unreadBytes} bytes of answers kept for it`);
  const crashed = s.proc.exitCode !== null;
  if (crashed) bad.push(`the supervisor exited with ${s.proc.exitCode}`);
  const after = crashed ? "" : await snapshot(sock);
  if (!crashed && after !== before) bad.push(`the units changed:\nbefore ${before}\nafter  ${after}`);
  const result: FuzzResult = {
    name: "control", seed: FUZZ_SEED, cases: report.cases, clients: report.concurrentClients, refused: report.refused,
    crashes: crashed ? 1 : 0, hangs: report.bad.filter((b) => /no answer within/.test(b)).length, bad, ms: Date.now() - t0,
    notes: { stalled_clients: report.stalledClients, unread_requests_before_drop: flood.sent, unread_bytes_kept: flood.unreadBytes, supervisor_rss_growth_mib: Math.round(rssGrowth) },
  };
  writeFuzzResult(result);
  console.log(`control fuzz (seed ${FUZZ_SEED}): ${report.cases} cases from ${report.concurrentClients} clients with ${report.stalledClients} stalled ones, ${report.refused} refused, ${bad.length} bad; a client that never read was ${flood.dropped ? "dropped" : "NOT dropped"} after ${flood.sent} requests (${(flood.unreadBytes / 2 ** 20).toFixed(1)} MiB unread), the supervisor grew by ${rssGrowth.toFixed(0)} MiB`);
  expect(bad, missed(result)).toEqual([]);
}, 300_000);

// The supervisor under a small load (make load runs the large one and
// measures it): 100 units all running, 20 control clients at once each
// answered correctly, and 5 event subscribers that each see every event of a
// churn (kills, restarts, added and removed unit files) once and in order.
// Only correctness is asserted here; speed is the benchmark's to report.
import { expect, test } from "vitest";
import { join } from "node:path";
import { startSupervisor, tempDir } from "../helpers/host-supervisor.ts";
import { churnWithSubscribers, clientStorm, unitNames, waitAllRunning, writeUnits } from "../helpers/load.ts";

test("100 units run; 20 clients at once are all answered correctly; 5 subscribers see every event of a churn, in order, none lost or twice", async () => {
  const d = tempDir();
  const names = unitNames("load-", 100);
  writeUnits(d, names);
  const sock = join(d, "run", "control.sock");
  // No cgroups on the host: the units are plain process groups (as in the other host tests).
  const s = startSupervisor(d, { PAIO_CONTROL_SOCKET: sock, PAIO_CGROUP_ROOT: join(d, "no-cgroup") });
  await s.waitFor(/supervisor ready \(.*100 units started\)/, 30_000);
  await waitAllRunning(sock, names, 30_000);

  const storm = await clientStorm(sock, names, 20, 30);
  expect(storm.errors).toEqual([]);
  expect(storm.wrong).toEqual([]);
  expect(storm.answered).toBe(20 * 30);

  const churn = await churnWithSubscribers(d, sock, names, 5, { rounds: 2, kill: 5, restart: 3, add: 3, remove: 3 }, 60_000);
  expect(churn.problems).toEqual([]);
  expect(churn.events_per_subscriber).toEqual(Array(5).fill(churn.expected_events));
  expect(churn.expected_events).toBe(2 * 10 + 3 * 6 + 6 + 2 * 6);
  expect(churn.restarts_counted).toBe(16);
  expect(s.proc.exitCode).toBeNull();
  // Still serving, with the churn's additions and without its removals.
  expect((await waitAllRunning(sock, churn.names, 10_000)).length).toBe(100);
}, 120_000);

// The chaos campaign's short run (the full one is `make chaos`): every fault
// class once in one booted guest with the workload, and two power cuts
// during heavy writes, from a fixed seed so a failure replays. Each run must
// take hold, recover, kill nothing else and lose nothing.
import { expect, test } from "vitest";
import { campaign, FAULT_CLASSES, table } from "../chaos/campaign.ts";

const SEED = Number(process.env.PAIO_CHAOS_SEED ?? 20261206);

test(`chaos, short: every fault class once and two power cuts (seed ${SEED})`, async () => {
  const res = await campaign({ runs: 1, cuts: 2, seed: SEED, classes: FAULT_CLASSES, log: (s) => console.log(s) });
  console.log(table(res));
  expect(Object.keys(res.classes).sort()).toEqual([...FAULT_CLASSES].sort());
  expect(res.failures, "runs that missed a goal").toEqual([]);
}, 3_600_000);

// docs/reliability.md is generated, never written by hand: the generator
// shows every class's figures, shows a missed goal as missed, names what was
// not run, and the committed page is the generator's.
import { describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addTo, failuresOf, summarize, type CampaignResult, type RunResult } from "../chaos/campaign.ts";
import { GENERATED_MARK, renderReport } from "../reliability/report.ts";

const runOf = (cls: RunResult["class"], run: number, over: Partial<RunResult> = {}): RunResult => ({
  class: cls, run, seed: 1000 + run, target: "web", recovered: true, recoveryMs: 2000 * run, wronglyKilled: [], lost: [], notes: [], tookHold: true, ...over,
});

describe("reliability report", () => {
  test("per-class figures, missed goals shown as missed with their replay seed, campaigns not run named", () => {
    const runs = [runOf("kill-unit", 1), runOf("kill-unit", 2), runOf("kill-unit", 3), runOf("slow", 1, { wronglyKilled: ["web (pid 10 → 12, running)"] }), runOf("hang", 1, { recovered: false, recoveryMs: undefined })];
    const res: CampaignResult = { date: "2026-12-06T10:00:00.000Z", commit: "abc1234", machine: "2 CPUs", seed: 42, runsPerClass: 3, powerCuts: 0, classes: summarize(runs), runs, failures: failuresOf(runs) };
    expect(res.classes["kill-unit"]).toMatchObject({ runs: 3, recovered: 3, medianRecoveryMs: 4000, maxRecoveryMs: 6000, wronglyKilled: 0, lost: 0 });
    const dir = mkdtempSync(join(tmpdir(), "paio-report-"));
    try {
      writeFileSync(join(dir, "chaos.json"), JSON.stringify(res));
      writeFileSync(join(dir, "fuzz-control.json"), JSON.stringify({ name: "control socket", seed: 7, cases: 10000, refused: 9000, crashes: 0, hangs: 1, bad: [], date: "2026-12-06", commit: "abc1234" }));
      const md = renderReport(dir);
      expect(md.startsWith(GENERATED_MARK)).toBe(true);
      expect(md).toContain("commit abc1234, seed 42");
      expect(md).toMatch(/kill-unit\s+3\s+3\/3\s+4\.0 s\s+6\.0 s\s+0\s+0/);
      expect(md).toContain("| slow | 1/1 recovered, 1 wrongly killed, 0 with losses | **missed** |");
      expect(md).toContain("| hang | 0/1 recovered, 0 wrongly killed, 0 with losses | **missed** |");
      expect(md).toContain("--replay hang:1001");
      expect(md).toContain("**missed** by: control socket (seed 7)");
      expect(md).toMatch(/No results yet for: load/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("classes run in parts (--add): a class run again replaces its earlier runs, the others keep theirs, and each part keeps its provenance", () => {
    const first = [runOf("kill-unit", 1), runOf("hang", 1, { recovered: false, recoveryMs: undefined }), runOf("hang", 2)];
    const a: CampaignResult = { date: "2026-12-06T10:00:00.000Z", commit: "aaa1111", machine: "2 CPUs", seed: 1, runsPerClass: 2, powerCuts: 0, classes: summarize(first), runs: first, failures: failuresOf(first) };
    const again = [runOf("hang", 1), runOf("hang", 2), runOf("slow", 1)];
    const b: CampaignResult = { date: "2026-12-07T10:00:00.000Z", commit: "bbb2222", machine: "2 CPUs", seed: 2, runsPerClass: 2, powerCuts: 0, classes: summarize(again), runs: again, failures: failuresOf(again) };
    const merged = addTo(addTo(undefined, a), b);
    expect(merged.runs.map((r) => r.class)).toEqual(["kill-unit", "hang", "hang", "slow"]);
    expect(merged.classes.hang).toMatchObject({ runs: 2, recovered: 2 });
    expect(merged.failures).toEqual([]);
    expect(merged.parts!.map((p) => [p.classes, p.commit])).toEqual([[["kill-unit"], "aaa1111"], [["hang", "slow"], "bbb2222"]]);
    const dir = mkdtempSync(join(tmpdir(), "paio-report-"));
    try {
      writeFileSync(join(dir, "chaos.json"), JSON.stringify(merged));
      const md = renderReport(dir);
      expect(md).toContain("- kill-unit: run 2026-12-06 10:00 UTC, commit aaa1111, seed 1");
      expect(md).toContain("- hang, slow: run 2026-12-07 10:00 UTC, commit bbb2222, seed 2");
      expect(md).toContain("**Not run in these results:** crash-loop, leak-oom, fork-bomb, disk-full, kill-supervisor, kill-agent, power-cut");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a results file that is not JSON is named, not skipped", () => {
    const dir = mkdtempSync(join(tmpdir(), "paio-report-"));
    try {
      writeFileSync(join(dir, "chaos.json"), "{ half");
      expect(() => renderReport(dir)).toThrow(/chaos\.json: not a results file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("docs/reliability.md is the generator's page", () => {
    const page = readFileSync(join(import.meta.dirname, "../../docs/reliability.md"), "utf8");
    expect(page.startsWith(GENERATED_MARK)).toBe(true);
  });
});

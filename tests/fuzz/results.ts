// What a fuzzer found, for the reliability report: when PAIO_RELIABILITY_OUT
// names a folder (make fuzz sets out/reliability), each fuzzer writes
// fuzz-NAME.json there, whether it passed or not, before its test asserts.
// `bad` holds one line per goal missed, each naming the case and the seed
// that replays it.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface FuzzResult {
  /** Which fuzzer: control, agent, config, provision, console. */
  name: string;
  /** PAIO_FUZZ_SEED replays the run. */
  seed: number;
  /** Inputs sent or parsed (requests, mutants, keystroke chunks). */
  cases: number;
  /** Connections at once (socket fuzzers); 1 otherwise. */
  clients: number;
  /** Inputs refused with an error. */
  refused: number;
  /** The program under test died, or something threw that must not. */
  crashes: number;
  /** Inputs that got no answer in time. */
  hangs: number;
  /** Every goal missed, one line each (the case, what went wrong). */
  bad: string[];
  /** How long the run took, in milliseconds. */
  ms: number;
  /** Anything else worth a line in the report (peak memory, the slowest case). */
  notes?: Record<string, number | string>;
}

/** Writes `result` as fuzz-NAME.json to $PAIO_RELIABILITY_OUT (when set); returns the file's path. */
export function writeFuzzResult(result: FuzzResult, env: Record<string, string | undefined> = process.env): string | undefined {
  const dir = env.PAIO_RELIABILITY_OUT;
  if (!dir) return undefined;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `fuzz-${result.name}.json`);
  const commit = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: import.meta.dirname }).stdout.toString().trim() || "unknown";
  const passed = result.bad.length === 0 && result.crashes === 0 && result.hangs === 0;
  writeFileSync(path, JSON.stringify({ ...result, passed, date: new Date().toISOString(), commit }, null, 2) + "\n");
  return path;
}

/** One line naming the fuzzer, its seed and the first goals missed: the message a failing fuzz test ends with. */
export function missed(result: FuzzResult, shown = 10): string {
  const head = `${result.name} fuzzer, seed ${result.seed} (replay with PAIO_FUZZ_SEED=${result.seed}): ${result.bad.length} goals missed, ${result.crashes} crashes, ${result.hangs} hangs`;
  return [head, ...result.bad.slice(0, shown).map((b) => `  ${b}`)].join("\n");
}

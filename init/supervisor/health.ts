// Health checks, and the rule that tells a slow unit from a dead one.
//
// A check either passes, fails (a wrong answer: exit status, refused
// connection, HTTP error, stale heartbeat file) or times out. A time-out on
// its own proves nothing: the unit may be busy. So on a time-out the
// supervisor looks at the unit's processes during the check:
//   - all of them stopped (SIGSTOP, state T)         -> dead: counts as a failure
//   - they used CPU while the check waited           -> slow: the unit is degraded, not restarted
//   - no CPU used at all                             -> hung (deadlocked): counts as a failure
// A check that passes while every process of the unit is stopped does not
// count either: the kernel completes a TCP handshake for a listening socket
// whose process cannot run, so a stopped broker still "accepts" connections;
// such a pass is a failure (stoppedPass).
// Only `retries` failures in a row make the unit unhealthy, and only then is
// it restarted.

import { readFileSync, statSync } from "node:fs";
import type { HealthSpec } from "./unit-file.ts";

export type CheckResult = { kind: "pass" } | { kind: "fail"; why: string } | { kind: "timeout" };

export async function runCheck(spec: HealthSpec): Promise<CheckResult> {
  const timeout = spec.timeoutMs;
  switch (spec.type) {
    case "exec": {
      const argv = spec.target as string[];
      const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
      let timer: Timer | undefined;
      const code = await Promise.race([
        proc.exited,
        new Promise<"timeout">((r) => {
          timer = setTimeout(() => r("timeout"), timeout);
        }),
      ]);
      clearTimeout(timer);
      if (code === "timeout") {
        proc.kill("SIGKILL");
        return { kind: "timeout" };
      }
      return code === 0 ? { kind: "pass" } : { kind: "fail", why: `check command exited with status ${code}` };
    }
    case "tcp": {
      const target = spec.target as string;
      const i = target.lastIndexOf(":");
      const [hostname, port] = [target.slice(0, i), Number(target.slice(i + 1))];
      let timer: Timer | undefined;
      try {
        const result = await Promise.race([
          Bun.connect({ hostname, port, socket: { data() {} } }).then((s) => {
            s.end();
            return "ok" as const;
          }),
          new Promise<"timeout">((r) => {
            timer = setTimeout(() => r("timeout"), timeout);
          }),
        ]);
        return result === "ok" ? { kind: "pass" } : { kind: "timeout" };
      } catch (e) {
        return { kind: "fail", why: `connection to ${target} failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
      } finally {
        clearTimeout(timer);
      }
    }
    case "http": {
      try {
        const res = await fetch(spec.target as string, { signal: AbortSignal.timeout(timeout) });
        await res.body?.cancel();
        return res.status < 400 ? { kind: "pass" } : { kind: "fail", why: `HTTP ${res.status} from ${spec.target}` };
      } catch (e) {
        const err = e as Error;
        if (err.name === "TimeoutError" || err.name === "AbortError") return { kind: "timeout" };
        return { kind: "fail", why: `request to ${spec.target} failed: ${(e as NodeJS.ErrnoException).code ?? err.message}` };
      }
    }
    case "file": {
      // A heartbeat file passes while it was touched within interval + timeout.
      try {
        const age = Date.now() - statSync(spec.target as string).mtimeMs;
        const allowed = spec.intervalMs + spec.timeoutMs;
        return age <= allowed ? { kind: "pass" } : { kind: "fail", why: `heartbeat ${spec.target} is ${(age / 1000).toFixed(1)} s old (allowed ${allowed / 1000} s)` };
      } catch {
        return { kind: "fail", why: `heartbeat ${spec.target} does not exist` };
      }
    }
  }
}

/** CPU time (µs) and run states of a set of processes, from /proc. */
export function sampleProcs(pids: number[]): { cpuUs: number; states: string[] } {
  const ticksToUs = 1_000_000 / 100; // USER_HZ is 100 on Linux
  let cpuUs = 0;
  const states: string[] = [];
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      states.push(f[0]!);
      cpuUs += (Number(f[11]) + Number(f[12])) * ticksToUs;
    } catch {
      // exited
    }
  }
  return { cpuUs, states };
}

/** Why a passing check does not count: every process of the unit is stopped (SIGSTOP); undefined when one can run. */
export function stoppedPass(states: string[]): string | undefined {
  if (states.length === 0 || !states.every((s) => s === "T" || s === "t")) return undefined;
  return "stopped (SIGSTOP): the check passed (a listening socket is answered by the kernel) but no process of the unit can run";
}

export type TimeoutVerdict = { kind: "slow" } | { kind: "dead"; why: string };

/**
 * Decides what a time-out means from the unit's processes before and after
 * the check. `cpuBefore`/`cpuAfter` are µs of CPU used by the unit.
 */
export function judgeTimeout(cpuBefore: number, cpuAfter: number, states: string[]): TimeoutVerdict {
  if (states.length === 0) return { kind: "dead", why: "no process left" };
  if (states.every((s) => s === "T" || s === "t")) return { kind: "dead", why: "stopped (SIGSTOP): the check timed out and no process can run" };
  // 1 ms of CPU during the check is progress; a deadlocked unit uses none.
  if (cpuAfter - cpuBefore >= 1000) return { kind: "slow" };
  return { kind: "dead", why: "the check timed out and the unit used no CPU while it waited (hung)" };
}

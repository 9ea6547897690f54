// A real supervisor on the host, in a temporary directory: its units, its
// output lines, and clean-up of everything it started. Free of vitest, so the
// benchmarks use it too; tests import host-supervisor.ts, which cleans up
// after each test.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

export const MAIN = join(import.meta.dirname, "../../init/supervisor/main.ts");

export interface Sup {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  lines: string[];
  dir: string;
  waitFor(re: RegExp, ms?: number): Promise<string>;
}

const started: Sup[] = [];
const dirs: string[] = [];

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "paio-sup-"));
  dirs.push(d);
  for (const sub of ["units", "run", "state"]) mkdirSync(join(d, sub));
  return d;
}

export function unit(dir: string, name: string, text: string): void {
  writeFileSync(join(dir, "units", `${name}.toml`), text);
}

/** extraFds: descriptors the supervisor gets as fd 3, 4, ... (PID 1's notify pipe, say). */
export function startSupervisor(dir: string, env: Record<string, string> = {}, extraFds: number[] = []): Sup {
  const proc = Bun.spawn([process.execPath, MAIN], {
    env: { ...process.env, PAIO_UNIT_DIRS: join(dir, "units"), PAIO_RUN_DIR: join(dir, "run"), PAIO_STATE_DIR: join(dir, "state"), PAIO_WATCHDOG: "none", ...env },
    stdio: ["ignore", "pipe", "pipe", ...extraFds],
  }) as Subprocess<"ignore", "pipe", "pipe">;
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of proc.stdout) {
      const parts = (partial + decoder.decode(chunk)).split("\n");
      partial = parts.pop()!;
      for (const l of parts) {
        lines.push(l);
        for (const w of waiters.filter((w) => w.re.test(l))) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  })();
  const sup: Sup = {
    proc, lines, dir,
    waitFor(re, ms = 8000) {
      const seen = lines.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no line matching ${re}; got:\n${lines.join("\n")}`)), ms);
        waiters.push({ re, resolve: (l) => { clearTimeout(t); resolve(l); } });
      });
    },
  };
  started.push(sup);
  return sup;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function statePids(dir: string): Record<string, number> {
  const state = JSON.parse(readFileSync(join(dir, "run", "supervisor.json"), "utf8"));
  return Object.fromEntries(Object.entries(state.units).map(([k, v]) => [k, (v as { pid: number }).pid]));
}

/** Kills every supervisor started here and its units' process groups, and removes the temporary directories. */
export async function cleanUp(): Promise<void> {
  for (const s of started.splice(0)) {
    const pids = existsSync(join(s.dir, "run", "supervisor.json")) ? Object.values(statePids(s.dir)) : [];
    s.proc.kill("SIGKILL");
    await s.proc.exited;
    for (const pid of pids) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

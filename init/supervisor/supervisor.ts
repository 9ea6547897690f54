// The supervisor: loads unit files, starts every unit, keeps the state file,
// takes back the units of a previous supervisor, reloads on SIGHUP and stops
// everything in order on SIGTERM.

import { appendFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startTime, uptimeSeconds } from "./proc.ts";
import { readState, writeState } from "./state-file.ts";
import { parseUnitFile, type Unit } from "./unit-file.ts";
import { rotateIfLarge } from "./unit-log.ts";
import { UnitRunner } from "./unit-runner.ts";

export interface SupervisorConfig {
  unitDirs: string[];
  runDir: string;
  stateDir: string;
  say: (line: string) => void;
}

export function configFromEnv(env: Record<string, string | undefined>): SupervisorConfig {
  return {
    unitDirs: (env.PAIO_UNIT_DIRS ?? "/etc/paio/units:/var/lib/paio/units").split(":").filter(Boolean),
    runDir: env.PAIO_RUN_DIR ?? "/run/paio",
    stateDir: env.PAIO_STATE_DIR ?? "/var/lib/paio",
    say: (line) => console.log(`paio: ${line}`),
  };
}

export interface LoadResult {
  units: Map<string, Unit>;
  errors: string[];
  notes: string[];
}

/** Reads every *.toml in the unit directories; a later directory overrides an earlier one. */
export function loadUnits(dirs: string[]): LoadResult {
  const units = new Map<string, Unit>();
  const errors: string[] = [];
  const notes: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith(".toml")).sort();
    } catch {
      continue; // a missing directory simply has no units
    }
    for (const file of names) {
      const path = join(dir, file);
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch (e) {
        errors.push(`${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        continue;
      }
      const result = parseUnitFile(text, path);
      if (!result.ok) {
        errors.push(result.error);
        continue;
      }
      const previous = units.get(result.unit.name);
      if (previous) notes.push(`${result.unit.name}: ${path} overrides ${previous.path}`);
      units.set(result.unit.name, result.unit);
    }
  }
  return { units, errors, notes };
}

function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const text: Record<string, string> = {
    ENOSPC: "no space left on device",
    EROFS: "read-only file system",
    EACCES: "permission denied",
    ENOTDIR: "a path component is not a directory",
    ENOENT: "no such file or directory",
  };
  return err.code ? `${text[err.code] ?? err.message} (${err.code})` : String(e);
}

export class Supervisor {
  private runners = new Map<string, UnitRunner>();
  private baseEnv: Record<string, string>;

  constructor(private cfg: SupervisorConfig) {
    this.baseEnv = {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: process.env.HOME ?? "/root",
      TERM: process.env.TERM ?? "linux",
    };
  }

  private say(line: string): void {
    this.cfg.say(line);
  }

  private saveState(): void {
    const units: Record<string, { pid: number; startTime: number; exec: string[] }> = {};
    for (const r of this.runners.values()) {
      if (r.pid !== undefined && r.startTime !== undefined) units[r.name] = { pid: r.pid, startTime: r.startTime, exec: r.unit.exec };
    }
    try {
      writeState(this.cfg.runDir, { supervisorPid: process.pid, units });
    } catch (e) {
      this.say(`warning: cannot write the state file in ${this.cfg.runDir}: ${errnoText(e)}`);
    }
  }

  /** Persistent bookkeeping on the data partition; a full or broken disk is reported, never fatal. */
  private recordBoot(): void {
    const dir = join(this.cfg.stateDir, "supervisor");
    const file = join(dir, "boots.log");
    try {
      mkdirSync(join(this.cfg.stateDir, "units"), { recursive: true });
      mkdirSync(dir, { recursive: true });
      appendFileSync(file, `${new Date().toISOString()} pid=${process.pid} uptime=${uptimeSeconds().toFixed(2)}\n`);
    } catch (e) {
      this.say(
        `warning: cannot write ${file}: ${errnoText(e)}; persistent state is not being updated — ` +
          `free space on the data partition (${this.cfg.stateDir}) or check /run/paio/data-status`,
      );
    }
  }

  private runnerFor(unit: Unit): UnitRunner {
    return new UnitRunner(unit, {
      say: (line) => this.say(line),
      changed: () => this.saveState(),
      runDir: this.cfg.runDir,
      baseEnv: this.baseEnv,
    });
  }

  private report(result: LoadResult): void {
    for (const note of result.notes) this.say(`note: ${note}`);
    for (const error of result.errors) {
      this.say(`unit error: ${error}; fix the file, then run 'kill -HUP $(cat ${join(this.cfg.runDir, "supervisor.pid")})' or reboot`);
    }
  }

  start(): void {
    try {
      mkdirSync(this.cfg.runDir, { recursive: true });
      writeFileSync(join(this.cfg.runDir, "supervisor.pid"), `${process.pid}\n`);
    } catch (e) {
      this.say(`warning: cannot create ${this.cfg.runDir}: ${errnoText(e)}`);
    }
    this.recordBoot();
    const result = loadUnits(this.cfg.unitDirs);
    this.report(result);
    const previous = readState(this.cfg.runDir);
    for (const unit of result.units.values()) {
      const runner = this.runnerFor(unit);
      this.runners.set(unit.name, runner);
      const rec = previous?.units[unit.name];
      if (rec && startTime(rec.pid) === rec.startTime && JSON.stringify(rec.exec) === JSON.stringify(unit.exec)) {
        runner.adopt(rec.pid, rec.startTime);
      } else {
        runner.start();
      }
    }
    this.saveState();
    setInterval(() => {
      for (const name of this.runners.keys()) rotateIfLarge(this.cfg.runDir, name);
    }, 10_000).unref();
    const refused = result.errors.length;
    this.say(
      `supervisor ready (uptime ${uptimeSeconds().toFixed(2)} s, ${this.runners.size} units started` +
        `${refused ? `, ${refused} refused` : ""})`,
    );
  }

  /** Starts units whose files were added; reports changed and removed ones (a full reload comes later). */
  reload(): void {
    const result = loadUnits(this.cfg.unitDirs);
    this.report(result);
    let added = 0;
    for (const unit of result.units.values()) {
      const existing = this.runners.get(unit.name);
      if (!existing) {
        const runner = this.runnerFor(unit);
        this.runners.set(unit.name, runner);
        runner.start();
        added++;
      } else if (JSON.stringify(existing.unit) !== JSON.stringify(unit)) {
        this.say(`${unit.name}: unit file changed; restart the supervisor or reboot to apply it`);
      }
    }
    for (const name of this.runners.keys()) {
      if (!result.units.has(name)) this.say(`${name}: unit file removed; it keeps running until the next reboot`);
    }
    this.say(`reloaded: ${added} unit(s) added`);
  }

  async stopAll(): Promise<number> {
    const running = [...this.runners.values()].reverse();
    await Promise.all(running.map((r) => r.stop()));
    this.saveState();
    return running.length;
  }

  status(): Record<string, { state: string; pid?: number }> {
    const out: Record<string, { state: string; pid?: number }> = {};
    for (const r of this.runners.values()) out[r.name] = { state: r.state, pid: r.pid };
    return out;
  }
}


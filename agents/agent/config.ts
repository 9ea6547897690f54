// The agent's settings: the [agent] table of /etc/paio/agent.toml (the [llm]
// table of the same file belongs to the console). Every field is optional;
// errors name the file, the field and what is expected. Environment
// variables (PAIO_AGENT_*) override the file, which the tests use to shorten
// the agent's windows.

import { readOptionalConfig } from "../../lib/config/read.ts";
import { tomlErrorLine } from "../../lib/config/toml.ts";
import { parseDuration } from "../../lib/config/measure.ts";

export interface AgentConfig {
  tickMs: number;
  /** How long a remedied unit must stay well before the remedy counts as a success. */
  outcomeWindowMs: number;
  /** Least time between two actions on the same unit. */
  cooldownMs: number;
  /** The pause before the agent restarts a unit the supervisor gave up at its start limit. */
  startLimitPauseMs: number;
  /** At most this many actions per unit per hour: the ladder can never loop for long. */
  maxActionsPerHour: number;
  /** The agent's CPU budget, percent of one core. */
  cpuBudgetPercent: number;
  /** Retrain the per-device anomaly model this often (0: never). */
  retrainEveryMs: number;
  /** The retraining process's CPU limit (cgroup cpu.max), percent of one core. */
  retrainCpuPercent: number;
  /** Database size cap, bytes. */
  maxDbBytes: number;
}

export const DEFAULT_CONFIG: AgentConfig = {
  tickMs: 1000,
  outcomeWindowMs: 60_000,
  cooldownMs: 5000,
  startLimitPauseMs: 30_000,
  maxActionsPerHour: 12,
  cpuBudgetPercent: 1,
  retrainEveryMs: 6 * 3600_000,
  retrainCpuPercent: 20,
  maxDbBytes: 48 << 20,
};

const FIELDS: Record<keyof AgentConfig, { key: string; kind: "duration" | "number" }> = {
  tickMs: { key: "tick", kind: "duration" },
  outcomeWindowMs: { key: "outcome_window", kind: "duration" },
  cooldownMs: { key: "cooldown", kind: "duration" },
  startLimitPauseMs: { key: "start_limit_pause", kind: "duration" },
  maxActionsPerHour: { key: "max_actions_per_hour", kind: "number" },
  cpuBudgetPercent: { key: "cpu_budget_percent", kind: "number" },
  retrainEveryMs: { key: "retrain_every", kind: "duration" },
  retrainCpuPercent: { key: "retrain_cpu_percent", kind: "number" },
  maxDbBytes: { key: "max_db_mb", kind: "number" },
};

export function loadAgentConfig(path = "/etc/paio/agent.toml", env: Record<string, string | undefined> = process.env): AgentConfig {
  const cfg = { ...DEFAULT_CONFIG };
  let table: Record<string, unknown> = {};
  const text = readOptionalConfig(path);
  if (text !== undefined) {
    let doc: Record<string, unknown>;
    try {
      doc = Bun.TOML.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${path} line ${tomlErrorLine(text)}: not valid TOML (${(e as Error).message})`);
    }
    if (doc.agent !== undefined) {
      if (typeof doc.agent !== "object" || doc.agent === null) throw new Error(`${path} field 'agent': must be a table ([agent])`);
      table = doc.agent as Record<string, unknown>;
    }
    const known = Object.values(FIELDS).map((f) => f.key);
    for (const k of Object.keys(table)) if (!known.includes(k)) throw new Error(`${path} field 'agent.${k}': unknown; known fields in [agent]: ${known.join(", ")}`);
  }
  for (const [field, { key, kind }] of Object.entries(FIELDS) as [keyof AgentConfig, { key: string; kind: string }][]) {
    const envKey = `PAIO_AGENT_${key.toUpperCase()}`;
    const raw = env[envKey] ?? table[key];
    if (raw === undefined) continue;
    const where = env[envKey] !== undefined ? `environment variable ${envKey}` : `${path} field 'agent.${key}'`;
    if (kind === "duration") {
      const ms = typeof raw === "string" ? parseDuration(raw) : undefined;
      if (ms === undefined) throw new Error(`${where}: expected a duration such as "30s"`);
      cfg[field] = ms;
    } else {
      const n = Number(raw);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${where}: expected a positive number`);
      cfg[field] = field === "maxDbBytes" ? n * 2 ** 20 : n;
    }
  }
  return cfg;
}

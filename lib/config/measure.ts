// Durations, sizes, CPU shares and ports as they are written in configuration files.

/** "200ms", "5s", "1.5m", "2h" -> milliseconds; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(text);
  if (!m) return undefined;
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Math.round(Number(m[1]) * factor);
}

/** "128M", "1G", "512K", "4096" (bytes) -> bytes; undefined if malformed. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$/i.exec(text);
  if (!m) return undefined;
  const power = " KMGT".indexOf((m[2] || " ").toUpperCase());
  return Math.round(Number(m[1]) * 1024 ** power);
}

export const CPU_PERIOD_US = 100_000;

/** "50%" of one CPU, "150%" (one and a half) -> quota in µs per 100 ms period. */
export function parseCpuMax(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text);
  if (!m) return undefined;
  const pct = Number(m[1]);
  if (pct <= 0) return undefined;
  return Math.max(1000, Math.round((pct / 100) * CPU_PERIOD_US));
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(2)}s`;
  return `${+(ms / 60_000).toFixed(2)}m`;
}

export type Proto = "tcp" | "udp";
export interface Port {
  port: number;
  proto: Proto;
}
/** "8080", 8080, "5683/udp" -> a port; undefined if malformed. */
export function parsePort(v: unknown): Port | undefined {
  if (typeof v === "number") return Number.isInteger(v) && v >= 1 && v <= 65535 ? { port: v, proto: "tcp" } : undefined;
  if (typeof v !== "string") return undefined;
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(v.trim());
  if (!m) return undefined;
  const port = Number(m[1]);
  return port >= 1 && port <= 65535 ? { port, proto: (m[2] as Proto | undefined) ?? "tcp" } : undefined;
}

export function formatPort(p: Port): string {
  return `${p.port}/${p.proto}`;
}


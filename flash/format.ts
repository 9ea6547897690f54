// Sizes, durations and the progress line, for people.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** 605048832 -> "577.0 MiB". */
export function human(bytes: number): string {
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${UNITS[i]}`;
}

/** Seconds as "0:07", "12:30", "1:02:03". */
export function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export interface ProgressSample {
  /** What is being done: "writing", "verifying". */
  what: string;
  done: number;
  total: number;
  /** Seconds since the start. */
  elapsed: number;
}

/**
 * One progress line: "writing   [#########...........]  45%  35.6/79.0 MiB  12.1 MiB/s  0:03 left".
 * The rate is the average since the start (a bmap write is bursty: ranges,
 * then a flush), the time left what that rate gives for the rest.
 */
export function progressLine(p: ProgressSample, width = 24): string {
  const frac = p.total > 0 ? Math.min(1, Math.max(0, p.done / p.total)) : 0;
  const filled = Math.round(frac * width);
  const bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
  const rate = p.elapsed > 0 ? p.done / p.elapsed : 0;
  // Too early to tell below 1% done.
  const left = rate > 0 && frac >= 0.01 ? (p.total - p.done) / rate : NaN;
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  const amount = `${human(p.done)}/${human(p.total)}`;
  const speed = p.elapsed >= 0.05 && p.done > 0 ? `  ${human(rate)}/s` : "";
  return `${p.what.padEnd(9)} ${bar} ${pct}  ${amount}${speed}  ${frac >= 1 ? "done" : `${clock(left)} left`}`;
}

/** A table with left-aligned columns, two spaces apart. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [fmt(head), ...rows.map(fmt)].join("\n");
}

// The data partition's format: one whole number in /var/lib/paio/FORMAT
// (under PAIO_STATE_DIR), after a comment line. Both system slots (A/B) use
// the same partition; a version that finds a format newer than it knows
// leaves the partition's shared files alone (the knowledge base, first-boot
// settings, device models and keys) instead of rewriting them in a format
// the newer version no longer reads. docs/image.md, "Data across versions".

import { existsSync, mkdirSync } from "node:fs";
import { writeDurably } from "./durable-write.ts";
import { join } from "node:path";
import { errnoText, readConfigFile } from "./config/read.ts";

/** The newest data-partition format this build knows. */
export const DATA_FORMAT = 1;

export type DataFormat =
  | { state: "missing"; path: string }
  | { state: "same" | "older"; path: string; format: number }
  /** Newer than this build knows, or not readable as a format: the shared files are not to be written. */
  | { state: "newer"; path: string; format: number; problem: string }
  | { state: "unreadable"; path: string; problem: string };

export function dataFormatPath(stateDir = process.env.PAIO_STATE_DIR ?? "/var/lib/paio"): string {
  return join(stateDir, "FORMAT");
}

export function formatFileText(format = DATA_FORMAT): string {
  return `# PAIO data partition format (docs/image.md, "Data across versions"); a version that knows only older formats leaves the shared files alone\n${format}\n`;
}

/** What the marker says; reads only, never blocks (a FIFO in its place is refused). */
export function readDataFormat(stateDir?: string, known = DATA_FORMAT): DataFormat {
  const path = dataFormatPath(stateDir);
  if (!existsSync(path)) return { state: "missing", path };
  const read = readConfigFile(path, 4096);
  const fix =
    `if this version was the last to use the partition, write its format into the file (echo ${known} > ${path}) or remove the file (it is written again at the next start); ` +
    `if a newer PAIO version used it, boot that version`;
  if (!read.ok) return { state: "unreadable", path, problem: `${read.error}; the data partition's shared files are left alone until it is fixed: ${fix}` };
  const lines = read.text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  const format = lines.length === 1 && /^[0-9]{1,9}$/.test(lines[0]!) ? Number(lines[0]) : 0;
  if (format < 1) {
    const found = lines.length === 0 ? "no number" : JSON.stringify(lines.join(" ").slice(0, 40));
    return {
      state: "unreadable", path,
      problem: `${path}: not a data format marker (expected one whole number such as ${known} after '#' comment lines; found ${found}); the data partition's shared files are left alone until it is fixed: ${fix}`,
    };
  }
  if (format > known) {
    return {
      state: "newer", path, format,
      problem:
        `${path}: the data partition is in format ${format}, newer than this PAIO version knows (up to ${known}): a newer PAIO version used it. ` +
        `Units run, but the knowledge base, first-boot settings, device models and keys on it are left alone (the agent runs without its knowledge base). ` +
        `Boot the newer version again to use them; or, to give the partition to this version, save what you need from it and have it formatted at the next boot (docs/image.md, "The data partition")`,
    };
  }
  return { state: format === known ? "same" : "older", path, format };
}

/** Why the data partition's shared files must not be written, or undefined when they may be (a missing marker is written by the supervisor). */
export function dataFormatProblem(stateDir?: string): string | undefined {
  const f = readDataFormat(stateDir);
  return f.state === "newer" || f.state === "unreadable" ? f.problem : undefined;
}

/**
 * The supervisor's check at start, before any unit runs: writes the marker
 * when it is missing (a new partition) or older, says the problem when it
 * is newer or unreadable. Never throws: a partition that cannot be written
 * is said, and the device still boots.
 */
export function checkDataFormat(stateDir: string, say: (line: string) => void, known = DATA_FORMAT): DataFormat {
  const f = readDataFormat(stateDir, known);
  if (f.state === "newer" || f.state === "unreadable") {
    say(`data partition: ${f.problem}`);
    return f;
  }
  if (f.state === "same") return f;
  // An older format: a later format's conversion of the partition's files goes here, before the number is written.
  try {
    mkdirSync(stateDir, { recursive: true });
    writeDurably(f.path, formatFileText(known));
    say(f.state === "older" ? `data partition: format ${f.format} is now format ${known} (${f.path})` : `data partition: format ${known}, marked in ${f.path}`);
  } catch (e) {
    say(`data partition: cannot write the format marker ${f.path}: ${errnoText(e)}`);
  }
  return f;
}


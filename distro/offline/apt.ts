// What the offline build needs from apt, as plain functions over apt's own
// text: the deb-src list made from the machine's Debian archive entries, the
// versions of a package the archive offers (`apt-cache madison`), Debian's
// version order, and the choice of the newest version whose files can really
// be fetched: an archive moves on, and a suite may list a version whose files
// are already gone (or not yet there), e.g. the security archive's libzstd
// 1.5.4+dfsg2-5+deb12u1 answering 404 while bookworm's 1.5.4+dfsg2-5 is there.

import type { AptSource } from "../../image/apt.ts";

export const DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

/**
 * The one-line apt list the offline build uses (with a private state
 * directory), from the machine's apt sources (image/apt.ts reads them: the
 * deb822 files and the one-line sources.list alike): deb-src for every
 * Debian entry, and deb lines for `binaryComponents` (e.g. non-free-firmware
 * for the Pi's firmware). Only the release's own suites are kept (bookworm,
 * bookworm-updates, bookworm-security, ...): a third-party repository
 * usually has no sources. Identical lines are written once.
 */
export function aptList(sources: AptSource[], codename: string, binaryComponents: string[] = []): string {
  const lines: string[] = [];
  for (const s of sources.filter((s) => s.suite === codename || s.suite.startsWith(`${codename}-`) || s.suite.startsWith(`${codename}/`))) {
    const key = `[signed-by=${s.signedBy ?? DEBIAN_KEYRING}]`;
    lines.push(`deb-src ${key} ${s.uri} ${s.suite} ${s.components.join(" ")}`);
    if (binaryComponents.length) lines.push(`deb ${key} ${s.uri} ${s.suite} ${binaryComponents.join(" ")}`);
  }
  return [...new Set(lines)].join("\n") + "\n";
}

/** The release's code name from /etc/os-release's text (VERSION_CODENAME, or the name in VERSION). */
export function releaseCodename(osRelease: string): string | undefined {
  return /^VERSION_CODENAME="?([a-z]+)"?$/m.exec(osRelease)?.[1] ?? /^VERSION="?[^"(]*\(([a-z]+)\)/m.exec(osRelease)?.[1];
}

// --- Debian's version order (dpkg's algorithm) ---

function order(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === "~") return -1;
  if (c >= "0" && c <= "9") return 0;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

function compareParts(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const d = order(a[i]) - order(b[j]);
      if (d) return d;
      i++;
      j++;
    }
    while (a[i] === "0") i++;
    while (b[j] === "0") j++;
    let first = 0;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (!first) first = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (first) return first;
  }
  return 0;
}

function split(v: string): [number, string, string] {
  const colon = v.indexOf(":");
  const epoch = colon >= 0 ? Number(v.slice(0, colon)) : 0;
  const rest = colon >= 0 ? v.slice(colon + 1) : v;
  const dash = rest.lastIndexOf("-");
  return dash >= 0 ? [epoch, rest.slice(0, dash), rest.slice(dash + 1)] : [epoch, rest, ""];
}

/** <0, 0, >0 as Debian orders the two versions (what `dpkg --compare-versions` says). */
export function compareVersions(a: string, b: string): number {
  const [ea, ua, ra] = split(a);
  const [eb, ub, rb] = split(b);
  if (ea !== eb) return ea - eb;
  return compareParts(ua, ub) || compareParts(ra, rb);
}

/** The version without its epoch, as it appears in file names (1:1.35.0-4 -> 1.35.0-4). */
export function fileVersion(version: string): string {
  return version.replace(/^\d+:/, "");
}

// --- choosing the source version ---

export interface SourceCandidate {
  version: string;
  /** The suites that list it, e.g. ["bookworm-security"]. */
  suites: string[];
}

/**
 * The versions of source package `pkg` that `apt-cache madison pkg` lists,
 * newest first. Lines look like
 * "   libzstd | 1.5.4+dfsg2-5 | http://deb.debian.org/debian bookworm/main Sources".
 */
export function sourceCandidates(madison: string, pkg: string): SourceCandidate[] {
  return archiveCandidates(madison, pkg, "Sources");
}

/**
 * The same for binary packages ("Packages" lines, e.g.
 * " raspi-firmware | 1.20220830+ds-1 | http://deb.debian.org/debian bookworm/non-free-firmware amd64 Packages").
 */
export function archiveCandidates(madison: string, pkg: string, kind: "Sources" | "Packages"): SourceCandidate[] {
  const byVersion = new Map<string, string[]>();
  for (const line of madison.split("\n")) {
    const cols = line.split("|").map((c) => c.trim());
    if (cols.length !== 3 || cols[0] !== pkg || !cols[2]!.endsWith(` ${kind}`)) continue;
    const suite = (cols[2]!.split(/\s+/)[1] ?? "").split("/")[0]!;
    const suites = byVersion.get(cols[1]!) ?? [];
    if (!suites.includes(suite)) suites.push(suite);
    byVersion.set(cols[1]!, suites);
  }
  return [...byVersion].map(([version, suites]) => ({ version, suites })).sort((a, b) => compareVersions(b.version, a.version));
}

/**
 * Why apt could not fetch: its first "E:" line, shortened to the status and
 * the file, e.g. "404  Not Found (libzstd_1.5.4+dfsg2-5+deb12u1.dsc)".
 */
export function fetchFailure(output: string): string {
  const lines = output.split("\n").map((l) => l.trim()).filter(Boolean);
  const e = lines.find((l) => l.startsWith("E: Failed to fetch "));
  if (e) {
    const m = /^E: Failed to fetch (\S+)\s+(.*?)\s*(\[IP:[^\]]*\])?$/.exec(e);
    if (m) return `${m[2]!.replace(/\s+/g, " ")} (${decodeURIComponent(m[1]!.split("/").pop()!)})`;
  }
  return (lines.find((l) => l.startsWith("E: ")) ?? lines.at(-1) ?? "no output").replace(/^E: /, "");
}

export interface SourceChoice {
  version: string;
  suites: string[];
  /** Newer versions tried first, with the reason each failed. */
  skipped: { version: string; suites: string[]; reason: string }[];
}

/**
 * Tries the candidates newest first with `fetch` (apt-get source PKG=VERSION)
 * and returns the first that worked, or throws naming every version tried and
 * why it failed.
 */
export function chooseSource(pkg: string, candidates: SourceCandidate[], fetch: (version: string) => { ok: boolean; output: string }): SourceChoice {
  if (!candidates.length) throw new Error(`${pkg}: the archive lists no source package of that name (is there a deb-src entry for it?)`);
  const skipped: SourceChoice["skipped"] = [];
  for (const c of candidates) {
    const r = fetch(c.version);
    if (r.ok) return { version: c.version, suites: c.suites, skipped };
    skipped.push({ version: c.version, suites: c.suites, reason: fetchFailure(r.output) });
  }
  throw new Error(`${pkg}: no version's source could be fetched:\n${skipped.map((s) => `  ${s.version} (${s.suites.join(", ")}): ${s.reason}`).join("\n")}`);
}

/**
 * One line saying which version was used and, when it is not the newest, why:
 * "libzstd: using 1.5.4+dfsg2-5 (bookworm): the newer 1.5.4+dfsg2-5+deb12u1
 * (bookworm-security) could not be fetched: 404 Not Found (libzstd_1.5.4+dfsg2-5+deb12u1.dsc)".
 */
export function describeChoice(pkg: string, c: SourceChoice): string {
  const used = `${pkg}: using ${c.version} (${c.suites.join(", ")})`;
  if (!c.skipped.length) return used;
  return `${used}: the newer ${c.skipped.map((s) => `${s.version} (${s.suites.join(", ")}) could not be fetched: ${s.reason}`).join("; ")}`;
}

/**
 * The upstream tarball a .dsc names: its .orig.tar.* (not a signature), or
 * for a native package its only .tar.*.
 */
export function dscTarball(dsc: string): string | undefined {
  const lines = dsc.split("\n");
  const start = lines.findIndex((l) => /^Files:\s*$/.test(l));
  const names: string[] = [];
  for (const l of start < 0 ? [] : lines.slice(start + 1)) {
    if (!/^[ \t]/.test(l)) break;
    const name = l.trim().split(/\s+/)[2];
    if (name && !name.endsWith(".asc")) names.push(name);
  }
  return names.find((n) => /\.orig\.tar\.[a-z0-9]+$/.test(n)) ?? names.find((n) => /\.tar\.[a-z0-9]+$/.test(n) && !/\.debian\.tar\./.test(n));
}

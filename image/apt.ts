// Debian's archive as the host's apt sources name it, for packages of another
// architecture than the host's: a private apt (its own source list, package
// lists and status under ~/.cache/paio/apt-<arch>) so that building an arm64
// image neither adds a foreign architecture to the system nor edits its
// sources. The Raspberry Pi's boot firmware is in Debian's non-free-firmware
// component, which the private list adds to every suite.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CACHE } from "./config.ts";
import { BuildError } from "./errors.ts";

export interface AptSource {
  uri: string;
  suite: string;
  components: string[];
  signedBy?: string;
}

const DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

/** Binary ("deb") entries of a deb822 .sources file. */
export function parseDeb822(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const field = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, "mi").exec(block)?.[1]?.trim();
    if (/^Enabled:\s*no\s*$/im.test(block)) continue;
    const types = field("Types")?.split(/\s+/) ?? [];
    if (!types.includes("deb")) continue;
    const uris = field("URIs")?.split(/\s+/) ?? [];
    const suites = field("Suites")?.split(/\s+/) ?? [];
    const components = field("Components")?.split(/\s+/) ?? [];
    const signedBy = field("Signed-By");
    for (const uri of uris) for (const suite of suites) out.push({ uri, suite, components, signedBy: signedBy?.startsWith("/") ? signedBy : undefined });
  }
  return out;
}

/** "deb [options] URI SUITE COMPONENT..." lines of a one-line sources.list. */
export function parseOneLine(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const signedBy = /signed-by=(\S+)/.exec(m[1] ?? "")?.[1];
    out.push({ uri: m[2]!, suite: m[3]!, components: m[4]!.split(/\s+/).filter(Boolean), signedBy });
  }
  return out;
}

/** The host's apt sources: /etc/apt/sources.list and sources.list.d/ (*.list, *.sources). */
export function systemSources(etc = "/etc/apt"): AptSource[] {
  const out: AptSource[] = [];
  if (existsSync(join(etc, "sources.list"))) out.push(...parseOneLine(readFileSync(join(etc, "sources.list"), "utf8")));
  const parts = join(etc, "sources.list.d");
  for (const f of existsSync(parts) ? readdirSync(parts).sort() : []) {
    if (f.endsWith(".sources")) out.push(...parseDeb822(readFileSync(join(parts, f), "utf8")));
    else if (f.endsWith(".list")) out.push(...parseOneLine(readFileSync(join(parts, f), "utf8")));
  }
  return out;
}

/** The private source list for a foreign architecture: the host's archives, plus non-free-firmware. */
export function foreignSourceList(debArch: string, sources: AptSource[]): string {
  const debian = sources.filter((s) => s.components.includes("main"));
  if (debian.length === 0) throw new BuildError("no Debian archive with the 'main' component in the host's apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/); add one");
  const lines = ["# Written by the PAIO image assembler from the host's apt sources."];
  for (const s of debian) {
    const comps = [...new Set([...s.components.filter((c) => ["main", "non-free-firmware"].includes(c)), "non-free-firmware"])];
    lines.push(`deb [arch=${debArch} signed-by=${s.signedBy ?? DEFAULT_KEYRING}] ${s.uri} ${s.suite} ${comps.join(" ")}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * Options that make apt-get/apt-cache use a private state under `dir`: its own
 * source list (written from `listText` when it changed), package lists and
 * download folder, nothing of the system's sources. `extra` adds options
 * (another architecture, an empty status file).
 */
export function privateAptOptions(dir: string, listText: string, extra: string[] = []): { options: string[]; listsDir: string } {
  const lists = join(dir, "lists");
  mkdirSync(join(lists, "partial"), { recursive: true });
  mkdirSync(join(dir, "archives", "partial"), { recursive: true });
  const list = join(dir, "sources.list");
  if (!existsSync(list) || readFileSync(list, "utf8") !== listText) writeFileSync(list, listText);
  return {
    listsDir: lists,
    options: [
      ...extra,
      "-o", `Dir::Etc::SourceList=${list}`, "-o", "Dir::Etc::SourceParts=/nonexistent",
      "-o", `Dir::State::Lists=${lists}`, "-o", `Dir::Cache::Archives=${join(dir, "archives")}`, "-o", "Debug::NoLocking=1",
    ],
  };
}

/** apt options for the private apt of debArch (~/.cache/paio/apt-<arch>). */
export function foreignAptOptions(debArch: string): { options: string[]; listsDir: string } {
  const dir = join(CACHE, `apt-${debArch}`);
  mkdirSync(dir, { recursive: true });
  const status = join(dir, "status");
  if (!existsSync(status)) writeFileSync(status, "");
  return privateAptOptions(dir, foreignSourceList(debArch, systemSources()), [
    "-o", `APT::Architecture=${debArch}`, "-o", `APT::Architectures::=${debArch}`,
    "-o", "Dir::Etc::Preferences=/nonexistent", "-o", "Dir::Etc::PreferencesParts=/nonexistent",
    "-o", `Dir::State::status=${status}`, "-o", `Dir::Cache=${dir}`,
  ]);
}

// Debian packages as build inputs: downloaded once with `apt-get download`,
// unpacked with `dpkg-deb -x`, and cached under ~/.cache/paio/debs keyed by
// name, version and architecture, so a rebuild needs no network. The host's
// architecture uses the system's apt; another one (arm64 on an x86_64 host)
// a private apt (image/apt.ts).

import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { A, CACHE } from "./config.ts";
import { foreignAptOptions } from "./apt.ts";
import { BuildError, run } from "./errors.ts";

export interface Deb {
  name: string;
  version: string;
  /** Unpacked package contents. */
  root: string;
  /** How the manifest names where a file came from. */
  origin: string;
}

const DEB_DIR = join(CACHE, "debs");

let hostArch: string | undefined;
/** This machine's Debian architecture (amd64 on a PC); asked of dpkg once. */
export function hostDebArch(): string {
  hostArch ??= Bun.spawnSync(["dpkg", "--print-architecture"], { stdout: "pipe" }).stdout.toString().trim() || "amd64";
  return hostArch;
}

/** The apt to use for an architecture: the system's for the host's own, else a private one. */
class Apt {
  private updated = false;
  private readonly options: string[];
  private readonly listsDir?: string;

  constructor(readonly debArch: string) {
    if (debArch === hostDebArch()) {
      this.options = [];
    } else {
      const p = foreignAptOptions(debArch);
      this.options = p.options;
      this.listsDir = p.listsDir;
      // A private apt starts without package lists.
      if (readdirSync(p.listsDir).filter((f) => f !== "partial" && f !== "lock").length === 0) this.update();
    }
  }

  update(): void {
    if (this.updated) return;
    run(["apt-get", ...this.options, "update", "-q"]);
    this.updated = true;
  }

  get canUpdate(): boolean {
    return !this.updated;
  }

  cmd(tool: "apt-get" | "apt-cache", args: string[]): string[] {
    return [tool, ...this.options, ...args];
  }

  describe(): string {
    return this.listsDir ? `apt for ${this.debArch} (sources from the host's, lists in ${this.listsDir})` : "the system's apt";
  }
}

const apts = new Map<string, Apt>();
function aptFor(debArch: string): Apt {
  if (!apts.has(debArch)) apts.set(debArch, new Apt(debArch));
  return apts.get(debArch)!;
}

/** apt's candidate versions for several packages, in one (slow) apt-cache call. */
function candidateVersions(apt: Apt, names: string[]): Map<string, string> {
  const out = Bun.spawnSync(apt.cmd("apt-cache", ["policy", ...names]), { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  const found = new Map<string, string>();
  for (const block of out.split(/^(?=\S)/m)) {
    const name = block.match(/^(\S+?)(?::\w+)?:\s*$/m)?.[1];
    const version = block.match(/Candidate:\s*(\S+)/)?.[1];
    if (name && version && version !== "(none)") found.set(name, version);
  }
  return found;
}

/** apt-get names downloaded files name_version_arch.deb, the version's ':' escaped; arch is the package's or "all". */
function debFile(name: string, version: string, debArch: string): string | undefined {
  const v = version.replace(/:/g, "%3a");
  for (const a of [debArch, "all"]) {
    const f = join(DEB_DIR, `${name}_${v}_${a}.deb`);
    if (existsSync(f)) return f;
  }
  return undefined;
}

/** The newest cached download of a package, for machines without apt lists. */
function cachedVersion(name: string, debArch: string): string | undefined {
  if (!existsSync(DEB_DIR)) return undefined;
  const versions: string[] = [];
  for (const f of readdirSync(DEB_DIR)) {
    for (const a of [debArch, "all"]) {
      if (f.startsWith(`${name}_`) && f.endsWith(`_${a}.deb`)) versions.push(decodeURIComponent(f.slice(name.length + 1, -`_${a}.deb`.length)));
    }
  }
  return versions.sort().at(-1);
}

/** Resolves the versions to use: apt's candidates, else cached downloads. */
export function resolveVersions(names: string[], debArch: string = A.debArch): Map<string, string> {
  const apt = aptFor(debArch);
  let versions = candidateVersions(apt, names);
  if (versions.size < names.length && apt.canUpdate) {
    // A fresh machine may have no package lists yet, or old ones.
    apt.update();
    versions = candidateVersions(apt, names);
  }
  for (const name of names) {
    const version = versions.get(name) ?? cachedVersion(name, debArch);
    if (!version) {
      throw new BuildError(`Debian package '${name}' (${debArch}) is unknown to ${apt.describe()} and not cached in ${DEB_DIR}; check the apt sources`);
    }
    versions.set(name, version);
  }
  return versions;
}

/** Downloads (if needed) and unpacks packages of an architecture (the image's by default). */
export function fetchDebs(names: string[], log: (msg: string) => void, debArch: string = A.debArch): Map<string, Deb> {
  const versions = resolveVersions(names, debArch);
  const debs = new Map<string, Deb>();
  for (const name of names) debs.set(name, fetchOne(name, versions.get(name)!, debArch, log));
  return debs;
}

function fetchOne(name: string, version: string, debArch: string, log: (msg: string) => void): Deb {
  mkdirSync(DEB_DIR, { recursive: true });
  let file = debFile(name, version, debArch);
  if (!file) {
    log(`downloading ${name} ${version} (${debArch})`);
    run(aptFor(debArch).cmd("apt-get", ["download", "-q", `${name}:${debArch}=${version}`]), { cwd: DEB_DIR });
    file = debFile(name, version, debArch);
    if (!file) throw new BuildError(`apt-get download ${name}:${debArch}=${version} left no ${name}_${version}_${debArch}.deb in ${DEB_DIR}`);
  }
  const root = file.replace(/\.deb$/, "");
  if (!existsSync(root)) {
    const tmp = `${root}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    run(["dpkg-deb", "-x", file, tmp]);
    renameSync(tmp, root);
  }
  const archNote = debArch === hostDebArch() ? "" : `:${debArch}`;
  return { name, version, root, origin: `debian:${name}${archNote}=${version}` };
}

/** The package a meta package (like linux-image-cloud-amd64) currently points to. */
export function metaTarget(meta: string, prefix: string, debArch: string = A.debArch): string {
  const apt = aptFor(debArch);
  let out = run(apt.cmd("apt-cache", ["depends", meta]));
  if (!out.includes(`Depends: ${prefix}`) && apt.canUpdate) {
    apt.update();
    out = run(apt.cmd("apt-cache", ["depends", meta]));
  }
  const dep = out
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l.startsWith(`Depends: ${prefix}`));
  if (!dep) throw new BuildError(`cannot find the ${prefix}* package that ${meta} depends on`);
  return dep.slice("Depends: ".length).replace(/:\w+$/, "");
}

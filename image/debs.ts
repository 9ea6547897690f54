// Debian packages as build inputs: downloaded once with `apt-get download`,
// unpacked with `dpkg-deb -x`, and cached under ~/.cache/paio/debs keyed by
// name and version, so a rebuild needs no network.

import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CACHE } from "./config.ts";
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
let aptUpdated = false;

/** apt's candidate versions for several packages, in one (slow) apt-cache call. */
function candidateVersions(names: string[]): Map<string, string> {
  const out = Bun.spawnSync(["apt-cache", "policy", ...names], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  const found = new Map<string, string>();
  for (const block of out.split(/^(?=\S)/m)) {
    const name = block.match(/^(\S+):/)?.[1];
    const version = block.match(/Candidate:\s*(\S+)/)?.[1];
    if (name && version && version !== "(none)") found.set(name, version);
  }
  return found;
}

/** apt-get names downloaded files with the version's ':' escaped. */
function debFileName(name: string, version: string): string {
  return `${name}_${version.replace(/:/g, "%3a")}_amd64.deb`;
}

/** The newest cached download of a package, for machines without apt lists. */
function cachedVersion(name: string): string | undefined {
  if (!existsSync(DEB_DIR)) return undefined;
  const files = readdirSync(DEB_DIR).filter((f) => f.startsWith(`${name}_`) && f.endsWith("_amd64.deb"));
  const versions = files.map((f) => decodeURIComponent(f.slice(name.length + 1, -"_amd64.deb".length)));
  return versions.sort().at(-1);
}

/** Resolves the versions to use: apt's candidates, else cached downloads. */
export function resolveVersions(names: string[]): Map<string, string> {
  let versions = candidateVersions(names);
  if (versions.size < names.length && !aptUpdated) {
    // A fresh machine may have no package lists yet.
    run(["apt-get", "update", "-q"]);
    aptUpdated = true;
    versions = candidateVersions(names);
  }
  for (const name of names) {
    const version = versions.get(name) ?? cachedVersion(name);
    if (!version) {
      throw new BuildError(`Debian package '${name}' is unknown to apt and not cached in ${DEB_DIR}; check the apt sources`);
    }
    versions.set(name, version);
  }
  return versions;
}

/** Downloads (if needed) and unpacks packages. */
export function fetchDebs(names: string[], log: (msg: string) => void): Map<string, Deb> {
  const versions = resolveVersions(names);
  const debs = new Map<string, Deb>();
  for (const name of names) debs.set(name, fetchOne(name, versions.get(name)!, log));
  return debs;
}

function fetchOne(name: string, version: string, log: (msg: string) => void): Deb {
  mkdirSync(DEB_DIR, { recursive: true });
  const file = join(DEB_DIR, debFileName(name, version));
  if (!existsSync(file)) {
    log(`downloading ${name} ${version}`);
    run(["apt-get", "download", "-q", `${name}=${version}`], { cwd: DEB_DIR });
    if (!existsSync(file)) throw new BuildError(`apt-get download ${name}=${version} did not produce ${file}`);
  }
  const root = file.replace(/\.deb$/, "");
  if (!existsSync(root)) {
    const tmp = `${root}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    run(["dpkg-deb", "-x", file, tmp]);
    renameSync(tmp, root);
  }
  return { name, version, root, origin: `debian:${name}=${version}` };
}

/** The package a meta package (like linux-image-cloud-amd64) currently points to. */
export function metaTarget(meta: string, prefix: string): string {
  let out = run(["apt-cache", "depends", meta]);
  if (!out.includes(`Depends: ${prefix}`) && !aptUpdated) {
    run(["apt-get", "update", "-q"]);
    aptUpdated = true;
    out = run(["apt-cache", "depends", meta]);
  }
  const dep = out
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l.startsWith(`Depends: ${prefix}`));
  if (!dep) throw new BuildError(`cannot find the ${prefix}* package that ${meta} depends on`);
  return dep.slice("Depends: ".length);
}

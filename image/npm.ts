// npm packages for another architecture than the host's. `npm ci` installs
// only the host's build of Bun (its optional dependencies are per CPU), so the
// arm64 one is fetched with `npm pack` at the version and integrity that
// package-lock.json records, checked, and unpacked into ~/.cache/paio/npm.
// A second build needs no network.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CACHE, REPO } from "./config.ts";
import { BuildError, run } from "./errors.ts";

const NPM_CACHE = join(CACHE, "npm");

/** The version and integrity package-lock.json pins for a package. */
export function lockedPackage(name: string, lockFile = join(REPO, "package-lock.json")): { version: string; integrity: string } {
  const lock = JSON.parse(readFileSync(lockFile, "utf8"));
  const entry = lock.packages?.[`node_modules/${name}`];
  if (!entry?.version || !entry?.integrity) {
    throw new BuildError(`package-lock.json does not pin ${name}; add it (npm install --package-lock-only) so its version and checksum are recorded`);
  }
  return { version: entry.version, integrity: entry.integrity };
}

/** Checks a tarball against an npm integrity string ("sha512-<base64>"). */
export function integrityMatches(data: Uint8Array, integrity: string): boolean {
  return integrity.split(/\s+/).some((one) => {
    const m = /^(sha512|sha384|sha256|sha1)-(.+)$/.exec(one);
    return !!m && createHash(m[1]!).update(data).digest("base64") === m[2];
  });
}

/** Unpacks name@version (as locked) into the cache if needed; returns the package directory. */
export function foreignPackage(name: string, log: (msg: string) => void): { dir: string; version: string } {
  const { version, integrity } = lockedPackage(name);
  const dir = join(NPM_CACHE, `${name.replace("/", "+")}-${version}`);
  if (existsSync(join(dir, "package.json"))) return { dir, version };
  mkdirSync(NPM_CACHE, { recursive: true });
  const work = join(NPM_CACHE, `.fetch-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work);
  log(`downloading ${name}@${version} from the npm registry`);
  run(["npm", "pack", "--silent", "--pack-destination", work, `${name}@${version}`], { cwd: work });
  const tgz = readdirSync(work).find((f) => f.endsWith(".tgz"));
  if (!tgz) throw new BuildError(`npm pack ${name}@${version} left no tarball`);
  if (!integrityMatches(readFileSync(join(work, tgz)), integrity)) {
    rmSync(work, { recursive: true, force: true });
    throw new BuildError(`${name}@${version} from the registry does not match the checksum in package-lock.json; refusing it`);
  }
  run(["tar", "-xzf", tgz, "--no-same-owner"], { cwd: work });
  rmSync(dir, { recursive: true, force: true });
  renameSync(join(work, "package"), dir);
  rmSync(work, { recursive: true, force: true });
  return { dir, version };
}

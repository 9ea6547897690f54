// The model manifest: which model files exist, their sha256 and size, what
// they take and give, how they were trained and how well they did, all signed
// with ed25519 (node:crypto). The agent loads a model only when the manifest's
// signature verifies against a trusted public key AND the file's hash matches;
// otherwise it refuses the model, says exactly why, and uses the rule.

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from "node:fs";
import { createOwnFile, plantedKind, readOwnFile } from "../../lib/own-file.ts";
import { dirname, join } from "node:path";
import { canonicalJson } from "../knowledge/canonical.ts";

export interface ModelEntry {
  name: string;
  file: string;
  sha256: string;
  size: number;
  inputs: string;
  outputs: string;
  metrics: Record<string, number>;
  training: string;
  /** Settings the runtime needs besides the graph (e.g. the anomaly threshold). */
  params?: Record<string, number>;
  /**
   * The held-out evaluation the model passed (agents/models/evaluate.ts):
   * who decides its class at run time ("model", "both", or "rule" when the
   * model did not beat its rule), and why. A model without one decides nothing.
   */
  evaluation?: ModelEvaluation;
}

export interface ModelEvaluation {
  decides: "rule" | "model" | "both";
  why: string;
  /** The held-out traces it was judged on ("scenario:seed"). */
  traces: string[];
}

export interface ManifestBody {
  version: 1;
  created: string;
  models: ModelEntry[];
}

export interface Manifest {
  body: ManifestBody;
  /** base64 ed25519 signature over canonical JSON of `body`. */
  signature: string;
  /** sha256 of the signing public key (DER), first 16 hex digits: which key signed. */
  key_id: string;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export function keyId(pub: KeyObject): string {
  return sha256(pub.export({ type: "spki", format: "der" })).slice(0, 16);
}

/** The build's signing key at `path` (outside the tree, never in the image), created (mode 0600) when missing. */
export function signingKey(path: string): KeyObject {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync("ed25519");
    writeFileSync(path, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  return createPrivateKey(readFileSync(path));
}

/** The device key's file in its folder. */
export const DEVICE_KEY_FILE = "device.pem";

/**
 * The device's own signing key, for the models it retrains: made on first
 * use in `dir` (mode 0700, the key 0600, owned by the agent's user), and
 * checked at every use. Only the private key is kept: the public key that
 * verifies the device's manifests is derived from it, never read from a
 * file, so there is no writable .pub beside it for anyone to swap. Whoever
 * can write this folder could sign models anyway; nothing weaker is trusted.
 */
export function deviceKey(dir: string): KeyObject {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const uid = process.getuid?.();
  const d = statSync(dir);
  if (uid !== undefined && d.uid !== uid) throw new Error(`${dir} belongs to uid ${d.uid}, not to the agent (uid ${uid}): the device key is not kept in a folder someone else owns; remove the folder and restart the agent to make a new key`);
  if ((d.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
  const path = join(dir, DEVICE_KEY_FILE);
  if (!existsSync(path)) {
    const { privateKey } = generateKeyPairSync("ed25519");
    const tmp = `${path}.tmp`;
    const fd = createOwnFile(tmp, 0o600);
    try {
      writeSync(fd, privateKey.export({ type: "pkcs8", format: "pem" }).toString());
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  }
  const st = statSync(path);
  if (uid !== undefined && st.uid !== uid) throw new Error(`${path} belongs to uid ${st.uid}, not to the agent (uid ${uid}); remove it and restart the agent to make a new key`);
  if ((st.mode & 0o777) !== 0o600) chmodSync(path, 0o600);
  try {
    return createPrivateKey(readFileSync(path));
  } catch (e) {
    throw new Error(`${path} is not a private key (${(e as Error).message}); remove it and restart the agent to make a new one (models it signed are then refused, and the image's are used)`);
  }
}

/** The public half of the device key, when the device has one; undefined before the first boot made it. */
export function devicePublicKey(dir: string): KeyObject | undefined {
  const path = join(dir, DEVICE_KEY_FILE);
  if (!existsSync(path)) return undefined;
  return createPublicKey(deviceKey(dir));
}

export function publicPem(priv: KeyObject): string {
  return createPublicKey(priv).export({ type: "spki", format: "pem" }).toString();
}

export function signManifest(body: ManifestBody, priv: KeyObject): Manifest {
  const pub = createPublicKey(priv);
  return { body, signature: sign(null, Buffer.from(canonicalJson(body)), priv).toString("base64"), key_id: keyId(pub) };
}

/** The public keys that sign the image's models: on the read-only root, never on the data partition. */
export const MODEL_KEYS_DIR = process.env.PAIO_MODEL_KEYS_DIR ?? "/usr/share/paio/model-keys";

/**
 * Trusted public keys: every *.pub (PEM) file in the given directories. On a
 * device these are folders of the read-only root (/usr/share/paio/model-keys),
 * never the writable data partition.
 */
export function trustedKeys(dirs: string[]): KeyObject[] {
  const keys: KeyObject[] = [];
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).filter((f) => f.endsWith(".pub")).sort()) keys.push(createPublicKey(readFileSync(join(d, f))));
  }
  return keys;
}

export type Verified = { ok: true; manifest: Manifest } | { ok: false; reason: string };

/** Bounds on what the agent reads from a models folder. */
export const MANIFEST_MAX_BYTES = 1 << 20;
export const MODEL_MAX_BYTES = 64 << 20;

/** Parses and checks a manifest file's signature. */
export function verifyManifest(path: string, keys: KeyObject[]): Verified {
  let m: Manifest;
  try {
    m = JSON.parse(readOwnFile(path, MANIFEST_MAX_BYTES).toString("utf8")) as Manifest;
  } catch (e) {
    return { ok: false, reason: `${path}: cannot read the manifest (${(e as Error).message})` };
  }
  if (!m || typeof m.signature !== "string" || !m.body || !Array.isArray(m.body.models)) return { ok: false, reason: `${path}: not a model manifest (needs body, signature, key_id)` };
  const key = keys.find((k) => keyId(k) === m.key_id);
  if (!key) return { ok: false, reason: `${path}: signed by key ${m.key_id}, which is not a trusted key` };
  let good = false;
  try {
    good = verify(null, Buffer.from(canonicalJson(m.body)), key, Buffer.from(m.signature, "base64"));
  } catch {
    good = false;
  }
  if (!good) return { ok: false, reason: `${path}: the signature does not match the manifest (the manifest was changed after signing)` };
  return { ok: true, manifest: m };
}

/** Reads one model's bytes and checks them against its manifest entry. */
export function checkModelFile(dir: string, entry: ModelEntry): { ok: true; bytes: Uint8Array } | { ok: false; reason: string } {
  const path = join(dir, entry.file);
  if (entry.file.includes("/") || entry.file.startsWith(".")) return { ok: false, reason: `manifest entry ${entry.name}: file name '${entry.file}' is not a plain file name` };
  if (!existsSync(path) && !plantedKind(path)) return { ok: false, reason: `${path} is missing` };
  let bytes: Uint8Array;
  try {
    // Not through a link, and bounded: a model file that is a link to /dev/zero must neither stall nor exhaust the agent.
    bytes = new Uint8Array(readOwnFile(path, MODEL_MAX_BYTES));
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
  const hash = sha256(bytes);
  if (hash !== entry.sha256) return { ok: false, reason: `${path}: sha256 ${hash.slice(0, 16)}… does not match the manifest's ${entry.sha256.slice(0, 16)}… (the file was altered)` };
  return { ok: true, bytes };
}

// The keys that sign update bundles (docs/updates.md). For development, a CA and
// a signing certificate are made on first use under ~/.cache/paio/keys (never in
// the repository): the image trusts the CA (/etc/rauc/keyring.pem), `make bundle`
// signs with the signing key. PAIO_KEY_DIR names another directory: a
// production CA's certificate and a signing key/certificate it issued, with the
// same file names.

import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CACHE } from "./config.ts";
import { BuildError, requireTools, run } from "./errors.ts";

export const KEY_DIR = process.env.PAIO_KEY_DIR ?? join(CACHE, "keys");

export interface SigningKeys {
  dir: string;
  /** The CA certificate the device trusts. */
  caCert: string;
  /** The certificate and key bundles are signed with (issued by the CA). */
  signCert: string;
  signKey: string;
}

export function keysIn(dir: string): SigningKeys {
  return { dir, caCert: join(dir, "ca.cert.pem"), signCert: join(dir, "signing.cert.pem"), signKey: join(dir, "signing.key.pem") };
}

/**
 * Makes a CA and a signing certificate it issued in `dir` (ECDSA P-256, ten
 * years). Written to a temporary directory first, so an interrupted run
 * leaves no half-made set behind.
 */
export function makeCa(dir: string, name = "PAIO development"): SigningKeys {
  requireTools(["openssl"]);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  const k = keysIn(tmp);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  run(["openssl", "req", "-x509", ...ec, "-keyout", join(tmp, "ca.key.pem"), "-out", k.caCert, "-days", "3650", "-subj", `/O=${name}/CN=${name} update CA`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  run(["openssl", "req", ...ec, "-keyout", k.signKey, "-out", join(tmp, "signing.csr"), "-subj", `/O=${name}/CN=${name} bundle signing`]);
  writeFileSync(join(tmp, "signing.ext"), "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n");
  run(["openssl", "x509", "-req", "-in", join(tmp, "signing.csr"), "-CA", k.caCert, "-CAkey", join(tmp, "ca.key.pem"), "-CAcreateserial",
    "-days", "3650", "-out", k.signCert, "-extfile", join(tmp, "signing.ext")]);
  for (const f of ["signing.csr", "signing.ext", "ca.cert.srl"]) rmSync(join(tmp, f), { force: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return keysIn(dir);
}

/** The signing keys: PAIO_KEY_DIR's, or the development ones, made on first use. */
export function signingKeys(log: (m: string) => void = () => {}): SigningKeys {
  const k = keysIn(KEY_DIR);
  if ([k.caCert, k.signCert, k.signKey].every(existsSync)) return k;
  if (process.env.PAIO_KEY_DIR) {
    throw new BuildError(`PAIO_KEY_DIR=${KEY_DIR} must hold ca.cert.pem, signing.cert.pem and signing.key.pem (docs/updates.md)`);
  }
  log(`making a development CA and signing key in ${KEY_DIR} (first use)`);
  return makeCa(KEY_DIR);
}

// SSH public keys as authorized_keys holds them: one checker for `paio
// ssh-key add`, the flashing tool's --ssh-key and first-boot settings.

import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { readConfigFile } from "./read.ts";

export const KEY_TYPES = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"];

/** An authorized_keys line, checked: known type, and a base64 blob that starts with that same type. */
export function parsePublicKey(text: string): { ok: true; line: string; type: string; blob: string } | { ok: false; error: string } {
  const t = text.trim();
  if (/[\r\n\0]/.test(t)) return { ok: false, error: "a key is one line; give one key at a time" };
  const [type, blob, ...comment] = t.split(/\s+/);
  if (!type || !KEY_TYPES.includes(type)) {
    return { ok: false, error: `not an SSH public key: it should start with one of ${KEY_TYPES.slice(0, 5).join(", ")} (options before the key are not accepted here)` };
  }
  if (!blob || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return { ok: false, error: `the key data after '${type}' is not base64` };
  const raw = Buffer.from(blob, "base64");
  const len = raw.length >= 4 ? raw.readUInt32BE(0) : -1;
  if (len <= 0 || len + 4 > raw.length || raw.subarray(4, 4 + len).toString("latin1") !== type) {
    return { ok: false, error: `the key data does not hold a ${type} key (copied incompletely?)` };
  }
  const safeComment = comment.join(" ").replace(/[^\x20-\x7e]/g, "").slice(0, 200);
  return { ok: true, line: [type, blob, safeComment].filter(Boolean).join(" "), type, blob };
}

/** Appends a key to an authorized_keys file unless it is already there; the file is replaced atomically. */
export function addAuthorizedKey(text: string, file: string): { ok: boolean; added: boolean; message: string } {
  const key = parsePublicKey(text);
  if (!key.ok) return { ok: false, added: false, message: key.error };
  const current = existsSync(file) ? readConfigFile(file) : { ok: true as const, text: "" };
  if (!current.ok) return { ok: false, added: false, message: current.error };
  if (current.text.split("\n").some((l) => l.split(/\s+/)[1] === key.blob)) return { ok: true, added: false, message: `${key.type} key already allowed` };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const body = current.text && !current.text.endsWith("\n") ? `${current.text}\n` : current.text;
  writeFileSync(`${file}.tmp`, `${body}${key.line}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  return { ok: true, added: true, message: `${key.type} key added to ${file}` };
}

// `paio update install FILE|URL`: checks a bundle, hands it to RAUC, which
// writes it into the slot that is not running and makes that slot boot next
// on trial (through PAIO's bootloader backend, rauc-backend.ts). Every outcome
// goes to the update journal. Refused before anything is written: a bundle
// whose signature or payload does not verify, one for another device, one
// older than the running version (unless allowDowngrade).

import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { InstallOptions, InstallResult } from "./api.ts";
import { otherSlot } from "./boot-entries.ts";
import { bootedSlot, KEYRING, runningVersion, systemCompatible, unsupportedReason } from "./device.ts";
import { appendEvent, UPDATE_DIR, type SlotName } from "./journal.ts";

/** What a source may be: an absolute path, or an http(s) URL of printable characters. */
export function checkSource(source: string): { kind: "file" | "url" } | { error: string } {
  if (!source || source.length > 2048) return { error: "the source must be a path or URL of at most 2048 characters" };
  if (/[\u0000-\u0020\u007f]/.test(source)) return { error: "the source must not contain spaces or control characters" };
  if (/^https?:\/\//i.test(source)) {
    try {
      const u = new URL(source);
      if (!u.hostname) return { error: `${source} has no host name` };
    } catch {
      return { error: `${source} is not a valid URL` };
    }
    return { kind: "url" };
  }
  if (source.startsWith("/")) return { kind: "file" };
  return { error: `${source} is neither an absolute path nor an http:// URL` };
}

/** Compares dotted versions numerically (0.10.0 > 0.9.1); a non-numeric part compares as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/), pb = b.split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? "0", y = pb[i] ?? "0";
    const nx = Number(x), ny = Number(y);
    const c = Number.isFinite(nx) && Number.isFinite(ny) ? nx - ny : x.localeCompare(y);
    if (c !== 0) return Math.sign(c);
  }
  return 0;
}

export interface BundleInfo {
  compatible: string;
  version: string;
}

/** `rauc info`: the bundle's signature is checked against the device's keyring; its manifest is returned. */
export function bundleInfo(file: string): BundleInfo | { error: string } {
  const r = Bun.spawnSync(["rauc", `--keyring=${KEYRING}`, "info", "--output-format=json", file], { stdout: "pipe", stderr: "pipe", timeout: 120_000 });
  const out = r.stdout.toString(), err = r.stderr.toString();
  if (r.exitCode !== 0) {
    const line = err.split("\n").map((l) => l.replace(/^rauc-\w+:\s*[\d:.]*:\s*/, "").trim()).filter(Boolean).pop() ?? `rauc info exited with ${r.exitCode}`;
    if (/signature|verif|certificate|CMS/i.test(err)) return { error: `its signature does not verify against this device's keyring (${KEYRING}): ${line}` };
    return { error: line };
  }
  try {
    const j = JSON.parse(out) as { compatible?: string; version?: string };
    if (!j.compatible || !j.version) return { error: "its manifest has no compatible or version" };
    return { compatible: j.compatible, version: j.version };
  } catch {
    return { error: "rauc info printed something that is not JSON" };
  }
}

/** Downloads a URL into the update directory with progress; the file appears whole or not at all. */
async function download(url: string, progress: (p: number, what: string) => void): Promise<string> {
  mkdirSync(UPDATE_DIR, { recursive: true });
  const dest = join(UPDATE_DIR, "download.raucb");
  const part = `${dest}.part`;
  const res = await fetch(url, { redirect: "follow" });
  if (!res.ok || !res.body) throw new Error(`${url} answered HTTP ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get("content-length")) || 0;
  const fd = openSync(part, "w", 0o600);
  let got = 0, shown = -1;
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      writeSync(fd, chunk);
      got += chunk.length;
      const pct = total ? Math.floor((got / total) * 100) : 0;
      if (pct !== shown) {
        shown = pct;
        progress(pct, `downloading ${(got / 1048576).toFixed(1)}${total ? ` of ${(total / 1048576).toFixed(1)}` : ""} MiB`);
      }
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (total && got !== total) {
    rmSync(part, { force: true });
    throw new Error(`the download from ${url} stopped after ${got} of ${total} bytes`);
  }
  renameSync(part, dest);
  return dest;
}

/** Runs `rauc install` (through RAUC's service) and passes its progress on. */
async function raucInstall(file: string, progress: (p: number, what: string) => void): Promise<{ ok: boolean; error: string }> {
  const p = Bun.spawn(["rauc", "install", file], { stdout: "pipe", stderr: "pipe" });
  let lastError = "";
  const read = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of s) {
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.search(/[\r\n]/)) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        const m = /^(\d{1,3})%\s+(.*)$/.exec(line);
        if (m) progress(Number(m[1]), m[2]!);
        // RAUC's client ends a failure with "LastError: <why>" and then "Installing `F` failed".
        else if (line.startsWith("LastError:")) lastError = line.slice(10).trim();
        else if (!lastError && /fail|error|refus/i.test(line)) lastError = line.replace(/^rauc-\w+:\s*[\d:.]*:\s*/, "");
      }
    }
  };
  await Promise.all([read(p.stdout), read(p.stderr)]);
  const code = await p.exited;
  return { ok: code === 0, error: lastError || `rauc install exited with ${code}` };
}

export async function installUpdate(source: string, opts: InstallOptions = {}): Promise<InstallResult> {
  const progress = opts.progress ?? (() => {});
  const started = Date.now();
  const fail = (reason: string): InstallResult => {
    try {
      appendEvent({ kind: "install-failed", at: Date.now(), source, reason });
    } catch {
      // a journal that cannot be written must not hide the reason
    }
    return { ok: false, reason };
  };
  const checked = checkSource(source);
  if ("error" in checked) return { ok: false, reason: checked.error };
  const why = unsupportedReason();
  if (why) return { ok: false, reason: why };
  const booted = bootedSlot();
  if (!booted) return { ok: false, reason: "the kernel command line has no rauc.slot=, so the running slot is unknown; was this device booted from a PAIO A/B image?" };

  let file = source;
  if (checked.kind === "url") {
    try {
      file = await download(source, progress);
    } catch (e) {
      return fail(`cannot download it: ${(e as Error).message}`);
    }
  } else if (!existsSync(source) || !statSync(source).isFile()) {
    return { ok: false, reason: `${source}: no such file` };
  }
  try {
    return await checkAndInstall(file, source, booted, started, opts.allowDowngrade ?? false, progress, fail);
  } finally {
    // A download is kept only while it is installed.
    if (checked.kind === "url") rmSync(file, { force: true });
  }
}

async function checkAndInstall(
  file: string, source: string, booted: SlotName, started: number, allowDowngrade: boolean,
  progress: (p: number, what: string) => void, fail: (reason: string) => InstallResult,
): Promise<InstallResult> {
  // RAUC refuses a bundle that others could change while it reads it.
  try {
    if (statSync(file).mode & 0o022) chmodSync(file, statSync(file).mode & ~0o022);
  } catch {
    // not ours to change; RAUC says why if it matters
  }

  progress(0, "checking the signature");
  const info = bundleInfo(file);
  if ("error" in info) return fail(`the bundle was refused: ${info.error}`);
  const compatible = systemCompatible();
  if (compatible && info.compatible !== compatible) {
    return fail(`the bundle is for '${info.compatible}' and this device takes '${compatible}' bundles (another architecture or product)`);
  }
  const current = runningVersion();
  if (!allowDowngrade && compareVersions(info.version, current) < 0) {
    return fail(`the bundle holds version ${info.version}, older than the running ${current}; use --allow-downgrade to install it anyway`);
  }

  const slot = otherSlot(booted);
  appendEvent({ kind: "install-started", at: Date.now(), source, slot, from: current });
  const r = await raucInstall(file, progress);
  if (!r.ok) return fail(`RAUC did not install it: ${r.error}`);
  const seconds = (Date.now() - started) / 1000;
  appendEvent({ kind: "installed", at: Date.now(), version: info.version, slot, seconds });
  return { ok: true, version: info.version, slot, seconds };
}

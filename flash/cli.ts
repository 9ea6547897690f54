// `paio flash` on the host: the command line, the drive list, the question
// and the progress bar. flash/flash.ts does the work; docs/flashing.md
// explains it.

import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { flash, FlashRefused, type FlashRequest, type Ui } from "./flash.ts";
import { HostError, readHost } from "./host.ts";
import { LayoutError } from "./lsblk.ts";
import { listDrives } from "./safety.ts";
import { human, progressLine, table } from "./format.ts";
import { VerifyError, WriteError } from "./write.ts";

export const FLASH_USAGE = `usage: paio flash [options] IMAGE TARGET
       paio flash --list [--json]
Writes IMAGE (raw, .xz or .zst) to TARGET (a whole drive such as /dev/sdb or
/dev/mmcblk0, or a file) through its bmap, then reads every written range back
and checks it. Refuses, writing nothing, the disk this computer runs from, a
mounted, fixed, read-only or too small drive, and the image file itself.
  --list                 the drives here: model, size, bus, removable, mounted, and what stops a flash
  --json                 with --list: as JSON
  --yes                  do not ask to type the drive's name (scripts)
  --unmount              unmount the drive's mounted file systems first
  --allow-fixed          allow a non-removable drive (an internal disk, a loop device)
  --no-bmap              write every block of an image that has no .bmap
  --bmap FILE            the image's bmap when it is not IMAGE.bmap
  --dry-run              check everything and say what would happen; write nothing
first-boot settings, written into the boot partition (docs/provisioning.md):
  --hostname NAME        --ssh-key FILE          --timezone TZ
  --wifi SSID (--wifi-psk-file FILE | --wifi-psk-stdin)
  --static-ip CIDR[,gw=IP][,dns=IP]              --units DIR    --policy FILE
exit status: 0 written and verified, 1 refused (nothing written) or failed, 2 usage`;

class UsageError extends Error {}

/** A line on stderr, as it is (no colouring). */
function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

interface Parsed {
  list: boolean;
  json: boolean;
  req: FlashRequest;
}

export function parseFlashArgs(args: string[]): Parsed {
  const req: FlashRequest = {
    image: "", target: "", noBmap: false, yes: false, dryRun: false, unmount: false, allowFixed: false, settings: {},
  };
  let list = false;
  let json = false;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    let a = args[i]!;
    let inline: string | undefined;
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0) {
      inline = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined || v === "") throw new UsageError(`${a} needs a value`);
      return v;
    };
    const flag = () => {
      if (inline !== undefined) throw new UsageError(`${a} takes no value`);
    };
    switch (a) {
      case "--list": flag(); list = true; break;
      case "--json": flag(); json = true; break;
      case "--yes": case "-y": flag(); req.yes = true; break;
      case "--unmount": flag(); req.unmount = true; break;
      case "--allow-fixed": flag(); req.allowFixed = true; break;
      case "--no-bmap": case "--nobmap": flag(); req.noBmap = true; break;
      case "--bmap": req.bmap = value(); break;
      case "--dry-run": flag(); req.dryRun = true; break;
      case "--hostname": req.settings.hostname = value(); break;
      case "--ssh-key": req.settings.sshKeyFile = value(); break;
      case "--wifi": req.settings.wifiSsid = value(); break;
      case "--wifi-psk-file": req.settings.wifiPskFile = value(); break;
      case "--wifi-psk-stdin": flag(); req.settings.wifiPskStdin = true; break;
      case "--static-ip": req.settings.staticIp = value(); break;
      case "--units": req.settings.unitsDir = value(); break;
      case "--policy": req.settings.policyFile = value(); break;
      case "--timezone": req.settings.timezone = value(); break;
      case "--":
        rest.push(...args.slice(i + 1));
        i = args.length;
        break;
      default:
        if (a.startsWith("-") && a !== "-") throw new UsageError(`unknown option ${a} ('paio flash --help' lists them)`);
        rest.push(a);
    }
  }
  const s = req.settings;
  if (s.wifiPskFile && s.wifiPskStdin) throw new UsageError("--wifi-psk-file and --wifi-psk-stdin: give one");
  if ((s.wifiPskFile || s.wifiPskStdin) && !s.wifiSsid) throw new UsageError("a Wi-Fi passphrase needs --wifi SSID");
  if (req.bmap && req.noBmap) throw new UsageError("--bmap and --no-bmap: give one");
  if (list) {
    if (rest.length) throw new UsageError(`--list takes no IMAGE or TARGET (got ${rest.join(" ")})`);
    return { list, json, req };
  }
  if (json) throw new UsageError("--json goes with --list");
  if (rest.length !== 2) throw new UsageError(rest.length < 2 ? "paio flash needs IMAGE and TARGET" : `too many arguments: ${rest.join(" ")}`);
  req.image = rest[0]!;
  req.target = rest[1]!;
  return { list, json, req };
}

/** The drive list, as a table or JSON. */
export function listCommand(json: boolean): number {
  const drives = listDrives(readHost());
  if (json) {
    console.log(JSON.stringify(drives, null, 2));
    return 0;
  }
  if (!drives.length) {
    console.log("no drives found (lsblk lists no whole disks here)");
    return 0;
  }
  console.log(table(
    ["DEVICE", "SIZE", "MODEL", "BUS", "REMOVABLE", "RO", "MOUNTED", "NOTE"],
    drives.map((d) => [
      d.path, d.size ? human(d.size) : "no medium", d.model, d.bus, d.removable ? "yes" : "no", d.readOnly ? "yes" : "no",
      d.mounted.map((m) => m.mountpoint).join(",") || "-", d.note ?? "can be written",
    ]),
  ));
  const sys = drives.filter((d) => d.system);
  for (const d of sys) console.log(`${d.path} runs this computer: ${d.system}`);
  return 0;
}

/** Progress on stderr: one redrawn line on a terminal, a line every quarter otherwise. */
function progressView(): Ui["progress"] {
  const tty = process.stderr.isTTY === true;
  let phase = "";
  let started = 0;
  let lastDraw = 0;
  let lastQuarter = -1;
  let finished = false;
  return (what, done, total) => {
    const now = performance.now();
    if (what !== phase) {
      phase = what;
      started = now;
      lastDraw = 0;
      lastQuarter = -1;
      finished = false;
    }
    if (finished) return;
    const end = done >= total;
    const line = progressLine({ what, done, total, elapsed: (now - started) / 1000 });
    if (tty) {
      if (!end && now - lastDraw < 100) return;
      lastDraw = now;
      process.stderr.write(`\r\x1b[K${line}${end ? "\n" : ""}`);
    } else {
      const q = Math.floor((total ? done / total : 1) * 4);
      if (q === lastQuarter) return;
      lastQuarter = q;
      process.stderr.write(`${line}\n`);
    }
    if (end) finished = true;
  };
}

/** Reads one answer from the terminal (or from stdin when it is not the Wi-Fi passphrase). */
async function ask(prompt: string, stdinTaken: boolean): Promise<string | undefined> {
  let input: NodeJS.ReadableStream;
  if (!stdinTaken) input = process.stdin;
  else {
    try {
      input = createReadStream("/dev/tty");
    } catch {
      return undefined;
    }
  }
  const rl = createInterface({ input, output: process.stderr, terminal: false });
  process.stderr.write(prompt);
  try {
    const answer = await new Promise<string | undefined>((resolve) => {
      rl.once("line", (l) => resolve(l));
      rl.once("close", () => resolve(undefined));
      input.once?.("error", () => resolve(undefined));
    });
    // A piped answer is not echoed: end the prompt's line.
    if (!stdinTaken && !process.stdin.isTTY) process.stderr.write("\n");
    return answer?.trim();
  } finally {
    rl.close();
    if (stdinTaken) (input as unknown as { destroy?: () => void }).destroy?.();
    else process.stdin.pause();
  }
}

export async function flashMain(args: string[]): Promise<number> {
  let parsed: Parsed;
  if (args.includes("--help") || args.includes("-h") || args[0] === "help") {
    console.log(FLASH_USAGE);
    return 0;
  }
  try {
    parsed = parseFlashArgs(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    say(`paio flash: ${e.message}\n${FLASH_USAGE}`);
    return 2;
  }
  try {
    if (parsed.list) return listCommand(parsed.json);
    const req = parsed.req;
    const ui: Ui = {
      say,
      progress: progressView(),
      confirm: async (prompt, accepted) => {
        const answer = await ask(prompt, req.settings.wifiPskStdin === true);
        if (answer === undefined) say("\nno answer (no terminal to ask on): add --yes to flash without asking");
        return answer !== undefined && accepted.includes(answer);
      },
    };
    const r = await flash(req, ui);
    if (r.dryRun) return 0;
    const v = r.verify!;
    const rate = (bytes: number, s: number) => (s > 0 ? `, ${human(bytes / s)}/s` : "");
    say(`written: ${human(r.image.written)}${r.image.bmap ? ` (the mapped part of ${human(r.image.size)})` : ""} in ${r.writeSeconds.toFixed(1)} s${rate(r.image.written, r.writeSeconds)}`);
    say(r.image.bmap
      ? `verified: read ${v.ranges} range${v.ranges === 1 ? "" : "s"} (${human(v.bytes)}) back from ${req.target} in ${v.seconds.toFixed(1)} s: every ${r.image.bmap.checksumType} matches the bmap`
      : `verified: read ${human(v.bytes)} back from ${req.target} in ${v.seconds.toFixed(1)} s: identical to the image`);
    for (const l of r.settings) say(l);
    if (r.allocated !== undefined) say(`done: ${req.target} holds the image (${human(r.allocated)} allocated on disk of ${human(r.image.size)})`);
    else say(`done: ${req.target} is written, verified and synced; it can be removed`);
    return 0;
  } catch (e) {
    if (e instanceof FlashRefused) {
      for (const r of e.refusals) say(`paio flash: refused: ${r.reason}\n  what to do: ${r.remedy}`);
      say("paio flash: nothing was written");
      return 1;
    }
    if (e instanceof WriteError || e instanceof VerifyError) {
      say(`paio flash: failed: ${e.message}\n  what to do: ${e.remedy}`);
      return 1;
    }
    if (e instanceof HostError || e instanceof LayoutError) {
      say(`paio flash: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

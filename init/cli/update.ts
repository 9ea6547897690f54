// `paio update status|install|rollback` (docs/updates.md), and the bootloader
// backend RAUC runs (`paio update rauc-backend ...`, through /usr/libexec/paio/rauc-backend).

import { backendMain } from "../update/rauc-backend.ts";
import { installUpdate } from "../update/install.ts";
import { requestRollback } from "../update/rollback.ts";
import { formatStatus, updateStatus } from "../update/status.ts";

export const UPDATE_USAGE = `  update status          the two system slots: versions, which runs, which boots next, the last update
  update install FILE|URL [--allow-downgrade] [--reboot]
                         install a signed bundle (.raucb) into the other slot; it runs after a reboot, on trial
  update rollback [--yes] [--no-reboot]
                         boot the previous version again (asks first; reboots unless --no-reboot)`;

function reboot(): void {
  // PID 1 stops every unit in order, unmounts the data partition and reboots.
  process.kill(1, "SIGTERM");
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  process.stdout.write(`${question} [y/N] `);
  for await (const line of console) return /^y(es)?$/i.test(String(line).trim());
  return false;
}

export async function updateCommand(cmd: string, rest: string[], json: boolean): Promise<number | undefined> {
  if (cmd !== "update") return undefined;
  const [sub, ...args] = rest;
  const flag = (f: string) => args.includes(f);
  try {
    switch (sub) {
      case "rauc-backend":
        return backendMain(args);
      case "status":
      case undefined: {
        const s = updateStatus();
        console.log(json ? JSON.stringify(s) : formatStatus(s));
        return s.supported ? 0 : 1;
      }
      case "install": {
        const source = args.find((a) => !a.startsWith("--"));
        if (!source) {
          console.error(`paio: 'update install' needs a bundle file or URL\n${UPDATE_USAGE}`);
          return 2;
        }
        let shown = -1;
        const r = await installUpdate(source, {
          allowDowngrade: flag("--allow-downgrade"),
          progress: json ? undefined : (p, what) => {
            if (p === shown) return;
            shown = p;
            console.log(`${String(p).padStart(3)}% ${what}`);
          },
        });
        if (json) console.log(JSON.stringify(r));
        else if (r.ok) console.log(`installed version ${r.version} into slot ${r.slot} in ${r.seconds.toFixed(1)} s; it runs after the next reboot, on trial: if it is not healthy it goes back to this version by itself`);
        else console.error(`paio: update not installed: ${r.reason}`);
        if (r.ok && flag("--reboot")) reboot();
        return r.ok ? 0 : 1;
      }
      case "rollback": {
        const s = updateStatus();
        if (!s.supported) {
          console.error(`paio: ${s.reason}`);
          return 1;
        }
        const other = s.slots.find((x) => !x.booted);
        if (!flag("--yes")) {
          const ok = await confirm(`Go back from version ${s.version} to version ${other?.version ?? "?"} (slot ${other?.name ?? "?"})${flag("--no-reboot") ? "" : "? The device reboots now"}.`);
          if (!ok) {
            console.error("paio: nothing changed (confirm at a terminal, or add --yes)");
            return 4;
          }
        }
        const r = requestRollback();
        if (json) console.log(JSON.stringify(r));
        else if (r.ok) console.log(`slot ${r.to} (version ${r.version}) boots next${flag("--no-reboot") ? "; reboot to run it" : "; rebooting"}`);
        else console.error(`paio: no rollback: ${r.reason}`);
        if (r.ok && !flag("--no-reboot")) reboot();
        return r.ok ? 0 : 1;
      }
      default:
        console.error(`paio: unknown update command '${sub}'\n${UPDATE_USAGE}`);
        return 2;
    }
  } catch (e) {
    console.error(`paio: ${(e as Error).message}`);
    return 1;
  }
}

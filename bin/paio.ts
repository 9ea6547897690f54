// `paio` on the host: commands that work from the repository.
import { qemuMain } from "../qemu/cli.ts";

const USAGE = `usage: paio <command>
  qemu run   [--snapshot] [--direct] [--image FILE]   boot the image with the console here
  qemu exec  [--snapshot] [--uefi] [--image FILE] SCRIPT
                                                   boot headless, run SCRIPT in the guest, power off
  qemu probe                                       say which accelerator QEMU will use`;

const [cmd, ...rest] = process.argv.slice(2);
let code: number;
switch (cmd) {
  case "qemu":
    code = await qemuMain(rest);
    break;
  case undefined:
  case "help":
  case "--help":
    console.log(USAGE);
    code = cmd === undefined ? 2 : 0;
    break;
  default:
    console.error(`paio: unknown command '${cmd}'\n${USAGE}`);
    code = 2;
}
process.exit(code);

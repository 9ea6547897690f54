// `paio` on the host: commands that work from the repository.
import { qemuMain, sshMain } from "../qemu/cli.ts";
import { ASK_USAGE, askCommand } from "../agents/cli/ask.ts";
import { flashMain } from "../flash/cli.ts";

const USAGE = `usage: paio <command>
  qemu run   [--arch x86_64|arm64] [--board pc|virt|rpi3] [--snapshot] [--direct] [--image FILE]
                                                   boot the image with the console here
  qemu exec  [--arch ...] [--board ...] [--snapshot] [--uefi] [--image FILE] [--put HOST:GUEST] SCRIPT
                                                   boot headless, run SCRIPT in the guest, power off
  qemu probe [--arch ...] [--board ...]            say which accelerator QEMU will use
  qemu help                                        every option of 'paio qemu'
  ssh [--port N] [COMMAND...]                      log into the guest 'qemu run' started (key in out/ssh/)
  flash [options] IMAGE TARGET                     write the image to an SD card, a USB drive or a file, checked
  flash --list                                     the drives here, and which could be written ('flash --help')
${ASK_USAGE}
      on the host: --dry-run --units camera,nginx "restart camra" shows what the request means (--json for scripts)`;

const [cmd, ...rest] = process.argv.slice(2);
let code: number;
switch (cmd) {
  case "qemu":
    code = await qemuMain(rest);
    break;
  case "ssh":
    code = await sshMain(rest);
    break;
  case "ask":
    code = await askCommand(rest, false);
    break;
  case "flash":
    code = await flashMain(rest);
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

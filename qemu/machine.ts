// The QEMU command line for a PAIO guest: q35, virtio disk, serial console,
// optionally UEFI firmware (OVMF) or direct kernel boot, and the virtio-serial
// port that `paio qemu exec` talks through.

import { closeSync, copyFileSync, existsSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import type { Accel } from "./accel.ts";
import { netArgs, type Forward } from "./net.ts";

export const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
export const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";
export const EXEC_PORT_NAME = "org.paio.exec";

export interface MachineOptions {
  accel: Accel;
  /** Disk image (raw or qcow2, detected by its header). */
  disk: string;
  /** uefi: firmware + systemd-boot from the disk; direct: QEMU loads kernel and initramfs. */
  boot: "uefi" | "direct";
  /** Writes go to a throwaway overlay. */
  snapshot: boolean;
  memoryMb: number;
  cpus: number;
  /** For direct boot. */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** Writable copy of OVMF's variable store (UEFI boot). */
  varsFile?: string;
  /** Unix socket for the exec port (QEMU listens). */
  execSocket?: string;
  /** "stdio" for an interactive console (with QEMU's monitor on Ctrl-A c), "pipe" for a harness. */
  console: "stdio" | "pipe";
  /** Exit QEMU instead of rebooting the guest. */
  noReboot: boolean;
  /** Emulate an i6300esb hardware watchdog that resets the machine when it expires. */
  watchdog?: boolean;
  /** Host ports on 127.0.0.1 forwarded to the guest (user networking, restrict=on). */
  forwards?: Forward[];
  /** A public key file handed to the guest's ssh unit through fw_cfg. */
  sshKeyFile?: string;
  /** Unix socket for QEMU's human monitor (set_link, info network), for tests. */
  monitorSocket?: string;
}

function diskFormat(path: string): "qcow2" | "raw" {
  const fd = openSync(path, "r");
  const head = Buffer.alloc(4);
  readSync(fd, head, 0, 4, 0);
  closeSync(fd);
  return head.toString("latin1") === "QFI\xfb" ? "qcow2" : "raw";
}

/** Creates the writable OVMF variable store if it does not exist yet. */
export function ensureVars(varsFile: string): void {
  if (!existsSync(varsFile)) copyFileSync(OVMF_VARS, varsFile);
}

export function qemuArgs(o: MachineOptions): string[] {
  const args = [
    "qemu-system-x86_64",
    "-nodefaults",
    "-no-user-config",
    "-machine", `q35,accel=${o.accel}`,
    // Bun's x64 build needs AVX2 and more; "max" gives every feature the accelerator has.
    "-cpu", o.accel === "kvm" ? "host" : "max",
    "-smp", String(o.cpus),
    "-m", String(o.memoryMb),
    "-display", "none",
    "-vga", "none",
    "-serial", o.console === "stdio" ? "mon:stdio" : "stdio",
    "-drive", `file=${o.disk},format=${diskFormat(o.disk)},if=virtio,cache=unsafe,discard=unmap`,
    "-device", "virtio-rng-pci",
  ];
  args.push(...netArgs(o.forwards ?? [], o.sshKeyFile));
  if (o.monitorSocket) args.push("-monitor", `unix:${o.monitorSocket},server=on,wait=off`);
  if (o.snapshot) args.push("-snapshot");
  if (o.noReboot) args.push("-no-reboot");
  if (o.watchdog) args.push("-device", "i6300esb", "-action", "watchdog=reset");
  if (o.boot === "uefi") {
    if (!o.varsFile) throw new Error("UEFI boot needs a variable store file");
    args.push(
      "-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      "-drive", `if=pflash,format=raw,unit=1,file=${o.varsFile}`,
    );
  } else {
    if (!o.kernel || !o.initrd || !o.cmdline) throw new Error("direct boot needs kernel, initrd and cmdline");
    args.push("-kernel", o.kernel, "-initrd", o.initrd, "-append", o.cmdline);
  }
  if (o.execSocket) {
    args.push(
      "-device", "virtio-serial-pci,id=vser0",
      "-chardev", `socket,id=paioexec,path=${o.execSocket},server=on,wait=off`,
      "-device", `virtserialport,bus=vser0.0,chardev=paioexec,name=${EXEC_PORT_NAME}`,
    );
  }
  return args;
}

/** The kernel command line the image was built with (out/cmdline.txt), for direct boot. */
export function imageCmdline(outDir: string): string {
  return readFileSync(join(outDir, "cmdline.txt"), "utf8").trim();
}

// The QEMU command line for a PAIO guest, per board:
//   pc    qemu-system-x86_64 q35: virtio disk, serial console, OVMF or direct
//         kernel boot, the virtio-serial port `paio qemu exec` talks through;
//   virt  qemu-system-aarch64 virt: the same devices on virt's PCI, AAVMF or
//         direct kernel boot, the PL011 as the serial console (ttyAMA0);
//   rpi3  qemu-system-aarch64 raspi3b: the SD card image, the kernel, device
//         tree and initramfs its boot partition names (read by the runner, as
//         the Pi firmware would); the first UART (PL011, ttyAMA0) carries the
//         exec protocol, the second (the mini UART, ttyS1) is the console.
//         No network and no PCI: no virtio devices at all.

import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Accel } from "./accel.ts";
import { netArgs, type Forward, type GuestForward } from "./net.ts";
import { TargetError, type Arch, type Target } from "./target.ts";

export const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
export const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";
export const AAVMF_CODE = "/usr/share/AAVMF/AAVMF_CODE.fd";
export const AAVMF_VARS = "/usr/share/AAVMF/AAVMF_VARS.fd";
export const EXEC_PORT_NAME = "org.paio.exec";
/** Where the Pi's guest finds the exec protocol (the runner puts it on the command line). */
export const RPI_EXEC_TTY = "/dev/ttyAMA0";
/**
 * Kernel arguments every raspi3b guest gets. QEMU 7.2's model of the SoC's
 * watchdog has no countdown: arming it (what bcm2835-wdt does when opened)
 * resets the machine at once. So under QEMU the supervisor leaves it alone;
 * the device is still there (a real Pi's is fed as on x86).
 */
export const RPI_QEMU_CMDLINE = ["paio.watchdog=off"];

/** UEFI firmware per architecture: code (read-only) and the template of the variable store. */
export const FIRMWARE: Record<Arch, { code: string; vars: string; varsName: string }> = {
  x86_64: { code: OVMF_CODE, vars: OVMF_VARS, varsName: "OVMF_VARS.fd" },
  arm64: { code: AAVMF_CODE, vars: AAVMF_VARS, varsName: "AAVMF_VARS.fd" },
};

const X86: Target = { arch: "x86_64", board: "pc" };

export interface MachineOptions {
  /** Architecture and board; x86_64 (q35) when omitted. */
  target?: Target;
  accel: Accel;
  /** QEMU's -cpu; the board's default when omitted (host under KVM; max on x86_64 TCG, cortex-a72 on virt, cortex-a53 on the Pi). */
  cpuModel?: string;
  /** Disk image (raw or qcow2, detected by its header). */
  disk: string;
  /** uefi: firmware + boot loader from the disk; direct: QEMU loads kernel and initramfs. The Pi is always "direct" from its SD card's files. */
  boot: "uefi" | "direct";
  /** Writes go to a throwaway overlay. */
  snapshot: boolean;
  memoryMb: number;
  cpus: number;
  /** For direct boot (and the Pi). */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** The Pi's device tree. */
  dtb?: string;
  /** Writable copy of the firmware's variable store (UEFI boot). */
  varsFile?: string;
  /** Unix socket for the exec port (QEMU listens). */
  execSocket?: string;
  /** "stdio" for an interactive console (with QEMU's monitor on Ctrl-A c), "pipe" for a harness. */
  console: "stdio" | "pipe";
  /** Exit QEMU instead of rebooting the guest. */
  noReboot: boolean;
  /** Emulate an i6300esb hardware watchdog that resets the machine when it expires (PCI: not on the Pi). */
  watchdog?: boolean;
  /** Host ports on 127.0.0.1 forwarded to the guest (user networking, restrict=on; not on the Pi). */
  forwards?: Forward[];
  /** Host services the guest reaches inside the user network (net.ts GuestForward). */
  guestForwards?: GuestForward[];
  /** A public key file handed to the guest's ssh unit through fw_cfg (not on the Pi). */
  sshKeyFile?: string;
  /** Unix socket for QEMU's human monitor (set_link, info network), for tests. */
  monitorSocket?: string;
}

export function diskFormat(path: string): "qcow2" | "raw" {
  const fd = openSync(path, "r");
  const head = Buffer.alloc(4);
  readSync(fd, head, 0, 4, 0);
  closeSync(fd);
  return head.toString("latin1") === "QFI\xfb" ? "qcow2" : "raw";
}

/** Creates the writable UEFI variable store (OVMF's or AAVMF's template) if it does not exist yet. */
export function ensureVars(varsFile: string, arch: Arch = "x86_64"): void {
  if (existsSync(varsFile)) return;
  const fw = FIRMWARE[arch];
  for (const f of [fw.code, fw.vars]) {
    if (!existsSync(f)) throw new TargetError(`${f} is missing: ${arch} UEFI boot needs Debian's ${arch === "x86_64" ? "ovmf" : "qemu-efi-aarch64"} package ('make deps')`);
  }
  mkdirSync(dirname(varsFile), { recursive: true });
  copyFileSync(fw.vars, varsFile);
}

function cpuFor(o: MachineOptions, t: Target): string {
  if (o.cpuModel) return o.cpuModel;
  if (t.board === "rpi3") return "cortex-a53";
  if (o.accel === "kvm") return "host";
  // x86_64: Bun's x64 build needs AVX2 and more; "max" gives every feature TCG has.
  // arm64: a plain ARMv8.0 core, as on a Raspberry Pi: Bun must not rely on more.
  return t.arch === "x86_64" ? "max" : "cortex-a72";
}

export function qemuArgs(o: MachineOptions): string[] {
  const t = o.target ?? X86;
  if (t.board === "rpi3") return rpiArgs(o);
  const machine = t.arch === "x86_64" ? `q35,accel=${o.accel}` : `virt,accel=${o.accel}${o.accel === "kvm" ? ",gic-version=max" : ""}`;
  const args = [
    t.arch === "x86_64" ? "qemu-system-x86_64" : "qemu-system-aarch64",
    "-nodefaults",
    "-no-user-config",
    "-machine", machine,
    "-cpu", cpuFor(o, t),
    "-smp", String(o.cpus),
    "-m", String(o.memoryMb),
    "-display", "none",
  ];
  if (t.arch === "x86_64") args.push("-vga", "none");
  args.push("-serial", o.console === "stdio" ? "mon:stdio" : "stdio");
  const drive = `file=${o.disk},format=${diskFormat(o.disk)},cache=unsafe,discard=unmap`;
  if (t.arch === "x86_64") args.push("-drive", `${drive},if=virtio`);
  else args.push("-drive", `${drive},if=none,id=disk0`, "-device", "virtio-blk-pci,drive=disk0");
  args.push("-device", "virtio-rng-pci");
  args.push(...netArgs(o.forwards ?? [], o.sshKeyFile, o.guestForwards));
  if (o.monitorSocket) args.push("-monitor", `unix:${o.monitorSocket},server=on,wait=off`);
  if (o.snapshot) args.push("-snapshot");
  if (o.noReboot) args.push("-no-reboot");
  if (o.watchdog) args.push("-device", "i6300esb", "-action", "watchdog=reset");
  if (o.boot === "uefi") {
    if (!o.varsFile) throw new Error("UEFI boot needs a variable store file");
    args.push(
      "-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${FIRMWARE[t.arch].code}`,
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

/** raspi3b: the kernel, device tree and initramfs from the SD card, two UARTs, no network. */
function rpiArgs(o: MachineOptions): string[] {
  if (!o.kernel || !o.dtb || !o.cmdline) throw new Error("the Pi needs a kernel, a device tree and a command line");
  if (o.forwards?.length || o.sshKeyFile) throw new Error("the Pi board has no network under QEMU: no forwarded ports, no SSH key");
  if (o.watchdog) throw new Error("the Pi board has no PCI for an i6300esb watchdog");
  const args = [
    "qemu-system-aarch64",
    "-nodefaults",
    "-no-user-config",
    "-machine", `raspi3b,accel=${o.accel}`,
    "-cpu", cpuFor(o, { arch: "arm64", board: "rpi3" }),
    "-smp", String(o.cpus),
    "-m", String(o.memoryMb),
    "-display", "none",
    "-kernel", o.kernel,
    "-dtb", o.dtb,
    "-append", o.cmdline,
  ];
  if (o.initrd) args.push("-initrd", o.initrd);
  // raspi3b wires the first -serial to the PL011 (ttyAMA0), the second to the mini UART (ttyS1).
  if (o.execSocket) args.push("-chardev", `socket,id=paioexec,path=${o.execSocket},server=on,wait=off`, "-serial", "chardev:paioexec");
  else args.push("-serial", "null");
  args.push("-serial", o.console === "stdio" ? "mon:stdio" : "stdio");
  args.push("-drive", `file=${o.disk},format=${diskFormat(o.disk)},if=sd,cache=unsafe`);
  if (o.monitorSocket) args.push("-monitor", `unix:${o.monitorSocket},server=on,wait=off`);
  if (o.snapshot) args.push("-snapshot");
  if (o.noReboot) args.push("-no-reboot");
  return args;
}

/** The kernel command line the image was built with (cmdline.txt beside vmlinuz), for direct boot. */
export function imageCmdline(outDir: string): string {
  return readFileSync(join(outDir, "cmdline.txt"), "utf8").trim();
}

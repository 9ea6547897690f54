// The guest's network under QEMU: one virtio NIC on user networking with
// restrict=on (nothing leaves QEMU: the guest reaches neither the host nor
// the outside), host ports bound to 127.0.0.1 forwarded to guest ports, and
// the host's SSH key handed over through fw_cfg for `paio ssh`.

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface Forward {
  hostPort: number;
  guestPort: number;
  proto: "tcp" | "udp";
}

/** The fw_cfg name under which the guest's ssh unit finds the host's key. */
export const FWCFG_SSH_KEY = "opt/org.paio/ssh_authorized_key";
export const NETDEV_ID = "net0";

/**
 * A service on the host (127.0.0.1:hostPort) that the guest reaches at
 * guestAddr:guestPort, an address inside QEMU's user network (10.0.2.0/24).
 * QEMU runs `busybox nc 127.0.0.1 hostPort` for each connection the guest
 * opens (a chardev target would be one stream for the whole run, so only
 * the first connection would work); restrict=on still holds for everything
 * else. Tests serve update bundles this way.
 */
export interface GuestForward {
  guestAddr: string;
  guestPort: number;
  hostPort: number;
}

export function netArgs(forwards: Forward[], sshKeyFile?: string, guestForwards: GuestForward[] = []): string[] {
  const fwd = forwards.map((f) => `,hostfwd=${f.proto}:127.0.0.1:${f.hostPort}-:${f.guestPort}`).join("") +
    guestForwards.map((g) => `,guestfwd=tcp:${g.guestAddr}:${g.guestPort}-cmd:busybox nc 127.0.0.1 ${g.hostPort}`).join("");
  const args = ["-netdev", `user,id=${NETDEV_ID},restrict=on${fwd}`, "-device", `virtio-net-pci,netdev=${NETDEV_ID}`];
  if (sshKeyFile) args.push("-fw_cfg", `name=${FWCFG_SSH_KEY},file=${sshKeyFile}`);
  return args;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** The project's SSH key for guests (out/ssh/id_ed25519), made with ssh-keygen the first time. */
export function guestKey(outDir: string): { privateKey: string; publicKey: string } {
  const dir = join(outDir, "ssh");
  const privateKey = join(dir, "id_ed25519");
  if (!existsSync(privateKey)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const r = Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "paio-dev", "-f", privateKey], { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`ssh-keygen failed: ${r.stderr.toString().trim()} (is openssh-client installed? 'make deps')`);
  }
  return { privateKey, publicKey: `${privateKey}.pub` };
}

/** The port the running `paio qemu run` forwards to the guest's SSH server. */
export function sshPortFile(outDir: string): string {
  return join(outDir, "ssh", "port");
}

export function readSshPort(outDir: string): number | undefined {
  try {
    const n = Number(readFileSync(sshPortFile(outDir), "utf8").trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** ssh's command line for logging into a guest as root with the project's key. */
export function sshArgv(outDir: string, port: number, command: string[] = []): string[] {
  const { privateKey } = guestKey(outDir);
  return [
    "ssh", "-i", privateKey, "-p", String(port),
    // Every guest makes its own host key on first boot: there is nothing to pin on 127.0.0.1.
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
    "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
    "root@127.0.0.1", ...command,
  ];
}

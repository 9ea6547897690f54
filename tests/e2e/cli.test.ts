// `bin/paio qemu exec` as a user runs it: output, exit status, clean-up.
import { expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO, requireBuiltImage } from "../helpers/guest.ts";

function qemuProcesses(): number {
  const r = Bun.spawnSync(["pgrep", "-c", "-f", "qemu-system-x86_64.*paio-qemu-"], { stdout: "pipe" });
  return Number(r.stdout.toString().trim() || "0");
}

test("paio qemu exec --snapshot runs a script in the guest and exits with its status", async () => {
  requireBuiltImage();
  const dir = mkdtempSync(join(tmpdir(), "paio-cli-"));
  const script = join(dir, "check.sh");
  writeFileSync(script, 'echo "hello from $(cat /etc/hostname) as $(id -u)"\necho to-stderr >&2\nexit 7\n');
  const before = qemuProcesses();
  const proc = Bun.spawn([join(REPO, "bin/paio"), "qemu", "exec", "--snapshot", script], { stdout: "pipe", stderr: "pipe" });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  rmSync(dir, { recursive: true, force: true });
  expect(code, stderr).toBe(7);
  expect(stdout).toContain("hello from paio as 0");
  expect(stdout).toContain("to-stderr");
  expect(qemuProcesses()).toBe(before);
}, 600_000);

test("paio qemu exec fails clearly on a missing script", async () => {
  const proc = Bun.spawn([join(REPO, "bin/paio"), "qemu", "exec", "--snapshot", "/nonexistent/script.sh"], { stdout: "pipe", stderr: "pipe" });
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  expect(code).toBe(2);
  expect(stderr).toContain("/nonexistent/script.sh: no such file");
});

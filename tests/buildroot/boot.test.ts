// `make test-buildroot`: the image the offline Buildroot build made boots
// through UEFI firmware to a running supervisor, with PAIO's PID 1, the demo
// unit and the patched kernel's hooks; and it ships the same PAIO files as
// the offline assembler's image.
import { expect, test } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compareManifests } from "../../distro/offline/manifest.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const IMAGE = join(REPO, "out/buildroot/paio-x86_64.img");

function requireImage(): void {
  if (!existsSync(IMAGE)) throw new Error(`${IMAGE} is missing: run 'make buildroot' (with BUILDROOT_DIR set) first, or 'make test-buildroot'`);
}

test("the Buildroot image boots to the supervisor with PAIO's PID 1, the demo unit and the kernel hooks", async () => {
  requireImage();
  const dir = mkdtempSync(join(tmpdir(), "paio-br-boot-"));
  const script = join(dir, "check.sh");
  writeFileSync(script, [
    "readlink /proc/1/exe",
    "grep -q 'paio-init: must run as PID 1' /proc/1/exe && echo pid1-ours",
    "sleep 2; test -s /run/paio/demo.heartbeat && echo demo-heartbeat",
    "/usr/bin/paio status demo",
    "ls /sys/fs/cgroup/*/cpu.latency.nice | head -n 1",
    "cat /etc/paio/release",
    "awk '$2 == \"/\" {print \"root:\", $3, $4}' /proc/mounts",
    "uname -r",
  ].join("\n") + "\n");
  const proc = Bun.spawn([join(REPO, "bin/paio"), "qemu", "exec", "--snapshot", "--image", IMAGE, "--console-log", join(dir, "console.log"), script], { stdout: "pipe", stderr: "pipe" });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const consoleLog = existsSync(join(dir, "console.log")) ? readFileSync(join(dir, "console.log"), "utf8") : "";
  rmSync(dir, { recursive: true, force: true });
  console.log(stdout);
  expect(code, `${stderr}\n${consoleLog.split("\n").slice(-30).join("\n")}`).toBe(0);
  expect(consoleLog).toContain("paio: supervisor ready");
  expect(stdout).toContain("/usr/sbin/init");
  expect(stdout).toContain("pid1-ours");
  expect(stdout).toContain("demo-heartbeat");
  expect(stdout).toMatch(/demo.*running/);
  expect(stdout).toMatch(/\/sys\/fs\/cgroup\/.+\/cpu\.latency\.nice/);
  expect(stdout).toMatch(/^root: squashfs ro/m);
}, 900_000);

test("the Buildroot image ships the same overlay and app as the assembler's image", () => {
  requireImage();
  const assembler = join(REPO, "out/manifest.tsv");
  if (!existsSync(assembler)) throw new Error(`${assembler} is missing: run 'make image'`);
  const c = compareManifests(readFileSync(assembler, "utf8"), readFileSync(join(REPO, "out/buildroot/manifest.tsv"), "utf8"));
  console.log(c.report);
  expect(c.paioDiffer).toEqual([]);
  expect(c.paioSame).toBeGreaterThan(20);
});

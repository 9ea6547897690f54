// The kernel series against Debian's linux-source-6.1: it applies cleanly,
// the fragment parses, and the post-configuration check names an option
// that did not land.
import { beforeAll, describe, expect, test } from "vitest";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { checkFragment, parseFragment } from "../../kernel-patches/fragment.ts";

const REPO = join(import.meta.dirname, "../..");
const PATCHES = join(REPO, "kernel-patches");
const TARBALL = "/usr/src/linux-source-6.1.tar.xz";
/** The pristine files the series touches, unpacked once and kept outside the clone. */
const PRISTINE = join(process.env.PAIO_CACHE ?? join(homedir(), ".cache", "paio"), "kernel", "pristine-sched");

const series = () => readdirSync(PATCHES).filter((f) => /^\d{4}-.*\.patch$/.test(f)).sort();

/** Every file the series touches, from the patches' own headers. */
const touched = () => [...new Set(series().flatMap((p) => [...readFileSync(join(PATCHES, p), "utf8").matchAll(/^diff --git a\/(\S+) /gm)].map((m) => m[1]!)))].sort();

beforeAll(() => {
  const files = touched();
  if (files.every((f) => existsSync(join(PRISTINE, f)))) return;
  if (!existsSync(TARBALL)) throw new Error(`${TARBALL} is missing: run 'make deps' (it installs linux-source-6.1)`);
  const tmp = `${PRISTINE}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const r = Bun.spawnSync(["tar", "-xf", TARBALL, "-C", tmp, "--strip-components=1", ...files.map((f) => `linux-source-6.1/${f}`)], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  rmSync(PRISTINE, { recursive: true, force: true });
  renameSync(tmp, PRISTINE);
}, 180_000);

describe("kernel patches", () => {
  test("the series is two patches that apply cleanly, in order, to linux-source-6.1", () => {
    expect(series()).toHaveLength(2);
    const work = `${PRISTINE}-check`;
    rmSync(work, { recursive: true, force: true });
    Bun.spawnSync(["cp", "-a", PRISTINE, work]);
    for (const p of series()) {
      const dry = Bun.spawnSync(["patch", "-p1", "--dry-run", "--forward", "--batch", "-i", join(PATCHES, p)], { cwd: work, stdout: "pipe", stderr: "pipe" });
      expect(dry.exitCode, `${p}: ${dry.stdout}${dry.stderr}`).toBe(0);
      expect(dry.stdout.toString(), p).not.toMatch(/offset|fuzz/i);
      Bun.spawnSync(["patch", "-p1", "--forward", "--batch", "-i", join(PATCHES, p)], { cwd: work });
    }
    const core = readFileSync(join(work, "kernel/sched/core.c"), "utf8");
    expect(core).toContain('.name = "latency.nice"');
    expect(core).toContain('.name = "wait.stat"');
    rmSync(work, { recursive: true, force: true });
  });

  test("each patch says what it does, in a commit message a kernel reviewer would read", () => {
    for (const p of series()) {
      const text = readFileSync(join(PATCHES, p), "utf8");
      expect(text).toMatch(/^From 0{40} /);
      expect(text).toMatch(/^Subject: \[PATCH \d\/2\] sched/m);
      expect(text.split("\n---\n")[0]!.length).toBeGreaterThan(600);
    }
  });

  test("the fragment parses, and an option that did not land is named", () => {
    const frag = parseFragment(readFileSync(join(PATCHES, "paio.config"), "utf8"));
    for (const k of ["CONFIG_PSI", "CONFIG_CFS_BANDWIDTH", "CONFIG_SCHEDSTATS", "CONFIG_SQUASHFS", "CONFIG_VIRTIO_BLK", "CONFIG_I6300ESB_WDT", "CONFIG_CGROUP_SCHED"]) expect(frag.get(k), k).toBe("y");
    const final = [...frag].filter(([k]) => k !== "CONFIG_PSI").map(([k, v]) => `${k}=${v}`).join("\n") + "\n# CONFIG_PSI is not set\n";
    expect(checkFragment(frag, final)).toEqual(["CONFIG_PSI=y (final: not set)"]);
    expect(checkFragment(frag, final + "CONFIG_PSI=y\n")).toEqual([]);
    expect(() => parseFragment("CONFIG_OK=y\nnonsense\n")).toThrow(/not a config line: 'nonsense'/);
  });
});

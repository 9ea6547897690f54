// Writing and proving with `paio flash` (flash/): a small PAIO-shaped image
// (tests/flash/synthetic.ts) flashed to file targets, raw, .xz and .zst;
// what stays sparse, what is read back, and the inputs that must be refused
// before anything is written or caught while writing.

import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BmapError, findBmap, mappedBytes, parseBmap } from "../../flash/bmap.ts";
import { progressLine, human, clock } from "../../flash/format.ts";
import { bmaptoolError, verifyRanges, VerifyError } from "../../flash/write.ts";
import { parseFlashArgs } from "../../flash/cli.ts";
import { flipByte, paioFlash, rangeDigests, readBmap, sh, syntheticImage, MiB, type Synthetic } from "../flash/synthetic.ts";

const REPO = join(import.meta.dirname, "../..");
let dir: string;
let img: Synthetic;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "paio-flash-write-"));
  img = syntheticImage(dir);
  sh(["xz", "-T1", "-k", "-3", img.image]);
  sh(["zstd", "-q", "-k", img.image]);
  // Building and compressing the image takes seconds on a busy machine.
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const t = (name: string) => join(dir, name);
const sha = (file: string) => sh(["sha256sum", file]).split(" ")[0];
/** Bytes a file takes on disk. */
const allocated = (file: string) => statSync(file).blocks * 512;

function expectImageOn(target: string): void {
  const bmap = readBmap(img.bmap);
  expect(statSync(target).size).toBe(img.size);
  expect(rangeDigests(target, bmap)).toEqual(bmap.ranges.map((r) => r.checksum));
}

describe("flashing to a file", () => {
  test("a raw image: written through its bmap, sparse, every mapped range equal, verified", () => {
    const r = paioFlash(REPO, ["--yes", img.image, t("out.img")]);
    expect(r.err).toMatch(/verified: read \d+ ranges? .* every sha256 matches the bmap/);
    expect(r.code).toBe(0);
    expectImageOn(t("out.img"));
    const mapped = mappedBytes(readBmap(img.bmap));
    // Sparse: it holds its mapped blocks (plus file-system slack), not its 48 MiB.
    expect(allocated(t("out.img"))).toBeLessThanOrEqual(mapped + 256 * 1024);
    expect(allocated(t("out.img"))).toBeLessThan(img.size / 4);
    // Unmapped ranges read as zeros, and the whole file equals the image.
    expect(sha(t("out.img"))).toBe(sha(img.image));
  });

  test(".xz and .zst images are streamed through the same bmap", () => {
    for (const ext of ["xz", "zst"]) {
      const r = paioFlash(REPO, ["--yes", `${img.image}.${ext}`, t(`out-${ext}.img`)]);
      expect(r.err).toContain(`(${ext}, streamed)`);
      expect(r.code).toBe(0);
      expectImageOn(t(`out-${ext}.img`));
      expect(allocated(t(`out-${ext}.img`))).toBeLessThan(img.size / 4);
    }
  });

  test("a file larger than the image keeps its size (it stands for a larger card)", () => {
    const target = t("big.img");
    sh(["truncate", "-s", "64M", target]);
    const r = paioFlash(REPO, ["--yes", img.image, target]);
    expect(r.code).toBe(0);
    expect(statSync(target).size).toBe(64 * MiB);
    const bmap = readBmap(img.bmap);
    expect(rangeDigests(target, bmap)).toEqual(bmap.ranges.map((x) => x.checksum));
  });

  test("--dry-run checks and writes nothing", () => {
    const r = paioFlash(REPO, ["--dry-run", img.image, t("dry.img")]);
    expect(r.code).toBe(0);
    expect(r.err).toContain("nothing was written");
    expect(existsSync(t("dry.img"))).toBe(false);
  });

  test("replacing a file that has content asks for its name; a wrong answer writes nothing", () => {
    const target = t("ask.img");
    writeFileSync(target, randomBytes(MiB));
    sh(["truncate", "-s", "48M", target]);
    const before = sha(target);
    const no = paioFlash(REPO, [img.image, target], "yes\n");
    expect(no.code).toBe(1);
    expect(no.err).toContain("Type ask.img");
    expect(no.err).toMatch(/not confirmed/);
    expect(sha(target)).toBe(before);
    const yes = paioFlash(REPO, [img.image, target], "ask.img\n");
    expect(yes.code).toBe(0);
    expectImageOn(target);
  });
});

describe("caught, and what is written", () => {
  test("one byte changed in a mapped range of the image: bmaptool's checksum check stops it, naming the range", () => {
    const bad = t("corrupt.img");
    sh(["cp", "--sparse=always", img.image, bad]);
    flipByte(bad, img.dataOffset + 12345);
    const r = paioFlash(REPO, ["--yes", "--bmap", img.bmap, bad, t("corrupt-out.img")]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/failed: the image does not match its bmap: checksum mismatch for blocks range \d+-\d+/);
    expect(r.err).toContain("what to do:");
  });

  test("a truncated .xz is refused before anything is written, with and without a bmap", () => {
    const cut = t("cut.img.xz");
    const whole = readFileSync(`${img.image}.xz`);
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    copyFileSync(img.bmap, t("cut.img.bmap"));
    for (const extra of [[], ["--no-bmap"]]) {
      const r = paioFlash(REPO, ["--yes", ...extra, cut, t("cut-out.img")]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/refused: .*cut\.img\.xz is damaged or not a complete \.xz file/);
      expect(r.err).toContain("nothing was written");
      expect(existsSync(t("cut-out.img"))).toBe(false);
    }
  });

  test("a .xz damaged in the middle, without a bmap: bmaptool writes what it gets, the read-back catches it", () => {
    const bad = t("mid.img.xz");
    copyFileSync(`${img.image}.xz`, bad);
    flipByte(bad, Math.floor(statSync(bad).size / 2));
    const r = paioFlash(REPO, ["--yes", "--no-bmap", bad, t("mid-out.img")]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/failed: .*(damaged|differs from the image)/);
  });

  test("a target smaller than the image is refused and left untouched", () => {
    const small = t("small.img");
    writeFileSync(small, randomBytes(MiB));
    const before = { sha: sha(small), mtime: statSync(small).mtimeMs };
    const r = paioFlash(REPO, ["--yes", img.image, small]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/refused: .*small\.img is 1\.0 MiB \(1048576 bytes\); the image needs 48\.0 MiB \(50331648 bytes\)/);
    expect(r.err).toContain("nothing was written");
    expect(sha(small)).toBe(before.sha);
    expect(statSync(small).mtimeMs).toBe(before.mtime);
  });

  test("an image without a bmap is refused unless --no-bmap; then every block is written and read back", () => {
    mkdirSync(t("nobmap"));
    const bare = join(dir, "nobmap", "bare.img");
    sh(["cp", "--sparse=always", img.image, bare]);
    const refused = paioFlash(REPO, ["--yes", bare, t("bare-out.img")]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/has no bmap file beside it/);
    expect(refused.err).toContain("--no-bmap");
    expect(existsSync(t("bare-out.img"))).toBe(false);
    const r = paioFlash(REPO, ["--yes", "--no-bmap", bare, t("bare-out.img")]);
    expect(r.err).toMatch(/every block is written/);
    expect(r.err).toMatch(/verified: read 48\.0 MiB back .* identical to the image/);
    expect(r.code).toBe(0);
    expect(sha(t("bare-out.img"))).toBe(sha(img.image));
    // Holes dug where the full write put zeros: the file stays sparse.
    expect(allocated(t("bare-out.img"))).toBeLessThan(img.size / 2);
  });

  test("the image itself as target is refused, also through a symbolic link; the image is unchanged", () => {
    const before = sha(img.image);
    const link = t("link.img");
    symlinkSync(img.image, link);
    for (const target of [img.image, link]) {
      const r = paioFlash(REPO, ["--yes", img.image, target]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/is the image file itself/);
    }
    const r = paioFlash(REPO, ["--yes", img.image, img.bmap]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/is the image's bmap file/);
    expect(sha(img.image)).toBe(before);
  });

  test("a bmap from another image, a compressed image misnamed, a missing image: refused", () => {
    const other = syntheticImage(mkdtempSync(join(dir, "other-")), "other.img");
    sh(["truncate", "-s", "40M", other.image]);
    sh(["bmaptool", "create", "-o", other.bmap, other.image]);
    const r1 = paioFlash(REPO, ["--yes", "--bmap", other.bmap, img.image, t("x1.img")]);
    expect(r1.code).toBe(1);
    expect(r1.err).toMatch(/does not belong to/);
    const misnamed = t("packed.img");
    copyFileSync(`${img.image}.xz`, misnamed);
    const r2 = paioFlash(REPO, ["--yes", "--no-bmap", misnamed, t("x2.img")]);
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/is xz-compressed but its name does not end in \.xz/);
    const r3 = paioFlash(REPO, ["--yes", t("none.img"), t("x3.img")]);
    expect(r3.code).toBe(1);
    expect(r3.err).toMatch(/no such image file/);
    for (const f of ["x1.img", "x2.img", "x3.img"]) expect(existsSync(t(f))).toBe(false);
  });

  test("the read-back names the first range that differs on the target", () => {
    const target = t("readback.img");
    expect(paioFlash(REPO, ["--yes", img.image, target]).code).toBe(0);
    const bmap = readBmap(img.bmap);
    const fd0 = openSync(target, "r");
    try {
      expect(verifyRanges(fd0, target, bmap).ranges).toBe(bmap.ranges.length);
    } finally {
      closeSync(fd0);
    }
    flipByte(target, img.dataOffset + 7);
    const bad = bmap.ranges.find((r) => r.first * bmap.blockSize <= img.dataOffset && (r.last + 1) * bmap.blockSize > img.dataOffset)!;
    const fd = openSync(target, "r");
    try {
      expect(() => verifyRanges(fd, target, bmap)).toThrow(VerifyError);
      expect(() => verifyRanges(fd, target, bmap)).toThrow(new RegExp(`differs from the image in blocks ${bad.first}-${bad.last} \\(bytes `));
    } finally {
      closeSync(fd);
    }
  });
});

describe("first-boot settings", () => {
  const fatFile = (disk: string, name: string) =>
    Bun.spawnSync(["mcopy", "-i", `${disk}@@${MiB}`, `::${name}`, "-"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } });

  test("written into the boot partition after the verified image; the passphrase itself is not on it", () => {
    sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "flash-test", "-f", t("id_ed25519")]);
    const target = t("settings.img");
    const r = paioFlash(REPO, ["--yes", "--hostname", "cam-7", "--ssh-key", t("id_ed25519.pub"), "--wifi", "Shed", "--wifi-psk-stdin", img.image, target], "swordfish-42\n");
    expect(r.err).toMatch(/then writes first-boot settings into its boot partition:\n  host name: cam-7/);
    expect(r.err).toMatch(/verified: .*\nfirst-boot settings written to partition 1 of/);
    expect(r.code).toBe(0);
    const config = fatFile(target, "paio-config.toml").stdout.toString();
    expect(config).toContain('hostname = "cam-7"');
    expect(config).toContain("flash-test");
    expect(config).not.toContain("swordfish-42");
    // The image's own ranges outside the boot partition are as written.
    const bmap = readBmap(img.bmap);
    const digests = rangeDigests(target, bmap);
    bmap.ranges.forEach((range, i) => {
      if (range.first * bmap.blockSize >= 17 * MiB) expect(digests[i]).toBe(range.checksum);
    });
  });

  test("bad settings write nothing: an unreadable file, a private key, an image with no boot partition", () => {
    const cases: [string[], RegExp][] = [
      [["--ssh-key", t("no-such-key.pub")], /--ssh-key/],
      [["--ssh-key", t("id_ed25519")], /private key/],
      [["--hostname", "bad_name!"], /--hostname/],
      [["--wifi", "Shed", "--wifi-psk-file", t("no-such-psk")], /--wifi-psk-file/],
    ];
    if (!existsSync(t("id_ed25519"))) sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", t("id_ed25519")]);
    for (const [opts, re] of cases) {
      const r = paioFlash(REPO, ["--yes", ...opts, img.image, t("prov.img")]);
      expect(r.code, r.err).toBe(1);
      expect(r.err).toMatch(re);
      expect(r.err).toContain("nothing was written");
      expect(existsSync(t("prov.img"))).toBe(false);
    }
    const blank = t("blank.img");
    sh(["truncate", "-s", "8M", blank]);
    sh(["bmaptool", "create", "-o", `${blank}.bmap`, blank]);
    const r = paioFlash(REPO, ["--yes", "--hostname", "cam-8", blank, t("prov.img")]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/need a FAT boot partition in the image/);
    expect(existsSync(t("prov.img"))).toBe(false);
  });
});

describe("pieces", () => {
  test("usage errors exit 2", () => {
    expect(paioFlash(REPO, [img.image]).code).toBe(2);
    expect(paioFlash(REPO, ["--frobnicate", img.image, t("u.img")]).code).toBe(2);
    expect(paioFlash(REPO, ["--wifi-psk-file", "x", img.image, t("u.img")]).code).toBe(2);
    expect(paioFlash(REPO, ["--list", img.image]).code).toBe(2);
    expect(paioFlash(REPO, ["--help"]).code).toBe(0);
  });

  test("options: provisioning settings are passed on as the library takes them", () => {
    const p = parseFlashArgs(["--hostname", "cam-1", "--ssh-key=k.pub", "--wifi", "Home", "--wifi-psk-stdin", "--static-ip", "10.0.0.5/24,gw=10.0.0.1",
      "--units", "u", "--policy", "p.toml", "--timezone", "Europe/Paris", "--yes", "a.img", "/dev/sdb"]);
    expect(p.req.settings).toEqual({ hostname: "cam-1", sshKeyFile: "k.pub", wifiSsid: "Home", wifiPskStdin: true, staticIp: "10.0.0.5/24,gw=10.0.0.1", unitsDir: "u", policyFile: "p.toml", timezone: "Europe/Paris" });
    expect([p.req.image, p.req.target, p.req.yes]).toEqual(["a.img", "/dev/sdb", true]);
  });

  test("bmap files: found as bmaptool finds them, and inconsistent ones refused", () => {
    expect(findBmap(`${img.image}.xz`)).toBe(img.bmap);
    expect(findBmap(img.image)).toBe(img.bmap);
    const text = readFileSync(img.bmap, "utf8");
    expect(parseBmap(text).checksumType).toBe("sha256");
    expect(() => parseBmap(text.replace(/<MappedBlocksCount>\s*\d+/, "<MappedBlocksCount> 1"))).toThrow(BmapError);
    expect(() => parseBmap("<xml/>")).toThrow(/not a bmap file/);
  });

  test("bmaptool's error line without its traceback and colours", () => {
    const err = "bmaptool: \x1b[91mERROR\x1b[0m: An error occurred, here is the traceback:\nTraceback...\n\nbmaptool: \x1b[91mERROR\x1b[0m: checksum mismatch for blocks range 4352-4863: calculated ab, should be cd (image file x)\n";
    expect(bmaptoolError(err)).toBe("checksum mismatch for blocks range 4352-4863: calculated ab, should be cd (image file x)");
  });

  test("the progress line: bar, percent, amount, rate and time left", () => {
    expect(progressLine({ what: "writing", done: 40 * MiB, total: 80 * MiB, elapsed: 4 })).toBe(
      "writing   [############............]  50%  40.0 MiB/80.0 MiB  10.0 MiB/s  0:04 left");
    expect(progressLine({ what: "verifying", done: 80 * MiB, total: 80 * MiB, elapsed: 2 })).toMatch(/100% .* done$/);
    expect(human(605048832)).toBe("577.0 MiB");
    expect(clock(3725)).toBe("1:02:05");
  });
});

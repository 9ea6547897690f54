// What the image to flash is: raw, xz or zstd (by its first bytes, and the
// name must agree, as bmaptool goes by the name), how large it is
// uncompressed, and its bmap. A compressed image's index is read before
// anything is written, so a truncated .xz is refused up front.

import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { BmapError, findBmap, mappedBytes, parseBmap, type Bmap } from "./bmap.ts";
import { human } from "./format.ts";

export type Compression = "none" | "xz" | "zst";

export interface ImageInfo {
  path: string;
  compression: Compression;
  /** Bytes of the image file itself. */
  fileSize: number;
  /** Bytes the image has uncompressed: what it takes on the target. */
  size: number;
  /** Where the size came from (for messages). */
  sizeFrom: string;
  bmapPath?: string;
  bmap?: Bmap;
  /** Bytes written to the target: the mapped ranges, or the whole image without a bmap. */
  written: number;
}

/** A problem with the image or its bmap: the flash is refused, nothing is written. */
export class ImageError extends Error {
  constructor(message: string, readonly remedy: string) {
    super(message);
  }
}

const MAGIC: { kind: string; bytes: number[] }[] = [
  { kind: "xz", bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  { kind: "zst", bytes: [0x28, 0xb5, 0x2f, 0xfd] },
  { kind: "gzip", bytes: [0x1f, 0x8b] },
  { kind: "bzip2", bytes: [0x42, 0x5a, 0x68] },
];

function sniff(path: string): string | undefined {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(8);
    const n = readSync(fd, b, 0, 8, 0);
    return MAGIC.find((m) => n >= m.bytes.length && m.bytes.every((x, i) => b[i] === x))?.kind;
  } finally {
    closeSync(fd);
  }
}

function run(argv: string[]): { code: number; out: string; err: string } {
  try {
    const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
    return { code: r.exitCode ?? 1, out: r.stdout.toString(), err: r.stderr.toString() };
  } catch (e) {
    return { code: 127, out: "", err: `${argv[0]}: ${(e as Error).message}` };
  }
}

function lastLine(s: string): string {
  return s.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("***")).pop() ?? "";
}

/** The uncompressed size from xz's index (read from the end of the file; a truncated file has none). */
function xzSize(path: string): number {
  const r = run(["xz", "--robot", "--list", path]);
  if (r.code === 127) throw new ImageError(`${path}: xz is not installed`, "install Debian's xz-utils ('make deps')");
  if (r.code !== 0) {
    throw new ImageError(`${path} is damaged or not a complete .xz file: ${lastLine(r.err) || "xz cannot read its index"}`,
      "download or compress the image again (a file cut short loses the index at its end)");
  }
  const totals = r.out.split("\n").find((l) => l.startsWith("totals\t"))?.split("\t");
  const n = Number(totals?.[4]);
  if (!Number.isSafeInteger(n)) throw new ImageError(`${path}: xz --list gave no uncompressed size`, "compress the image again with xz");
  return n;
}

/** The uncompressed size from zstd's frame headers, undefined when the frames do not say. */
function zstdSize(path: string): number | undefined {
  const r = run(["zstd", "-lv", path]);
  if (r.code === 127) throw new ImageError(`${path}: zstd is not installed`, "install Debian's zstd ('make deps')");
  if (r.code !== 0) {
    throw new ImageError(`${path} is damaged or not a complete .zst file: ${lastLine(r.err) || "zstd cannot read its frames"}`,
      "download or compress the image again");
  }
  const m = /Decompressed Size:.*\((\d+) B\)/.exec(r.out);
  return m ? Number(m[1]) : undefined;
}

/** Decompresses a .zst whose frames do not give its size, counting the bytes (and proving it is whole). */
async function zstdCount(path: string): Promise<number> {
  const p = Bun.spawn(["zstd", "-dc", path], { stdout: "pipe", stderr: "pipe" });
  let n = 0;
  for await (const chunk of p.stdout) n += chunk.length;
  const code = await p.exited;
  if (code !== 0) {
    const err = lastLine(await new Response(p.stderr).text());
    throw new ImageError(`${path} is damaged: ${err || `zstd exited with ${code}`}`, "download or compress the image again");
  }
  return n;
}

export interface ImageOptions {
  /** --bmap FILE */
  bmap?: string;
  /** --no-bmap: write the whole image. */
  noBmap: boolean;
}

/** Looks at the image and its bmap; ImageError says what is wrong and what to do. */
export async function inspectImage(path: string, opts: ImageOptions): Promise<ImageInfo> {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new ImageError(`${path}: no such image file`, "build it with 'make image' (x86_64) or 'make image ARCH=arm64', or check the name");
  }
  if (!st.isFile()) throw new ImageError(`${path} is not a regular file`, "name the image file (out/paio-x86_64.img, out/arm64/paio-rpi.img, or their .xz)");
  const magic = sniff(path);
  const named = /\.xz$/i.test(path) ? "xz" : /\.zst$/i.test(path) ? "zst" : undefined;
  if (magic === "gzip" || magic === "bzip2") {
    throw new ImageError(`${path} is ${magic}-compressed; paio flash takes raw, .xz and .zst images`, `decompress it, or recompress it with xz or zstd`);
  }
  if (magic && magic !== named) {
    throw new ImageError(`${path} is ${magic}-compressed but its name does not end in .${magic}`, `rename it to end in .${magic} (the name says how to read it)`);
  }
  if (named && magic !== named) throw new ImageError(`${path} ends in .${named} but is not ${named} data`, "check the file; a raw image should not end in .xz or .zst");
  const compression: Compression = named ?? "none";

  let bmapPath: string | undefined;
  let bmap: Bmap | undefined;
  if (!opts.noBmap) {
    bmapPath = opts.bmap ?? findBmap(path);
    if (!bmapPath) {
      throw new ImageError(`${path} has no bmap file beside it (looked for ${path}.bmap and the names without its extensions)`,
        "add --no-bmap to write the whole image (slower: every block, empty ones too), or give one with --bmap FILE, or make one: bmaptool create IMAGE -o IMAGE.bmap");
    }
    let text: string;
    try {
      text = readFileSync(bmapPath, "utf8");
    } catch (e) {
      throw new ImageError(`${bmapPath}: ${(e as Error).message}`, "check the bmap file, or add --no-bmap to write the whole image");
    }
    try {
      bmap = parseBmap(text, bmapPath);
    } catch (e) {
      if (e instanceof BmapError) throw new ImageError(e.message, "make the bmap again (bmaptool create IMAGE -o IMAGE.bmap), or add --no-bmap");
      throw e;
    }
    if (!bmap.checksumType || bmap.ranges.some((r) => !r.checksum)) {
      throw new ImageError(`${bmapPath} has no checksums, so what is written could not be checked`,
        "make the bmap again without --no-checksum (bmaptool create IMAGE -o IMAGE.bmap)");
    }
    if (!["sha256", "sha1"].includes(bmap.checksumType)) {
      throw new ImageError(`${bmapPath} uses ${bmap.checksumType} checksums; this tool checks sha256 and sha1`, "make the bmap again with Debian's bmap-tools");
    }
  }

  let size: number;
  let sizeFrom: string;
  if (compression === "none") {
    size = st.size;
    sizeFrom = "the file's size";
  } else if (compression === "xz") {
    size = xzSize(path);
    sizeFrom = "the .xz index";
  } else {
    const z = zstdSize(path);
    if (z !== undefined) {
      size = z;
      sizeFrom = "the .zst frame headers";
    } else if (bmap) {
      size = bmap.imageSize;
      sizeFrom = "the bmap";
    } else {
      size = await zstdCount(path);
      sizeFrom = "decompressing it";
    }
  }
  if (bmap && bmap.imageSize !== size) {
    throw new ImageError(
      `${bmapPath} does not belong to ${path}: it describes an image of ${human(bmap.imageSize)} (${bmap.imageSize} bytes), the image is ${human(size)} (${size} bytes, from ${sizeFrom})`,
      "give the bmap made from this very image (--bmap FILE), or add --no-bmap");
  }
  return { path, compression, fileSize: st.size, size, sizeFrom, bmapPath, bmap, written: bmap ? mappedBytes(bmap) : size };
}

/** The image's bytes, decompressed; `done` resolves to an error message when the stream was not whole. */
export function imageStream(info: ImageInfo): { stream: ReadableStream<Uint8Array>; done: Promise<string | undefined> } {
  if (info.compression === "none") return { stream: Bun.file(info.path).stream(), done: Promise.resolve(undefined) };
  const tool = info.compression === "xz" ? "xz" : "zstd";
  const p = Bun.spawn([tool, "-dc", info.path], { stdout: "pipe", stderr: "pipe" });
  const done = (async () => {
    const code = await p.exited;
    if (code === 0) return undefined;
    const err = lastLine(await new Response(p.stderr).text());
    return err.startsWith(`${tool}:`) ? err : `${tool}: ${err || `exited with ${code}`}`;
  })();
  return { stream: p.stdout, done };
}

// The block map (bmap) file bmaptool writes next to an image: which blocks
// of the image hold data, with a checksum per range. `paio flash` gives it to
// `bmaptool copy` and reads it itself to check every range on the target
// afterwards.
//
//   <bmap version="2.0">
//     <ImageSize> 605048832 </ImageSize>
//     <BlockSize> 4096 </BlockSize>
//     <BlocksCount> 147717 </BlocksCount>
//     <MappedBlocksCount> 20222 </MappedBlocksCount>
//     <ChecksumType> sha256 </ChecksumType>
//     <BlockMap> <Range chksum="fa5b..."> 0-4 </Range> ... </BlockMap>
//   </bmap>
// Versions 1.x name the checksum "sha1" (an attribute of each range).

import { existsSync, statSync } from "node:fs";
import { extname } from "node:path";

export interface BmapRange {
  /** First and last block, inclusive. */
  first: number;
  last: number;
  /** Hex digest of the range's bytes, when the bmap has checksums. */
  checksum?: string;
}

export interface Bmap {
  version: string;
  imageSize: number;
  blockSize: number;
  blocksCount: number;
  mappedBlocks: number;
  /** "sha256" (version 2), "sha1" (version 1), undefined without checksums. */
  checksumType?: string;
  ranges: BmapRange[];
}

export class BmapError extends Error {}

function tag(text: string, name: string): string | undefined {
  return new RegExp(`<${name}>\\s*([^<]*?)\\s*</${name}>`).exec(text)?.[1];
}

function int(text: string, name: string, file: string): number {
  const v = tag(text, name);
  const n = v === undefined ? NaN : Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new BmapError(`${file}: <${name}> is ${v === undefined ? "missing" : `'${v}', not a whole number`}`);
  return n;
}

/** Reads a bmap file's text; `file` names it in errors. */
export function parseBmap(text: string, file = "the bmap file"): Bmap {
  const version = /<bmap\s+version\s*=\s*"([^"]+)"/.exec(text)?.[1];
  if (!version) throw new BmapError(`${file} is not a bmap file (no <bmap version="...">)`);
  const major = Number(version.split(".")[0]);
  if (major !== 1 && major !== 2) throw new BmapError(`${file}: bmap version ${version} is not one this tool reads (1.x, 2.x)`);
  const imageSize = int(text, "ImageSize", file);
  const blockSize = int(text, "BlockSize", file);
  const blocksCount = int(text, "BlocksCount", file);
  const mappedBlocks = int(text, "MappedBlocksCount", file);
  if (blockSize === 0) throw new BmapError(`${file}: <BlockSize> is 0`);
  const checksumType = major >= 2 ? tag(text, "ChecksumType")?.toLowerCase() : "sha1";
  const attr = major >= 2 ? "chksum" : "sha1";
  const map = /<BlockMap>([\s\S]*?)<\/BlockMap>/.exec(text)?.[1];
  if (map === undefined) throw new BmapError(`${file}: no <BlockMap>`);
  const ranges: BmapRange[] = [];
  const re = /<Range([^>]*)>\s*([^<]*?)\s*<\/Range>/g;
  for (let m = re.exec(map); m; m = re.exec(map)) {
    const sum = new RegExp(`${attr}\\s*=\\s*"([0-9a-fA-F]+)"`).exec(m[1]!)?.[1]?.toLowerCase();
    const parts = m[2]!.split("-").map((s) => s.trim());
    const first = Number(parts[0]);
    const last = parts.length > 1 ? Number(parts[1]) : first;
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first < 0 || last < first) {
      throw new BmapError(`${file}: bad range '${m[2]}'`);
    }
    if (last >= blocksCount) throw new BmapError(`${file}: range ${m[2]} goes past the image's ${blocksCount} blocks`);
    ranges.push({ first, last, checksum: sum });
  }
  const counted = ranges.reduce((n, r) => n + r.last - r.first + 1, 0);
  if (counted !== mappedBlocks) throw new BmapError(`${file}: its ranges hold ${counted} blocks, but <MappedBlocksCount> says ${mappedBlocks}`);
  if (Math.ceil(imageSize / blockSize) !== blocksCount) {
    throw new BmapError(`${file}: <BlocksCount> ${blocksCount} does not match <ImageSize> ${imageSize} in blocks of ${blockSize}`);
  }
  return { version, imageSize, blockSize, blocksCount, mappedBlocks, checksumType, ranges };
}

/** A range's place on the target in bytes (the last block of the image may be short). */
export function rangeExtent(b: Bmap, r: BmapRange): { offset: number; length: number } {
  const offset = r.first * b.blockSize;
  const end = Math.min((r.last + 1) * b.blockSize, b.imageSize);
  return { offset, length: end - offset };
}

/** Bytes a bmap write puts on the target. */
export function mappedBytes(b: Bmap): number {
  return b.ranges.reduce((n, r) => n + rangeExtent(b, r).length, 0);
}

/** "blocks 256-1347 (bytes 1048576-5521407)". */
export function describeRange(b: Bmap, r: BmapRange): string {
  const { offset, length } = rangeExtent(b, r);
  return `blocks ${r.first}-${r.last} (bytes ${offset}-${offset + length - 1})`;
}

/**
 * The bmap beside an image, found as bmaptool finds it: IMAGE.bmap, then
 * with one extension taken off at a time (paio.img.xz -> paio.img.xz.bmap,
 * paio.img.bmap, paio.bmap).
 */
export function findBmap(image: string): string | undefined {
  let base = image;
  for (;;) {
    const candidate = `${base}.bmap`;
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
    const ext = extname(base);
    if (!ext) return undefined;
    base = base.slice(0, -ext.length);
  }
}

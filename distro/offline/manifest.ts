// A manifest of a Buildroot target directory in the assembler's format
// (image/stage.ts): path, type, mode, size, sha256, link target, origin. And
// a comparison of the two images' manifests, limited to what matters: PAIO's
// own parts (pid1, the app, the overlay) must be the same files.

import { treeManifest } from "../../image/stage.ts";

/** The manifest of a Buildroot root, every entry's origin "buildroot". */
export function rootManifest(root: string): string {
  return treeManifest(root, () => "buildroot");
}

interface Row {
  type: string;
  sha: string;
  link: string;
  origin: string;
}

function parse(text: string): Map<string, Row> {
  const m = new Map<string, Row>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [path, type, , , sha, link, origin] = line.split("\t");
    m.set(path!, { type: type!, sha: sha!, link: link!, origin: origin ?? "" });
  }
  return m;
}

export interface Comparison {
  /** Files of PAIO's own (origin paio: or npm:) that are identical in both. */
  paioSame: number;
  /** PAIO's files that differ or are missing in the Buildroot image. */
  paioDiffer: string[];
  report: string;
}

/**
 * Compares the assembler's manifest with the Buildroot image's. PAIO's parts
 * are the files whose assembler origin is "paio:" or "npm:" (pid1, the exec
 * helper and /etc/paio/release are compared by presence only: each build
 * system compiles or writes them itself).
 */
export function compareManifests(assemblerText: string, buildrootText: string): Comparison {
  const a = parse(assemblerText);
  const b = parse(buildrootText);
  // Compiled, or written, by each build system itself: compared by presence.
  const compiled = new Set(["/usr/sbin/init", "/usr/libexec/paio/qemu-exec", "/etc/paio/release"]);
  let paioSame = 0;
  const paioDiffer: string[] = [];
  const rebuilt: string[] = [];
  const otherOnlyA: string[] = [];
  const relocated: string[] = [];
  for (const [path, row] of a) {
    const isPaio = /^(paio:|npm:|file:)/.test(row.origin);
    if (!isPaio) {
      if (!b.has(path)) otherOnlyA.push(`${path}  (${row.origin})`);
      continue;
    }
    const other = b.get(path);
    // The merged-/usr links (/bin, /lib64, ...) are each build system's own layout.
    if (compiled.has(path) || row.origin === "paio:image/stage.ts") {
      if (other && other.type === row.type) rebuilt.push(path);
      else paioDiffer.push(`${path}: missing`);
      continue;
    }
    if (!other) {
      // The shared library goes to /usr/lib under Buildroot (no multiarch directory).
      const moved = path.replace(/^\/usr\/lib\/(x86_64|aarch64)-linux-gnu\//, "/usr/lib/");
      if (moved !== path && b.get(moved)?.sha === row.sha) {
        relocated.push(`${path} -> ${moved}`);
        paioSame++;
      } else {
        paioDiffer.push(`${path}: missing`);
      }
    } else if (other.type !== row.type || other.sha !== row.sha || other.link !== row.link) {
      paioDiffer.push(`${path}: differs`);
    } else {
      paioSame++;
    }
  }
  const onlyB = [...b.keys()].filter((p) => !a.has(p));
  const section = (title: string, items: string[]) => [`## ${title} (${items.length})`, ...items.map((i) => `  ${i}`), ""];
  const report = [
    "# Buildroot image vs. the offline assembler's image",
    "",
    `PAIO's files (overlay, app, models, onnxruntime, Bun): ${paioSame} identical, ${paioDiffer.length} not.`,
    "",
    ...section("PAIO files that differ or are missing", paioDiffer),
    ...section("Compiled or written by each build system itself (present in both, contents differ by design)", rebuilt),
    ...section("Same file, other directory", relocated),
    ...section("Only in the assembler's image (Debian's binaries and libraries, systemd-boot's loader and initramfs are not in the root)", otherOnlyA),
    ...section("Only in the Buildroot image (Buildroot's skeleton, its busybox and libraries)", onlyB),
  ].join("\n");
  return { paioSame, paioDiffer, report };
}

#!/usr/bin/env bun
// `make release`: what a person downloads, in out/release/:
//   paio-x86_64.img.xz, paio-arm64.img.xz, paio-rpi.img.xz   the images, compressed
//   *.img.bmap                                                 bmaptool's maps, for `paio flash` and bmaptool
//   SHA256SUMS                                                 of every file above
//   os_list_paio.json   the Raspberry Pi image as a Raspberry Pi Imager repository
//                       ("Use custom repository"), with Imager's settings dialog enabled
//   RELEASE.md          versions of what the images hold, from their manifests
// The images themselves come from `make image` for each architecture (the
// Makefile runs both first). PAIO_RELEASE_URL is where the files will be
// served from (Imager downloads from there); by default the folder itself.

import { createHash } from "node:crypto";
import { createReadStream, existsSync, linkSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { OUT_BASE, REPO, SOURCE_DATE_EPOCH } from "./config.ts";
import { BuildError } from "./errors.ts";

const RELEASE = join(OUT_BASE, "release");

interface Built {
  arch: "x86_64" | "arm64";
  dir: string;
  image: string;
  /** Raspberry Pi Imager device tags, for the Pi image only. */
  imagerDevices?: string[];
}

const BUILT: Built[] = [
  { arch: "x86_64", dir: OUT_BASE, image: "paio-x86_64.img" },
  { arch: "arm64", dir: join(OUT_BASE, "arm64"), image: "paio-arm64.img" },
  { arch: "arm64", dir: join(OUT_BASE, "arm64"), image: "paio-rpi.img", imagerDevices: ["pi3-64bit", "pi4-64bit"] },
];

async function sha256(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Versions of what an architecture's image holds, from its manifest and release file. */
function versions(dir: string): Record<string, string> {
  const manifest = readFileSync(join(dir, "manifest.tsv"), "utf8").split("\n").map((l) => l.split("\t"));
  const origin = (path: string) => manifest.find((r) => r[0] === path)?.[6] ?? "unknown";
  const onnx = manifest.find((r) => /libonnxruntime\.so\.1$/.test(r[0] ?? ""))?.[6] ?? "unknown";
  return {
    Bun: origin("/usr/bin/bun").replace(/^npm:/, ""),
    onnxruntime: onnx.replace(/^npm:/, ""),
    busybox: origin("/usr/bin/busybox").replace(/^debian:/, ""),
    glibc: manifest.find((r) => /\/libc\.so\.6$/.test(r[0] ?? ""))?.[6]?.replace(/^debian:/, "") ?? "unknown",
  };
}

/** "| part | x86_64 | arm64 |" rows, each manifest read once. */
function versionRows(): string[] {
  const x86 = versions(OUT_BASE);
  const arm = versions(join(OUT_BASE, "arm64"));
  return Object.entries(x86).map(([k, v]) => `| ${k} | ${v} | ${arm[k]} |`);
}

async function main(): Promise<void> {
  for (const b of BUILT) {
    for (const f of [b.image, `${b.image}.xz`, `${b.image}.bmap`, "manifest.tsv"]) {
      if (!existsSync(join(b.dir, f))) {
        throw new BuildError(`${relative(REPO, join(b.dir, f))} is missing; run 'make image${b.arch === "arm64" ? " ARCH=arm64" : ""}' (make release builds both)`);
      }
    }
  }
  rmSync(RELEASE, { recursive: true, force: true });
  mkdirSync(RELEASE, { recursive: true });
  const base = (process.env.PAIO_RELEASE_URL ?? `file://${RELEASE}`).replace(/\/+$/, "");
  const date = new Date(SOURCE_DATE_EPOCH * 1000).toISOString().slice(0, 10);
  const sums: string[] = [];
  const osList: object[] = [];
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
  const models = JSON.parse(readFileSync(join(REPO, "out/models/manifest.json"), "utf8")).body.models as { name: string; sha256: string }[];
  let step = 0;
  for (const b of BUILT) {
    step++;
    console.log(`release [${step}/${BUILT.length}] ${b.image}`);
    for (const f of [`${b.image}.xz`, `${b.image}.bmap`]) {
      linkSync(join(b.dir, f), join(RELEASE, f));
      sums.push(`${await sha256(join(RELEASE, f))}  ${f}`);
    }
    if (b.imagerDevices) {
      const xz = join(RELEASE, `${b.image}.xz`);
      osList.push({
        name: `PAIO ${pkg.version} (64-bit)`,
        description: "A minimal Linux for edge devices that runs itself: supervised services, a self-healing agent, a conversational console.",
        url: `${base}/${b.image}.xz`,
        release_date: date,
        extract_size: statSync(join(b.dir, b.image)).size,
        extract_sha256: await sha256(join(b.dir, b.image)),
        image_download_size: statSync(xz).size,
        image_download_sha256: await sha256(xz),
        devices: b.imagerDevices,
        // Imager's settings dialog writes cloud-init's user-data and network-config on the
        // boot partition; PAIO imports them on first boot (docs/provisioning.md).
        init_format: "cloudinit",
      });
    }
  }
  writeFileSync(join(RELEASE, "os_list_paio.json"), JSON.stringify({ os_list: osList }, null, 2) + "\n");
  sums.push(`${await sha256(join(RELEASE, "os_list_paio.json"))}  os_list_paio.json`);

  const kernels = { x86_64: readFileSync(join(OUT_BASE, "kernel/release"), "utf8").trim(), arm64: readFileSync(join(OUT_BASE, "arm64/kernel/release"), "utf8").trim() };
  const note = [
    `# PAIO ${pkg.version}`,
    "",
    `Built ${date} (SOURCE_DATE_EPOCH ${SOURCE_DATE_EPOCH}).`,
    "",
    "| image | for | compressed | unpacked |",
    "|---|---|---|---|",
    ...BUILT.map((b) => `| ${b.image}.xz | ${b.imagerDevices ? "Raspberry Pi 3 and 4 (64-bit)" : b.arch === "arm64" ? "arm64 UEFI machines, QEMU virt" : "x86_64 UEFI PCs, QEMU q35"} | ${(statSync(join(RELEASE, `${b.image}.xz`)).size / 1048576).toFixed(1)} MiB | ${(statSync(join(b.dir, b.image)).size / 1048576).toFixed(0)} MiB |`),
    "",
    "## What the images hold",
    "",
    "| part | x86_64 | arm64 |",
    "|---|---|---|",
    `| kernel (Linux, with PAIO's scheduling patches) | ${kernels.x86_64} | ${kernels.arm64} |`,
    ...versionRows(),
    "",
    "Models (the same in every image):",
    "",
    ...models.map((m) => `- ${m.name}: sha256 ${m.sha256.slice(0, 16)}…`),
    "",
    "Flash with `bin/paio flash IMAGE.xz /dev/sdX` (docs/flashing.md), or add `os_list_paio.json` to Raspberry Pi Imager as a custom repository.",
    "Check downloads with `sha256sum -c SHA256SUMS`.",
    "",
  ].join("\n");
  writeFileSync(join(RELEASE, "RELEASE.md"), note);
  sums.push(`${await sha256(join(RELEASE, "RELEASE.md"))}  RELEASE.md`);
  writeFileSync(join(RELEASE, "SHA256SUMS"), sums.join("\n") + "\n");
  console.log(`release: ${relative(REPO, RELEASE)}/ (${BUILT.length} images, os_list_paio.json, RELEASE.md, SHA256SUMS)`);
}

try {
  await main();
} catch (e) {
  if (e instanceof BuildError) {
    console.error(`release: error: ${e.message}`);
    process.exit(1);
  }
  throw e;
}

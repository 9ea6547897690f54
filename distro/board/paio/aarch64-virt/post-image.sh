#!/bin/sh
# Buildroot post-image script for QEMU's arm64 virt machine and arm64 UEFI
# machines: the EFI system partition holds the kernel's Image as the EFI
# application (its EFI stub boots it with the built-in command line), and
# genimage writes the GPT disk.
set -eu
board=$(cd "$(dirname "$0")" && pwd)

esp="$BINARIES_DIR/esp"
rm -rf "$esp"
mkdir -p "$esp/EFI/BOOT"
cp "$BINARIES_DIR/Image" "$esp/EFI/BOOT/BOOTAA64.EFI"

tmp="$BUILD_DIR/genimage.tmp"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
rm -rf "$tmp"
genimage \
	--config "$board/genimage.cfg" \
	--inputpath "$BINARIES_DIR" \
	--outputpath "$BINARIES_DIR" \
	--tmppath "$tmp" \
	--rootpath "$root"
echo "paio post-image: $BINARIES_DIR/paio-arm64.img"

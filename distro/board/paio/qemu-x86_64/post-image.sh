#!/bin/sh
# Buildroot post-image script for x86_64 PCs and QEMU: the EFI system
# partition holds the kernel as the EFI application (its EFI stub boots it
# with the built-in command line), and genimage writes the disk with the
# partition layout the offline assembler uses (image/genimage-disk.cfg).
set -eu
board=$(cd "$(dirname "$0")" && pwd)
paio_top=$(cd "$board/../../../.." && pwd)

esp="$BINARIES_DIR/esp"
rm -rf "$esp"
mkdir -p "$esp/EFI/BOOT"
cp "$BINARIES_DIR/bzImage" "$esp/EFI/BOOT/BOOTX64.EFI"

tmp="$BUILD_DIR/genimage.tmp"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
rm -rf "$tmp"
# genimage looks up the configuration and its include("genimage-disk.cfg")
# in the include path.
genimage \
	--config genimage.cfg \
	--includepath "$board:$paio_top/image" \
	--inputpath "$BINARIES_DIR" \
	--outputpath "$BINARIES_DIR" \
	--tmppath "$tmp" \
	--rootpath "$root"
echo "paio post-image: $BINARIES_DIR/paio-x86_64.img"

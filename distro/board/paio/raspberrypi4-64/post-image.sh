#!/bin/sh
# Buildroot post-image script for the Raspberry Pi 4 (64-bit): the firmware
# files, config.txt and cmdline.txt (package rpi-firmware, in
# images/rpi-firmware/), the kernel's Image and the Pi 4's device tree go to
# the FAT boot partition; genimage writes the MBR SD card image.
set -eu
board=$(cd "$(dirname "$0")" && pwd)

for f in rpi-firmware/start4.elf rpi-firmware/fixup4.dat rpi-firmware/config.txt rpi-firmware/cmdline.txt bcm2711-rpi-4-b.dtb Image rootfs.squashfs; do
	[ -f "$BINARIES_DIR/$f" ] || { echo "paio post-image: $BINARIES_DIR/$f is missing" >&2; exit 1; }
done
grep -qx 'arm_64bit=1' "$BINARIES_DIR/rpi-firmware/config.txt" || {
	echo "paio post-image: config.txt does not start the Pi in 64-bit mode (arm_64bit=1)" >&2; exit 1; }

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
echo "paio post-image: $BINARIES_DIR/paio-rpi4.img (write it to an SD card with dd)"

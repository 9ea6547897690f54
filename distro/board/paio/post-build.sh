#!/bin/sh
# Buildroot post-build script: gives the target tree the shape the offline
# assembler's root has (image/build.ts, stageRoot) and checks PAIO's parts.
# Buildroot calls it with the target directory as $1 and BR2_CONFIG,
# BUILD_DIR, BASE_DIR in the environment.
set -eu
target=$1
paio_top=$(cd "$(dirname "$0")/../../.." && pwd)

fail() {
	echo "paio post-build: $*" >&2
	exit 1
}

# Directories PID 1 mounts on or the app writes to; /var/log lives in /run.
for d in proc sys dev run mnt var/lib/paio usr/lib/paio etc/paio; do
	mkdir -p "$target/$d"
done
mkdir -p "$target/tmp" && chmod 1777 "$target/tmp"
mkdir -p "$target/root" && chmod 0700 "$target/root"
rm -rf "$target/var/log" "$target/var/tmp"
ln -s /run/log "$target/var/log"
ln -s /tmp "$target/var/tmp"

# /sbin/init must be PAIO's PID 1, not a link to busybox.
init="$target/sbin/init"
[ -f "$init" ] && [ ! -L "$init" ] || fail "/sbin/init is not PAIO's PID 1 (a link or missing); is BR2_PACKAGE_PAIO_PID1 enabled?"
for f in usr/bin/bun usr/lib/paio/supervisor.js sbin/mke2fs sbin/e2fsck; do
	[ -e "$target/$f" ] || fail "/$f is missing from the target"
done

version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$paio_top/package.json")
release=$(cat "$BUILD_DIR"/linux-*/include/config/kernel.release 2>/dev/null | head -n 1)
printf 'PAIO_VERSION=%s\nKERNEL=%s\nBUILD_EPOCH=%s\n' \
	"${version:-unknown}" "${release:-unknown}" "${SOURCE_DATE_EPOCH:-$(date +%s)}" > "$target/etc/paio/release"

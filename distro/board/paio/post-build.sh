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

# Bun and onnxruntime are prebuilt: they must be built for the target's
# architecture (e_machine in the ELF header: 62 x86_64, 183 aarch64).
if grep -qx 'BR2_aarch64=y' "$BR2_CONFIG"; then
	machine=183 npm_arch=arm64
else
	machine=62 npm_arch=x64
fi
for f in usr/bin/bun usr/lib/libonnxruntime.so.1 "usr/lib/paio/node_modules/onnxruntime-node/bin/napi-v6/linux/$npm_arch/onnxruntime_binding.node"; do
	[ -f "$target/$f" ] || fail "/$f is missing from the target (is image/app.ts installing the $npm_arch files?)"
	got=$(od -An -tu2 -j18 -N2 "$target/$f" | tr -d ' ')
	[ "$got" = "$machine" ] || fail "/$f is built for ELF machine $got, the target needs $machine ($npm_arch)"
done

version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$paio_top/package.json")
release=$(cat "$BUILD_DIR"/linux-*/include/config/kernel.release 2>/dev/null | head -n 1)
printf 'PAIO_VERSION=%s\nKERNEL=%s\nBUILD_EPOCH=%s\n' \
	"${version:-unknown}" "${release:-unknown}" "${SOURCE_DATE_EPOCH:-$(date +%s)}" > "$target/etc/paio/release"

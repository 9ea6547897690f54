#!/bin/sh
# Installs what the host needs, idempotently: Debian packages from
# image/host-packages.txt and the npm packages pinned in package-lock.json.
# A second run with nothing missing touches nothing and takes under a second.
set -eu
cd "$(dirname "$0")/.."

want=$(grep -v '^[[:space:]]*#' image/host-packages.txt | tr -s ' \n' ' ')
missing=""
for pkg in $want; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "deps: installing Debian packages:$missing"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
else
  echo "deps: Debian packages present"
fi

# npm ci only when the lock file changed since the last install.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.paio-lock-sum 2>/dev/null)" != "$lock_sum" ]; then
  echo "deps: npm ci"
  # onnxruntime-node's install script would fetch CUDA files; its CPU library ships in the package.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.paio-lock-sum
else
  echo "deps: npm packages present"
fi
test -x node_modules/.bin/bun || { echo "deps: node_modules/.bin/bun is missing after npm ci" >&2; exit 1; }

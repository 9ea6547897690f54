#!/bin/sh
# check-kernel-config.sh DOTCONFIG FRAGMENT...
# Fails, naming each one, when an option of a fragment is not in the final
# kernel .config with the fragment's value ("# CONFIG_X is not set" lines
# must be unset or absent there).
set -eu
config=$1
shift
missing=0
for fragment in "$@"; do
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			name=${line%%=*}
			if ! grep -qxF -- "$line" "$config"; then
				got=$(grep -E "^$name=" "$config" || echo "not set")
				echo "kernel fragment $fragment: $line did not land (final: ${got#"$name="})" >&2
				missing=$((missing + 1))
			fi
			;;
		"# CONFIG_"*" is not set")
			name=${line#"# "}
			name=${name%" is not set"}
			if grep -qE "^$name=" "$config"; then
				echo "kernel fragment $fragment: $line did not land (final: $(grep -E "^$name=" "$config"))" >&2
				missing=$((missing + 1))
			fi
			;;
		esac
	done < "$fragment"
done
if [ "$missing" -gt 0 ]; then
	echo "$missing kernel option(s) missing: a dependency is not enabled; fix the fragment" >&2
	exit 1
fi
echo "every option of the kernel fragments is in $config"

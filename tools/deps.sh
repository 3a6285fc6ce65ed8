#!/bin/sh
# deps.sh PKG... — install the Debian packages among PKG that are missing.
# One dpkg-query call when nothing is missing (~0.1 s); apt-get otherwise,
# refreshing the package lists only if the first attempt fails.
set -u
missing=""
for p in "$@"; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
	echo "segloss: missing packages:$missing (install them; this is not a Debian system)" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo="sudo"
	else
		echo "segloss: missing packages:$missing (run as root, or install them)" >&2
		exit 1
	fi
fi
echo "segloss: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing >/dev/null ||
	{ $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends $missing >/dev/null; } ||
	{ echo "segloss: could not install$missing" >&2; exit 1; }

#!/bin/sh
# deps.sh PKG... — install the Debian packages among PKG that are missing.
# One dpkg-query call when nothing is missing (~0.1 s); apt-get otherwise,
# refreshing the package lists only if the first attempt fails.
#
# A freshly booted machine often runs apt itself (unattended-upgrades,
# cloud-init): then apt-get fails at once with "Could not get lock". deps.sh
# waits for the lock instead: apt's own DPkg::Lock::Timeout covers the dpkg
# locks of one attempt, and a retry loop covers the rest (apt-get update's
# lists lock, the archives lock), printing progress while it waits.
#
#   SEGLOSS_APT_LOCK_WAIT  total seconds to wait for the lock (600), then fail
#   SEGLOSS_APT_RETRY      seconds between attempts (5; decimals allowed), also
#                          apt's own wait on the dpkg locks per attempt (>= 1 s)
#
# Any other apt failure (unknown package, network) is not retried: deps.sh
# stops with apt's error messages.
set -u

wait_max=${SEGLOSS_APT_LOCK_WAIT:-600}
retry=${SEGLOSS_APT_RETRY:-5}
case $wait_max in
'' | *[!0-9]*)
	echo "segloss: SEGLOSS_APT_LOCK_WAIT must be a whole number of seconds, got '$wait_max'" >&2
	exit 2
	;;
esac
case $retry in
'' | . | *[!0-9.]* | *.*.*)
	echo "segloss: SEGLOSS_APT_RETRY must be a number of seconds, got '$retry'" >&2
	exit 2
	;;
esac

# Installed packages, in one call: "name install ok installed" lines.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null)
missing=""
for p in "$@"; do
	case "
$installed
" in
	*"
${p%%:*} install ok installed
"*) ;;
	*) missing="$missing $p" ;;
	esac
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

log=$(mktemp "${TMPDIR:-/tmp}/segloss-deps.XXXXXX") || exit 1
trap 'rm -f "$log"' EXIT
trap 'exit 130' INT TERM

# apt's lines about a lock held by another process (not "Could not open lock
# file ... Permission denied", which is a lack of rights)
lock_held='Could not get lock|is another process using it'
# apt's own wait on the dpkg locks, per attempt: the retry interval, >= 1 s
lock_timeout=${retry%%.*}
[ "${lock_timeout:-0}" -ge 1 ] || lock_timeout=1
start=$(date +%s)
said=-1

# Shows apt's error lines (or the end of its output) from the last attempt.
show_apt() {
	if grep -qE '^(E|W|Err):' "$log"; then
		grep -E '^(E|W|Err):' "$log" | sed 's/^/  apt: /' >&2
	else
		tail -n 20 "$log" | sed 's/^/  apt: /' >&2
	fi
}

# apt_get ARG...: one apt-get command, retried while another process holds an
# apt or dpkg lock, up to SEGLOSS_APT_LOCK_WAIT seconds in all; returns
# apt-get's status otherwise (output in $log).
apt_get() {
	while :; do
		t0=$(date +%s)
		$sudo apt-get -o DPkg::Lock::Timeout="$lock_timeout" "$@" >"$log" 2>&1 && return 0
		grep -qE "$lock_held" "$log" || return 1
		now=$(date +%s)
		waited=$((now - start))
		if [ "$waited" -ge "$wait_max" ]; then
			echo "segloss: gave up after $waited s waiting for the apt lock (limit SEGLOSS_APT_LOCK_WAIT=$wait_max s);" \
				"another apt-get or unattended-upgrades still holds it:" >&2
			show_apt
			exit 1
		fi
		if [ "$said" -lt 0 ]; then
			echo "segloss: waiting for the apt lock (another apt-get or unattended-upgrades is running)," \
				"up to $wait_max s ..." >&2
			# apt's "E: Could not get lock FILE. It is held by process PID (NAME)"
			{ grep -E "^E: .*($lock_held)" "$log" || grep -E "$lock_held" "$log"; } |
				head -n 1 | sed 's/^E: //; s/^/  apt: /' >&2
			said=$waited
		elif [ "$waited" -ge $((said + 30)) ]; then
			echo "segloss: still waiting for the apt lock ($waited s of $wait_max s) ..." >&2
			said=$waited
		fi
		# apt has just waited on a dpkg lock itself; a lock it does not wait
		# for (lists, archives) failed at once: pause before the next attempt
		[ $((now - t0)) -ge "$lock_timeout" ] || sleep "$retry"
	done
}

echo "segloss: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! apt_get install -y -q --no-install-recommends $missing; then
	# perhaps stale or absent package lists: refresh them, then once more
	if ! apt_get update -q; then
		echo "segloss: could not install$missing: apt-get update failed:" >&2
		show_apt
		exit 1
	fi
	# shellcheck disable=SC2086
	if ! apt_get install -y -q --no-install-recommends $missing; then
		echo "segloss: could not install$missing:" >&2
		show_apt
		exit 1
	fi
fi
if [ "$said" -ge 0 ]; then
	echo "segloss: installed$missing (after waiting $(($(date +%s) - start)) s for the apt lock)" >&2
else
	echo "segloss: installed$missing" >&2
fi

# shellcheck shell=bash
# Shell functions the benchmark scripts share; sourced, not run. Each script
# sets `me` (its name, for messages) before sourcing.

# require_root WHY exits 2 unless the script runs as root, saying why it must.
require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "${me:?}: must run as root: $1" >&2
		exit 2
	fi
}

# install_tools CMD:PACKAGE... installs, with apt-get, the Debian package of
# each command that is missing; a package is installed only then.
install_tools() {
	local pair absent=()
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || absent+=("${pair#*:}")
	done
	if ((${#absent[@]})) && command -v apt-get >/dev/null 2>&1; then
		echo "${me:?}: installing ${absent[*]}" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${absent[@]}" >/dev/null
	fi
}

# require_tools CMD:PACKAGE... exits 2 naming the first command missing.
require_tools() {
	local pair
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || { echo "${me:?}: ${pair%%:*} is needed (Debian package ${pair#*:})" >&2; exit 2; }
	done
}

# halt PID SIGNAL signals a job of the script, waits up to 10 s for it to
# end, then kills it.
# shellcheck disable=SC2317 # reached through the scripts' traps
halt() {
	[ -n "$1" ] || return 0
	if kill -"$2" "$1" 2>/dev/null; then
		timeout 10 tail --pid="$1" -f /dev/null || true
	fi
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# del_netns NS kills whatever still runs in network namespace NS and deletes
# it; it fails only when the namespace outlives that.
# shellcheck disable=SC2317 # reached through the scripts' traps
del_netns() {
	[ -e "/run/netns/$1" ] || return 0
	local pids
	for _ in $(seq 50); do
		pids=$(ip netns pids "$1" 2>/dev/null || true)
		[ -n "$pids" ] || break
		# shellcheck disable=SC2086 # one pid per word
		kill -KILL $pids 2>/dev/null || true
		sleep 0.1
	done
	ip netns del "$1" || { echo "${me:?}: could not delete network namespace $1" >&2; return 1; }
}

# fence_test_ranges makes the test hosts' ranges (198.18.0.0/15, 2001:2::/48)
# unreachable from this host's own namespace, as internal/netnstest does for
# the tests: a tool run in the wrong namespace gets "network unreachable" at
# once and sends nothing off this machine. The routes stay.
fence_test_ranges() {
	local out
	out=$(ip route add unreachable 198.18.0.0/15 2>&1) || [[ $out == *"File exists"* ]] || { echo "${me:?}: ip route add unreachable 198.18.0.0/15: $out" >&2; exit 1; }
	out=$(ip -6 route add unreachable 2001:2::/48 2>&1) || [[ $out == *"File exists"* || $out == *"not supported"* ]] || { echo "${me:?}: ip -6 route add unreachable 2001:2::/48: $out" >&2; exit 1; }
}

# make_pair SNS TNS makes a benchmark's scanner and target namespaces,
# joined by a veth pair whose ends take their names (so at most 15
# characters each): 198.18.0.1/24 on the scanner's end, 198.18.0.2/24 on the
# target's, loopback and both ends up. The test ranges are fenced first. The
# caller's trap deletes the namespaces (del_netns), which takes the pair.
make_pair() {
	local sns=$1 tns=$2 ns
	fence_test_ranges
	ip netns add "$sns"
	ip netns add "$tns"
	ip link add "$sns" netns "$sns" type veth peer name "$tns" netns "$tns"
	ip -n "$sns" addr add 198.18.0.1/24 dev "$sns"
	ip -n "$tns" addr add 198.18.0.2/24 dev "$tns"
	for ns in "$sns" "$tns"; do
		ip -n "$ns" link set lo up
		ip -n "$ns" link set "$ns" up
	done
}

# wait_up NS waits, up to 5 s, until NS's veth end (named as NS) reports
# its carrier: until then IPv6 does not answer on the link.
wait_up() {
	local _
	for _ in $(seq 50); do
		ip -n "$1" -o link show dev "$1" | grep -q 'state UP' && return 0
		sleep 0.1
	done
}

# cleanup_pair is the exit trap of the scripts that run on make_pair's two
# namespaces ($sns, $tns): it stops $bench (with $bench_signal, INT unless
# the script sets another) and $fixture, runs the script's cleanup_more if it
# has one, deletes both namespaces (which takes the veth pair and whatever
# still runs there with them) and $tmp, and exits with the script's status,
# or 1 when a step failed. No step stops the next. set_traps cleanup_pair
# installs it.
# shellcheck disable=SC2317 # reached through the scripts' traps
cleanup_pair() {
	local rc=$? ns
	trap - EXIT INT TERM
	halt "${bench:-}" "${bench_signal:-INT}"
	halt "${fixture:-}" TERM
	if declare -F cleanup_more >/dev/null; then
		cleanup_more || rc=1
	fi
	for ns in "$sns" "$tns"; do
		del_netns "$ns" || rc=1
	done
	rm -rf "${tmp:?}"
	exit "$rc"
}

# set_traps FUNC runs FUNC on every exit, ctrl-C included; an interrupt
# exits 130 and a TERM 143, through FUNC.
set_traps() {
	trap "$1" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

#!/usr/bin/env bash
# Benchmark of portkit's local socket commands (issues 3 and 11): `portkit
# who PORT`, `portkit ls` and `portkit ls -a` against ss, lsof and fuser,
# side by side, on two shapes of host:
#
#   - spread: 400 processes each listening on one loopback port and holding
#     25 established loopback connections to itself (20,400 TCP sockets);
#   - busy: the same, and beside it one process with 10,000 accepted
#     connections, whose client ends a second process holds (20,001 TCP
#     sockets more). The port asked about is another process's, so the
#     search reads both large descriptor tables for nothing.
#
# The fixture lives in a network namespace of its own, made and deleted here,
# so that the host's sockets neither add to the figures nor get disturbed, and
# its 20,000 ephemeral ports come from the namespace's own range. sidebyside
# runs inside the namespace, so no timed command pays for `ip netns exec`.
#
# Targets, on both shapes: who within 0.25x of ss's wall time; ls and ls -a
# no slower than ss; portkit's peak RSS at most 30 MiB in each (60 MiB on
# the busy shape, which has twice the sockets). Figures go
# to docs/BENCHMARKS.md (sections sockets-* and sockets-*-busy).
# Needs root; installs iproute2, lsof and psmisc with apt-get when missing.
#
#   bash bench/sockets.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-21}
procs=400
conns=25
busy=10000

me=sockets.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
require_root "it creates a network namespace (ip netns add)"
tools=(ip:iproute2 ss:iproute2 lsof:lsof fuser:psmisc)
install_tools "${tools[@]}"
require_tools "${tools[@]}"

mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/portkit ./cmd/portkit
go build -o bin/sidebyside ./bench/cmd/sidebyside
go build -o bin/sockfixture ./bench/cmd/sockfixture

ns=pkbench-$$
tmp=$(mktemp -d)
fixture=
busyfix=
bench=

# Runs on every exit, ctrl-C included: stop sidebyside and the fixture (which
# kills and reaps its children), kill by pid whatever this run left in the
# namespace, delete the namespace. Every step tolerates failure so that the
# next one still runs.
# shellcheck disable=SC2317 # reached through the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# sidebyside kills the command it is timing when interrupted.
	halt "$bench" INT
	halt "$busyfix" TERM
	halt "$fixture" TERM
	del_netns "$ns" || rc=1
	rm -rf "$tmp"
	exit "$rc"
}
set_traps cleanup

fence_test_ranges
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
inns() { ip netns exec "$ns" "$@"; }

# await_ready PID FILE waits until fixture PID has written FILE.
await_ready() {
	for _ in $(seq 1200); do # 120 s
		[ -s "$2" ] && break
		kill -0 "$1" 2>/dev/null || { echo "sockets.sh: the fixture died while setting up" >&2; exit 1; }
		sleep 0.1
	done
	[ -s "$2" ] || { echo "sockets.sh: the fixture was not ready within 120 s" >&2; exit 1; }
	[ "$(cat "/proc/$1/comm" 2>/dev/null)" = sockfixture ] || { echo "sockets.sh: pid $1 is not the fixture" >&2; exit 1; }
}

# `ip netns exec` replaces itself with the fixture, so $! is the fixture's pid,
# which cleanup signals. (Through a shell function, $! would be a subshell.)
ip netns exec "$ns" bin/sockfixture -procs "$procs" -conns "$conns" -ready "$tmp/ready" -max-lifetime 20m &
fixture=$!
await_ready "$fixture" "$tmp/ready"

mapfile -t ports <"$tmp/ready"
port=${ports[${#ports[@]} / 2]}

# The commands under test, as sidebyside splits them (blanks, no shell); they
# hold no quotes, so `read -a` below splits them the same way.
who_portkit="bin/portkit who $port"
ls_portkit="bin/portkit ls"
lsa_portkit="bin/portkit ls -a"

# portkit's socket commands are being written alongside this benchmark: say
# plainly which one is missing or failing instead of timing an error.
missing=0
for line in "$who_portkit" "$ls_portkit" "$lsa_portkit"; do
	read -ra argv <<<"$line"
	rc=0
	inns "${argv[@]}" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if ((rc != 0)); then
		echo "sockets.sh: \`$line\` failed (exit $rc) in the namespace; does bin/portkit have this command yet?" >&2
		sed 's/^/    /' "$tmp/err" | head -5 >&2
		missing=1
	elif ! [ -s "$tmp/out" ]; then
		echo "sockets.sh: \`$line\` printed nothing, though the fixture is running" >&2
		missing=1
	fi
done
((missing == 0)) || exit 1

# sidebyside runs inside the namespace as a job waited for: a signal to this
# script then runs the trap at once, not once the section is over. `ip netns
# exec` replaces itself with sidebyside, so $! is sidebyside.
sidebyside() {
	ip netns exec "$ns" bin/sidebyside "$@" &
	bench=$!
	local rc=0
	wait "$bench" || rc=$?
	bench=
	return "$rc"
}

# bench_shape SUFFIX DESCRIPTION RSS checks portkit's answers against ss's
# on the namespace as it is, then times who, ls and ls -a, into the sections
# sockets-who$SUFFIX, sockets-ls$SUFFIX and sockets-ls-a$SUFFIX, with a cap
# of RSS MiB on portkit's peak RSS.
bench_shape() {
	local suffix=$1 shape=$2 rss=$3 sockets listening owner measured who_pid n check rc=0
	sockets=$(inns ss -tanH | wc -l)
	listening=$(inns ss -tlnH | wc -l)
	owner=$(inns ss -ltnpH "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 || true)
	echo "fixture ($shape): $sockets TCP sockets in namespace $ns, $listening listening;" \
		"port $port (listener $((${#ports[@]} / 2 + 1)) of ${#ports[@]}, ${owner:-owner not found})"
	measured="$sockets TCP sockets, $listening listeners ($shape)"

	# The answers are checked against ss's before anything is timed: a
	# faster wrong answer is no result. The fixture holds still, so the
	# counts agree.
	who_pid=$(inns bin/portkit who "$port" --json | grep -o '"pid": [0-9]*' | head -1 | grep -o '[0-9]*$' || true)
	if [ "pid=$who_pid" != "$owner" ]; then
		echo "sockets.sh: portkit who $port names pid ${who_pid:-none}, ss ${owner:-none}" >&2
		return 1
	fi
	for check in "ls --tcp:$listening" "ls -a --tcp:$sockets"; do
		read -ra argv <<<"${check%:*}"
		n=$(inns bin/portkit "${argv[@]}" --json | grep -c '"protocol"' || true)
		if [ "$n" != "${check##*:}" ]; then
			echo "sockets.sh: portkit ${check%:*} lists $n TCP sockets, ss ${check##*:}" >&2
			return 1
		fi
	done

	# The peers exit 0 on this port, since it is listened on; any other
	# exit code is a failure worth seeing rather than a figure. The quotes
	# keep ss's filter one argument, as ss expects it.
	sidebyside -title "who: the process on port $port among $measured (portkit who vs ss, lsof, fuser)" \
		-runs "$runs" -warmup 3 \
		-cmd "portkit=$who_portkit" \
		-cmd "ss=ss -ltnpH 'sport = :$port'" \
		-cmd "lsof=lsof -nP -iTCP:$port -sTCP:LISTEN" \
		-cmd "fuser=fuser -n tcp $port" \
		-md docs/BENCHMARKS.md -section "sockets-who$suffix" \
		-max-ratio 'portkit/ss<=0.25' -max-rss "portkit<=$rss" || rc=1

	echo
	sidebyside -title "ls: listening TCP sockets with their processes among $measured (portkit ls vs ss -ltnp)" \
		-runs "$runs" -warmup 3 \
		-cmd "portkit=$ls_portkit" -cmd "ss=ss -ltnp" \
		-md docs/BENCHMARKS.md -section "sockets-ls$suffix" \
		-max-ratio 'portkit/ss<=1' -max-rss "portkit<=$rss" || rc=1

	echo
	sidebyside -title "ls -a: all TCP sockets with their processes, $measured (portkit ls -a vs ss -tanp)" \
		-runs "$runs" -warmup 3 \
		-cmd "portkit=$lsa_portkit" -cmd "ss=ss -tanp" \
		-md docs/BENCHMARKS.md -section "sockets-ls-a$suffix" \
		-max-ratio 'portkit/ss<=1' -max-rss "portkit<=$rss" || rc=1
	return "$rc"
}

status=0
bench_shape "" "spread: $procs processes x $conns connections" 30 || status=1

# The busy shape: a second fixture in the namespace adds one process with
# $busy accepted connections (its parent holds the client ends) and one
# idle listener, beside the first fixture's processes.
echo
ip netns exec "$ns" bin/sockfixture -procs 1 -conns 0 -busy "$busy" -ready "$tmp/ready-busy" -max-lifetime 15m &
busyfix=$!
await_ready "$busyfix" "$tmp/ready-busy"
# Twice the sockets: ls -a holds twice the rows, so twice the memory cap.
bench_shape -busy "busy: $procs processes x $conns connections, and one with $busy accepted" 60 || status=1

# Figures taken on a fixture that lost processes on the way would not
# describe what the titles say.
for pid in "$fixture" "$busyfix"; do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "sockets.sh: a fixture died during the benchmark; the figures are not valid" >&2
		status=1
	fi
done
exit $status

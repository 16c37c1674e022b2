#!/usr/bin/env bash
# Benchmark of `portkit forward` (issue 5) against socat and rinetd, and
# against no forwarder at all, side by side in one run, in a network
# namespace made and deleted here: every server, forwarder and load runs on
# the namespace's loopback, and nothing else shares it.
#
# bench/cmd/fwdbench runs inside the namespace, starts the servers (iperf3 and
# bench/cmd/fwdtarget: HTTP/1.0, TCP echo, UDP echo) and the forwarders, makes
# the load, reads the forwarders' CPU, RSS and fds from /proc, and writes the
# sections forward, forward-tcp, forward-churn, forward-idle and forward-udp
# of docs/BENCHMARKS.md:
#
#   forward-tcp    iperf3, 1 and 8 streams, 10 s each: direct, portkit, socat,
#                  rinetd, in 3 rounds; Gbit/s and the forwarder's CPU per GB.
#                  Targets: portkit >= 1.5x socat, >= 1.2x rinetd and >= 70%
#                  of direct, with 1 stream and with 8.
#   forward-churn  20,000 short HTTP/1.0 connections, 50 at a time, in 3
#                  rounds: direct, portkit, socat and the floor
#                  (bench/cmd/splicefloor -poller: accept, dial, splice both
#                  ways, nothing else); conn/s, p50 and p99, the latency
#                  added, CPU per connection. Targets: every connection
#                  through portkit completes; portkit's CPU per connection
#                  and the latency it adds at p50 and at p99 <= 1.2x the
#                  floor's.
#   forward-idle   10,000 idle connections held through portkit: RSS per
#                  connection <= 20 KiB; fds and goroutines (from --metrics)
#                  back to their baseline once closed. Where portkit's open-file
#                  limit (which this script raises when the machine lets it)
#                  leaves no room for 10,000, as many as fit, and the section
#                  says so.
#   forward-udp    200,000 datagrams of 64 and of 1,200 bytes, at most 64
#                  outstanding, in 3 rounds: direct, portkit, socat; replies/s
#                  and loss.
#
# In the namespace the ephemeral port range is 10000-65000 (every fixed port
# here is below 10000), so that rounds of 20,000 short connections do not run
# out of ports. A full run takes about 9 minutes, --quick (3 s iperf3 runs,
# 2,000 churn connections, 1,000 idle ones, 20,000 datagrams) about 3.
# Needs root; installs iproute2, iperf3, socat and rinetd with apt-get when
# missing. Exits 1 when a target is missed or a run fails, and when
# bin/portkit has no forward command yet (its rows are then left out).
# --only tcp|churn|idle|udp runs that section alone (and the introduction).
#
#   bash bench/forward.sh [--quick] [--only SECTION]
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: bash bench/forward.sh [--quick] [--only tcp|churn|idle|udp]"
args=("$@")
quick=0
only=
while (($#)); do
	case $1 in
	--quick) quick=1 ;;
	--only)
		case ${2:-} in
		tcp | churn | idle | udp) only=$2 ;;
		*) echo "forward.sh: --only \"${2:-}\": want tcp, churn, idle or udp; $usage" >&2; exit 2 ;;
		esac
		shift
		;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) echo "forward.sh: unknown argument $1; $usage" >&2; exit 2 ;;
	esac
	shift
done

me=forward.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
require_root "it creates a network namespace (ip netns add)"
# wanted SECTION: whether --only leaves it in.
wanted() { [[ -z $only || $only == "$1" ]]; }

# Only what the sections to run use: iperf3 and rinetd are for tcp alone.
tools=(ip:iproute2)
if wanted tcp; then tools+=(iperf3:iperf3 rinetd:rinetd); fi
if wanted tcp || wanted churn || wanted udp; then tools+=(socat:socat); fi
install_tools "${tools[@]}"
require_tools "${tools[@]}"

mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/portkit ./cmd/portkit
go build -o bin/fwdbench ./bench/cmd/fwdbench
go build -o bin/fwdtarget ./bench/cmd/fwdtarget
go build -o bin/splicefloor ./bench/cmd/splicefloor

# 10,000 connections held through one process take 20,000 sockets there,
# and more with splice pipes. Raise the open-file limit as far as the
# machine allows (raising the hard limit needs CAP_SYS_RESOURCE); fwdbench
# holds as many connections as the limit leaves room for and says so.
want_files=262144
if ! ulimit -n "$want_files" 2>/dev/null; then
	ulimit -n "$(ulimit -Hn)"
	echo "forward.sh: open files limited to $(ulimit -n) (hard limit); the idle benchmark holds what fits" >&2
fi

ns=pkfwd$$
bench=

# Runs on every exit, ctrl-C included: stop fwdbench (which stops the
# servers and forwarders it started, each in a process group of its own),
# kill by pid whatever is still running in the namespace, delete it. No step
# stops the next.
# shellcheck disable=SC2317 # reached through the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	halt "$bench" INT
	del_netns "$ns" || rc=1
	exit "$rc"
}
set_traps cleanup

fence_test_ranges
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
# Both are per network namespace: the host's stay as they are.
ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1

if ((quick)); then
	tcpflags=(-seconds 3 -rounds 3)
	churnflags=(-conns 2000 -rounds 3)
	idleflags=(-conns 1000)
	udpflags=(-datagrams 20000 -rounds 3)
else
	tcpflags=(-seconds 10 -rounds 3)
	churnflags=(-conns 20000 -rounds 3)
	idleflags=(-conns 10000)
	udpflags=(-datagrams 200000 -rounds 3)
fi

# fwdbench runs inside the namespace as a job waited for, so that a signal
# to this script runs the trap at once. `ip netns exec` replaces itself with
# fwdbench, so $! is fwdbench.
produced_by="bash bench/forward.sh${args[*]:+ ${args[*]}}"
fwdbench() {
	ip netns exec "$ns" bin/fwdbench "$@" -portkit bin/portkit -target bin/fwdtarget \
		-command "$produced_by" -md docs/BENCHMARKS.md &
	bench=$!
	local rc=0
	wait "$bench" || rc=$?
	bench=
	return "$rc"
}

status=0
fwdbench about -section forward >/dev/null || status=1
if wanted tcp; then
	echo "== forward-tcp: iperf3 throughput and CPU per GB"
	fwdbench tcp "${tcpflags[@]}" -splicefloor bin/splicefloor -section forward-tcp || status=1
	echo
fi
if wanted churn; then
	echo "== forward-churn: short connections"
	fwdbench churn "${churnflags[@]}" -splicefloor bin/splicefloor -section forward-churn || status=1
	echo
fi
if wanted idle; then
	echo "== forward-idle: idle connections held through portkit"
	fwdbench idle "${idleflags[@]}" -section forward-idle || status=1
	echo
fi
if wanted udp; then
	echo "== forward-udp: datagrams echoed"
	fwdbench udp "${udpflags[@]}" -section forward-udp || status=1
fi
exit $status

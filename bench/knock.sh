#!/usr/bin/env bash
# Benchmark of `portkit knockd` (issue 12) against fwknopd (single packet
# authorization) and knockd (knock sequences), side by side in one run.
#
# Fixture, made and removed here: a client network namespace joined by a
# veth pair to each of three target namespaces, one per server:
#
#   client 198.18.1.1 -- 198.18.1.2 portkit knockd (and portkit firewall)
#   client 198.18.2.1 -- 198.18.2.2 fwknopd (libpcap, iptables-nft)
#   client 198.18.3.1 -- 198.18.3.2 knockd (libpcap, its command runs nft)
#
# Each target namespace's veth end has the namespace's name. All traffic
# stays between them (198.18.0.0/15 is the benchmarking range, RFC 2544;
# the flood's spoofed sources are in 198.19.128.0/17 and go nowhere).
# bench/cmd/knockbench runs in the client namespace, starts the servers in
# theirs (each with the same SPA keys and a listener on the protected port
# 2222, bench/cmd/fwdtarget), and writes the sections of docs/BENCHMARKS.md:
#
#   knock-open    from the client's send to the first connect to the opened
#                 port, 100 trials per server and client (30 with --quick):
#                 portkit vs fwknopd with the stock fwknop client's packets,
#                 portkit vs knockd with the stock knock client. Targets:
#                 portkit's p99 <= 1/5 of fwknopd's and of knockd's; every
#                 trial opened.
#   knock-flood   10 s (3 s with --quick) of junk from one raw-socket
#                 sender: random UDP to the SPA port of portkit and fwknopd,
#                 SYNs to the knock ports of portkit and knockd, with 100
#                 valid SPA packets sent to both during it. Targets: all 100
#                 open portkit's port; portkit's RSS flat once its table of
#                 sources is full. CPU and RSS of all three side by side.
#   knock-replay  the replay cache with 1,000,000 digests, in process
#                 (BenchmarkLookup1M through bench/cmd/gobench). Target: a
#                 lookup under 1 µs, no allocation.
#   knock-replay-load  a cache file of 1,000,000 digests loaded as knockd
#                 loads it at start: time, RSS, look-ups over 65,536 probes.
#
# --only open|flood|replay|replay-load runs that section alone (and the
# introduction).
#
# A full run takes about 2.5 minutes, --quick about 1.5. Needs root; installs
# iproute2, nftables, iptables, fwknop-client, fwknop-server and knockd with
# apt-get when missing (the Debian packages start no daemon here: nothing
# else on the machine is changed). Exits 1 when a target is missed or a run
# fails.
#
#   bash bench/knock.sh [--quick] [--only SECTION]
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: bash bench/knock.sh [--quick] [--only open|flood|replay|replay-load]"
args=("$@")
quick=0
only=
while (($#)); do
	case $1 in
	--quick) quick=1 ;;
	--only)
		case ${2:-} in
		open | flood | replay | replay-load) only=$2 ;;
		*) echo "knock.sh: --only \"${2:-}\": want open, flood, replay or replay-load; $usage" >&2; exit 2 ;;
		esac
		shift
		;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) echo "knock.sh: unknown argument $1; $usage" >&2; exit 2 ;;
	esac
	shift
done

me=knock.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
# wanted SECTION: whether --only leaves it in.
wanted() { [[ -z $only || $only == "$1" ]]; }
require_root "it creates network namespaces, changes their firewalls and sends raw packets"
tools=(ip:iproute2 nft:nftables iptables:iptables fwknop:fwknop-client fwknopd:fwknop-server knock:knockd knockd:knockd)
install_tools "${tools[@]}"
require_tools "${tools[@]}"

mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/portkit ./cmd/portkit
go build -o bin/knockbench ./bench/cmd/knockbench
go build -o bin/fwdtarget ./bench/cmd/fwdtarget
go build -o bin/gobench ./bench/cmd/gobench

# The veth ends take the namespaces' names: at most 15 characters.
cns=pkknc$$
pns=pkknp$$
fns=pkknf$$
kns=pkknk$$
bench=

# Runs on every exit, ctrl-C included: stop knockbench (which stops the
# servers and listeners it started, each in a process group of its own),
# kill by pid whatever still runs in the namespaces, and delete them, which
# takes the veth pairs and every firewall table and rule made in them along.
# No step stops the next.
# shellcheck disable=SC2317 # reached through the trap
cleanup() {
	local rc=$? ns
	trap - EXIT INT TERM
	halt "$bench" INT
	for ns in "$pns" "$fns" "$kns" "$cns"; do
		del_netns "$ns" || rc=1
	done
	exit "$rc"
}
set_traps cleanup

ip netns add "$cns"
ip -n "$cns" link set lo up
i=1
for ns in "$pns" "$fns" "$kns"; do
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip link add "${cns}$i" netns "$cns" type veth peer name "$ns" netns "$ns"
	ip -n "$cns" addr add "198.18.$i.1/24" dev "${cns}$i"
	ip -n "$ns" addr add "198.18.$i.2/24" dev "$ns"
	ip -n "$cns" link set "${cns}$i" up
	ip -n "$ns" link set "$ns" up
	i=$((i + 1))
done
for ns in "$pns" "$fns" "$kns"; do
	for _ in $(seq 50); do
		ip -n "$ns" -o link show dev "$ns" | grep -q 'state UP' && break
		sleep 0.1
	done
done

if ((quick)); then
	openflags=(-trials 30)
	floodflags=(-seconds 3 -valid 100)
else
	openflags=(-trials 100)
	floodflags=(-seconds 10 -valid 100)
fi

# knockbench runs inside the client namespace as a job waited for, so that
# a signal to this script runs the trap at once. `ip netns exec` replaces
# itself with knockbench, so $! is knockbench.
produced_by="bash bench/knock.sh${args[*]:+ ${args[*]}}"
knockbench() {
	ip netns exec "$cns" bin/knockbench "$@" -ns-portkit "$pns" -ns-fwknopd "$fns" -ns-knockd "$kns" \
		-portkit bin/portkit -target bin/fwdtarget -command "$produced_by" -md docs/BENCHMARKS.md &
	bench=$!
	local rc=0
	wait "$bench" || rc=$?
	bench=
	return "$rc"
}

status=0
knockbench about -section knock >/dev/null || status=1
if wanted open; then
	echo "== knock-open: latency from the client's send to the first connect"
	knockbench open "${openflags[@]}" -section knock-open || status=1
	echo
fi
if wanted flood; then
	echo "== knock-flood: junk flood, valid SPA packets counted, CPU and RSS"
	knockbench flood "${floodflags[@]}" -section knock-flood || status=1
	echo
fi
if wanted replay; then
	echo "== knock-replay: replay cache with 1,000,000 digests"
	gocmd="go test -run '^\$' -bench 'Lookup1M\$' -benchmem -count 1 ./knock/replay"
	eval "$gocmd" | bin/gobench -title "replay cache lookups, 1,000,000 digests, in process" -command "$gocmd" \
		-want BenchmarkLookup1M -max-ns 1000 -max-allocs 0 -md docs/BENCHMARKS.md -section knock-replay || status=1
	echo
fi
if wanted replay-load; then
	echo "== knock-replay-load: a cache file of 1,000,000 digests loaded"
	bin/knockbench replay -digests 1000000 -command "$produced_by" -md docs/BENCHMARKS.md -section knock-replay-load || status=1
fi
exit $status

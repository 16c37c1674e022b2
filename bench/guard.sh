#!/usr/bin/env bash
# Benchmark of `portkit guard` (issue 13) against scanlogd, side by side in
# one run: detection and time to first alert of every scan type, false
# alerts on benign traffic, and the cost of a spoofed SYN flood.
#
# Fixture, made and removed here: two network namespaces joined by a veth
# pair, scanner 198.18.0.1/24 and target 198.18.0.2/24 (198.18.0.0/15 is
# the benchmarking range, RFC 2544; fence_test_ranges keeps it off this
# host's own namespace). On the target bench/cmd/scanfixture listens on 25–30
# TCP ports drawn from a seed. bench/cmd/guardbench starts, in the target
# namespace, `portkit guard` (its defaults, JSON Lines on stdout, metrics on
# its loopback) and scanlogd (Debian's, its compiled-in defaults), whose
# syslog goes to a datagram socket guardbench listens on: scanlogd runs in
# the mount namespace `ip netns exec` gives it, where a directory of ours,
# holding that socket as
# `log` and /dev/null, zero, random and urandom, is bound over /dev, and a
# tmpfs over /run holds the directory it chroots to. Then,
# one after another, each from its own source address (198.18.0.10 on),
# nmap -sS -sT -sF -sN -sX -sA -sM -sW (TCP 20000-20099 and the fixture's
# open ports) and -sU (UDP 20000-20099), masscan at 2,000/s, and portkit's
# SYN, connect and UDP scans; then the benign traffic from 198.18.0.1; then
# the flood from 100,000 spoofed sources of 198.18.1.0–198.19.255.255
# (bounded by --flood-count and --flood-for). It writes the section "guard"
# of docs/BENCHMARKS.md.
#
# psad (Debian's, its defaults but for the paths, no e-mail, no whois, no
# check of the firewall's logging) reads iptables LOG lines from a file. In
# the target namespace iptables (nft) logs, with psad's recommended rules,
# inbound packets neither of a connection under way nor to an open port
# (nothing is dropped); the kernel writes a namespace's LOG lines only when
# net.netfilter.nf_log_all_netns is 1, which this script sets for the run
# and puts back on exit (it is host-wide: other namespaces' LOG rules log
# meanwhile too). guardbench copies the lines carrying the rules' prefix
# from /dev/kmsg into psad's file, in syslogd's format, and psad, run in the
# foreground in the target namespace, logs to the same socket as scanlogd.
# --no-psad leaves psad and the sysctl alone. The rules go before the flood,
# which would otherwise fill the host's kernel log.
#
# --repeat N runs every scan N times (1-18), each run from its own source
# address; the table shows each scan's medians. --scans-only stops after
# the scans and prints their table without writing docs/BENCHMARKS.md.
#
# It takes about 5 minutes, and a minute more for each repeat.
#
#   bash bench/guard.sh [--no-psad] [--repeat N] [--scans-only] [--seed N] [--flood-count N] [--flood-for DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: bash bench/guard.sh [--no-psad] [--repeat N] [--scans-only] [--seed N] [--flood-count N] [--flood-for DURATION]"
args=("$@")
seed=
floodcount=2000000
floodfor=20s
psad=1
repeat=1
scansonly=()
while (($#)); do
	case $1 in
	--no-psad) psad=0 ;;
	--repeat) repeat=${2:?$usage}; shift ;;
	--scans-only) scansonly=(-scans-only) ;;
	--seed) seed=${2:?$usage}; shift ;;
	--flood-count) floodcount=${2:?$usage}; shift ;;
	--flood-for) floodfor=${2:?$usage}; shift ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) echo "guard.sh: unknown argument $1; $usage" >&2; exit 2 ;;
	esac
	shift
done
[[ $seed =~ ^[0-9]*$ && $repeat =~ ^([1-9]|1[0-8])$ && $floodcount =~ ^[1-9][0-9]*$ && $floodfor =~ ^[1-9][0-9]*(ms|s|m)$ ]] ||
	{ echo "guard.sh: --seed and --flood-count take numbers, --repeat 1 to 18, --flood-for a duration (20s); $usage" >&2; exit 2; }
seed=${seed:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}

me=guard.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
require_root "it creates network namespaces and sends raw packets"
tools=(ip:iproute2 nmap:nmap masscan:masscan scanlogd:scanlogd)
((psad)) && tools+=(psad:psad iptables:iptables)
install_tools "${tools[@]}"
require_tools "${tools[@]}"

mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/portkit ./cmd/portkit
go build -o bin/guardbench ./bench/cmd/guardbench
go build -o bin/scanfixture ./bench/cmd/scanfixture

sns=pkgds$$
tns=pkgdt$$
tmp=$(mktemp -d)
fixture=
bench=
nflog=

# On every exit, ctrl-C included, lib.sh's cleanup_pair stops guardbench
# (with TERM: it then stops guard) and the fixture, puts nf_log_all_netns
# back (cleanup_more), and deletes both namespaces with whatever else runs
# there (scanlogd).
bench_signal=TERM
# shellcheck disable=SC2317 # reached through cleanup_pair
cleanup_more() {
	[ -z "$nflog" ] || echo "$nflog" >/proc/sys/net/netfilter/nf_log_all_netns
}
set_traps cleanup_pair

make_pair "$sns" "$tns"
# The flood's sources answered through the scanner (which drops what
# comes back): the target's resets are sent, as they would be.
ip -n "$tns" route add 198.18.0.0/15 via 198.18.0.1
for ns in "$sns" "$tns"; do
	wait_up "$ns"
done
# Every closed UDP port answered (as in guard's own namespace tests).
ip netns exec "$tns" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=1000000 net.ipv4.icmp_msgs_burst=1000000
mac=$(ip netns exec "$tns" cat "/sys/class/net/$tns/address")

ip netns exec "$tns" bin/scanfixture -seed "$seed" -host 198.18.0.2 -ready "$tmp/plan.json" -max-lifetime 30m &
fixture=$!
deadline=$((SECONDS + 30))
until [ -s "$tmp/plan.json" ]; do
	kill -0 "$fixture" 2>/dev/null || { echo "guard.sh: the fixture died while setting up" >&2; exit 1; }
	((SECONDS < deadline)) || { echo "guard.sh: the fixture was not ready within 30 s" >&2; exit 1; }
	sleep 0.1
done

mkdir "$tmp/dev"
psadflags=()
if ((psad)); then
	mkdir -p "$tmp/psad/log" "$tmp/psad/run" "$tmp/psad/fifo"
	: >"$tmp/psad/messages"
	sed -e "s|^HOSTNAME .*|HOSTNAME bench;|" \
		-e "s|^IPT_SYSLOG_FILE .*|IPT_SYSLOG_FILE $tmp/psad/messages;|" \
		-e "s|^ENABLE_FW_LOGGING_CHECK .*|ENABLE_FW_LOGGING_CHECK N;|" \
		-e "s|^ALERTING_METHODS .*|ALERTING_METHODS noemail;|" \
		-e "s|^ENABLE_WHOIS_LOOKUPS .*|ENABLE_WHOIS_LOOKUPS N;|" \
		-e "s|^PSAD_DIR .*|PSAD_DIR $tmp/psad/log;|" \
		-e "s|^PSAD_RUN_DIR .*|PSAD_RUN_DIR $tmp/psad/run;|" \
		-e "s|^PSAD_FIFO_DIR .*|PSAD_FIFO_DIR $tmp/psad/fifo;|" \
		/etc/psad/psad.conf >"$tmp/psad/psad.conf"
	nflog=$(cat /proc/sys/net/netfilter/nf_log_all_netns)
	echo 1 >/proc/sys/net/netfilter/nf_log_all_netns
	psadflags=(-psad-conf "$tmp/psad/psad.conf" -psad-messages "$tmp/psad/messages")
fi
produced_by="bash bench/guard.sh${args[*]:+ ${args[*]}}"
bin/guardbench run "${psadflags[@]}" "${scansonly[@]}" -repeat "$repeat" -scanner-ns "$sns" -target-ns "$tns" -router-mac "$mac" -plan "$tmp/plan.json" \
	-portkit bin/portkit -self bin/guardbench -devdir "$tmp/dev" -flood-count "$floodcount" -flood-for "$floodfor" \
	-md docs/BENCHMARKS.md -section guard -command "$produced_by" &
bench=$!
status=0
wait "$bench" || status=$?
bench=
exit $status

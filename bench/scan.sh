#!/usr/bin/env bash
# Benchmark of `portkit scan` (issue 4) against nmap and masscan, side by
# side, every run scored against the truth (which ports the fixture opened).
#
# Fixture, made and removed here: two network namespaces joined by a veth
# pair, scanner 198.18.0.1/24 and target 198.18.0.2/24, all traffic between
# them and nowhere else (198.18.0.0/15 is the benchmarking range, RFC 2544).
# On the target bench/cmd/scanfixture listens on 25–30 TCP ports of
# 198.18.0.2 drawn from a seed, and on one to three of portkit's top 100
# ports of about half of 1,024 more addresses, 198.18.4.0/22, made local on
# the target's loopback and routed there from the scanner, as is 198.19.0.0/16,
# where nothing listens. bench/cmd/scanbench runs the scanners inside the
# scanner's namespace and writes six sections of docs/BENCHMARKS.md:
#
#   scan-full   1–65535 of 198.18.0.2: portkit --syn vs nmap -sS and masscan,
#               portkit --connect vs nmap -sT, and scan/internal/synfloor,
#               the least a SYN scan must do here (the fixture's floor).
#               Targets: portkit SYN ≤ 1/3 of nmap -sS's wall time, connect
#               ≤ 1/2 of nmap -sT's; every open port found and every closed
#               port reported closed, every run.
#   scan-sweep  198.18.4.0/22 × portkit's top 100 ports, every tool at the
#               same rate. Target: every open port found, every run.
#   scan-shard  the sweep in 4 shards with one seed: disjoint, and their union
#               is the unsharded scan.
#   scan-rss    portkit --syn --top 100 over 198.19.0.0/16 (6.5 million
#               probes, every one closed) through the CLI, every result
#               written as JSON Lines to /dev/null, at --rss-rate (default
#               100,000/s); not with --quick. Target: peak RSS under 100 MiB.
#   scan-loss   as scan-full with nftables in the target namespace dropping 5%
#               of TCP packets each way. Targets: every open port found and
#               at most 10 s, every run. nmap takes 4–8 minutes a run here,
#               so it runs once, after the other tools' rounds, each run
#               capped at 10 minutes; --quick runs portkit only.
#   scan-udp    portkit scan -U vs nmap -sU against bench/cmd/udpfixture on
#               198.18.0.2 (DNS on 53, echo on 7 and 777, 161 bound and
#               silent, the rest closed), which scanbench starts in the
#               target namespace for each row: ICMP limits lifted; the same
#               without the silent port; port 161 alone; every UDP packet
#               dropped by nftables; the kernel's default ICMP limit (ports
#               1-100 for both tools, once each: about 100 s for nmap); and
#               that row again with portkit sending from the 16 addresses of
#               198.18.0.16/28, added to the scanner's veth here. Targets:
#               portkit ≤ 1/2 of nmap's time in the first four rows, ≤ 1/10
#               of nmap's default-limit time from 16 addresses, every port's
#               state right in every run. About 3 minutes; --runs sets its
#               rounds too (default 3 for it alone).
#
# Two things keep the comparison fair to masscan. Segmentation offload is
# turned off on the veth ends (ethtool -K tso off gso off): with it on, masscan
# found 23–28 of 29 open ports a run, 713–743 of 927 in the sweep, and with it
# off all of them (portkit and nmap find all either way). And the fixture sends a
# one-byte UDP datagram to the scanner every 100 ms, for masscan's sake: its
# libpcap receive thread notices the end of its final wait only when a packet
# arrives, and on a silent link one run went on for 7 minutes.
#
# The default run takes about 21 minutes, 15 of them nmap under loss;
# --quick about 3. --slow-together runs nmap -sS and -sT under loss at the
# same time, which saves about 7 minutes but may slow -sT, whose time varies
# widely anyway: alone, -sS took 419 and 442 s and -sT 233 and 480 s (51 s
# of CPU); together, -sS 421 and 391 s and -sT 474 s and over 600 s (killed
# at the limit).
#
# --only SECTIONS runs those sections alone (a comma-separated list of
# full, sweep, shard, rss, loss, udp): `bash bench/scan.sh --only udp`.
#
#   bash bench/scan.sh [--quick | --slow-together] [--only SECTIONS] [--seed N] [--rate PPS] [--rss-rate PPS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: bash bench/scan.sh [--quick | --slow-together] [--only SECTIONS] [--seed N] [--rate PPS] [--rss-rate PPS] [RUNS]"
args=("$@")
runs=
only=full,sweep,shard,rss,loss,udp
quick=0
lossflags=()
seed=
rate=20000
rssrate=100000
while (($#)); do
	case $1 in
	--quick) quick=1 lossflags+=(-quick) ;;
	--slow-together) lossflags+=(-slow-together) ;;
	--seed) seed=${2:?$usage}; shift ;;
	--rate) rate=${2:?$usage}; shift ;;
	--rss-rate) rssrate=${2:?$usage}; shift ;;
	--only) only=${2:?$usage}; shift ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*[!0-9]* | '') echo "scan.sh: unknown argument $1; $usage" >&2; exit 2 ;;
	*) runs=$1 ;;
	esac
	shift
done
[[ $seed =~ ^[0-9]*$ && $rate =~ ^[1-9][0-9]*$ && $rssrate =~ ^[1-9][0-9]*$ ]] || { echo "scan.sh: --seed, --rate and --rss-rate take numbers; $usage" >&2; exit 2; }
seed=${seed:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
for s in ${only//,/ }; do
	case $s in
	full | sweep | shard | rss | loss | udp) ;;
	*) echo "scan.sh: --only $only: unknown section $s (want full, sweep, shard, rss, loss, udp); $usage" >&2; exit 2 ;;
	esac
done
want() { [[ ,$only, == *,$1,* ]]; }
tcpwanted=0
for s in full sweep shard rss loss; do
	want "$s" && tcpwanted=1
done
# The UDP section alone defaults to 3 rounds, the others to 5.
if [ -z "$runs" ]; then
	runs=5
	((tcpwanted)) || runs=3
fi

me=scan.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
require_root "it creates network namespaces and sends raw packets"
tools=(ip:iproute2 nmap:nmap masscan:masscan nft:nftables)
install_tools "${tools[@]}" ethtool:ethtool # ethtool is optional (see above)
require_tools "${tools[@]}"

mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/portkit ./cmd/portkit
go build -o bin/scanbench ./bench/cmd/scanbench
go build -o bin/scanfixture ./bench/cmd/scanfixture
go build -o bin/synfloor ./scan/internal/synfloor
go build -o bin/udpfixture ./bench/cmd/udpfixture

# The veth ends take the namespaces' names: at most 15 characters.
sns=pkscs$$
tns=pksct$$
tmp=$(mktemp -d)
fixture=
bench=

# On every exit, ctrl-C included, lib.sh's cleanup_pair stops scanbench
# (which kills the scanner it is running) and the fixture, and deletes both
# namespaces, which takes the veth pair and the loss rules with them.
set_traps cleanup_pair

make_pair "$sns" "$tns"
# The sweep: the whole /22 is local on the target's loopback (a local route,
# as 127.0.0.0/8 is), reached from the scanner through the target's veth.
ip -n "$tns" route add local 198.18.4.0/22 dev lo
ip -n "$sns" route add 198.18.4.0/22 via 198.18.0.2
# The memory benchmark: a /16 where nothing listens, the same way.
ip -n "$tns" route add local 198.19.0.0/16 dev lo
ip -n "$sns" route add 198.19.0.0/16 via 198.18.0.2
# The UDP section's extra source addresses: 198.18.0.16/28 on the
# scanner's veth, each a /32 (the target reaches them through its /24).
sources=198.18.0.16/28
for i in $(seq 16 31); do
	ip -n "$sns" addr add "198.18.0.$i/32" dev "$sns"
done
for ns in "$sns" "$tns"; do
	wait_up "$ns"
	# Without segmentation offload, as on a plain NIC; with it, masscan
	# misses replies (see above).
	if command -v ethtool >/dev/null 2>&1; then
		ip netns exec "$ns" ethtool -K "$ns" tso off gso off >/dev/null
	else
		echo "scan.sh: no ethtool: segmentation offload stays on, and masscan misses ports for it" >&2
	fi
done
mac=$(ip netns exec "$tns" cat "/sys/class/net/$tns/address")

# `ip netns exec` replaces itself with the fixture, so $! is the fixture's pid.
# -beacon: a byte to the scanner's discard port every 100 ms (see above).
# The UDP section starts its own fixture, row by row; this one serves the
# TCP sections, and a plan file is all the UDP section needs of it.
if ((tcpwanted)); then
	ip netns exec "$tns" bin/scanfixture -seed "$seed" -host 198.18.0.2 -sweep 198.18.4.0/22 -sweep-top 100 \
		-beacon 198.18.0.1:9 -ready "$tmp/plan.json" -max-lifetime 40m &
	fixture=$!
	# It writes the plan once every listener is up (atomically).
	deadline=$((SECONDS + 30))
	until [ -s "$tmp/plan.json" ]; do
		kill -0 "$fixture" 2>/dev/null || { echo "scan.sh: the fixture died while setting up" >&2; exit 1; }
		((SECONDS < deadline)) || { echo "scan.sh: the fixture was not ready within 30 s" >&2; exit 1; }
		sleep 0.1
	done

	# A SYN scan of a few ports first: if portkit's SYN engine cannot work in
	# the namespace, say so plainly; the benchmarks still run and show it.
	rc=0
	ip netns exec "$sns" bin/portkit scan --syn -p 1-1024 --no-progress -o jsonl 198.18.0.2 >/dev/null 2>"$tmp/smoke.err" || rc=$?
	if ((rc > 1)); then
		echo "scan.sh: \`portkit scan --syn -p 1-1024 198.18.0.2\` failed in the scanner namespace (exit $rc):" >&2
		sed 's/^/    /' "$tmp/smoke.err" | head -20 >&2
	fi
fi

# scanbench runs inside the scanner namespace as a job waited for, so that a
# signal to this script runs the trap at once. `ip netns exec` replaces
# itself with scanbench, so $! is scanbench.
scanbench() {
	ip netns exec "$sns" bin/scanbench "$@" -plan "$tmp/plan.json" -portkit bin/portkit \
		-adapter "$sns" -adapter-ip 198.18.0.1 -router-mac "$mac" -target-ns "$tns" \
		-command "$produced_by" -md docs/BENCHMARKS.md &
	bench=$!
	local rc=0
	wait "$bench" || rc=$?
	bench=
	return "$rc"
}

produced_by="bash bench/scan.sh${args[*]:+ ${args[*]}}"
status=0
if want full; then
	echo "== scan-full: 1–65535 of 198.18.0.2, no loss, $runs runs"
	scanbench full -runs "$runs" -warmup 1 -floor bin/synfloor -section scan-full || status=1
	echo
fi
if want sweep; then
	echo "== scan-sweep: 198.18.4.0/22 × top 100 at $rate probes/s, $runs runs"
	scanbench sweep -runs "$runs" -warmup 0 -rate "$rate" -section scan-sweep || status=1
	echo
fi
if want shard; then
	echo "== scan-shard: the sweep in 4 shards with seed $seed"
	scanbench shard -rate "$rate" -seed "$seed" -shards 4 -section scan-shard || status=1
	echo
fi
if ! want rss; then
	:
elif ((quick)); then
	echo "== scan-rss: skipped with --quick (6.5 M probes take a minute or two)"
	echo
else
	echo "== scan-rss: 198.19.0.0/16 × top 100 (6.5 M probes) at $rssrate probes/s, peak RSS"
	scanbench rss -runs 1 -rate "$rssrate" -rss-prefix 198.19.0.0/16 -rss-top 100 -timeout 10m -section scan-rss || status=1
	echo
fi
# Before the loss section: the UDP rows need a target without its rule.
if want udp; then
	echo "== scan-udp: portkit scan -U vs nmap -sU, six target rows, $runs runs (the default-limit rows once)"
	scanbench udp -runs "$runs" -warmup 1 -slow-runs 1 -slow-timeout 10m -udp-fixture bin/udpfixture \
		-udp-host 198.18.0.2 -source-addrs "$sources" -section scan-udp || status=1
	echo
fi

if want loss; then
ip netns exec "$tns" nft -f - <<'EOF'
table inet pkscanloss {
	chain input {
		type filter hook input priority 0; policy accept;
		meta l4proto tcp numgen random mod 100 < 5 drop
	}
	chain output {
		type filter hook output priority 0; policy accept;
		meta l4proto tcp numgen random mod 100 < 5 drop
	}
}
EOF
peers="nmap once (minutes)"
((quick)) && peers="portkit only"
echo "== scan-loss: 1–65535 of 198.18.0.2, 5% of TCP packets dropped each way, $runs runs, $peers"
scanbench loss -runs "$runs" -warmup 0 -slow-runs 1 -slow-timeout 10m "${lossflags[@]}" -section scan-loss || status=1
ip netns exec "$tns" nft delete table inet pkscanloss
fi

if ((tcpwanted)) && ! kill -0 "$fixture" 2>/dev/null; then
	echo "scan.sh: the fixture died during the benchmark; the figures are not valid" >&2
	status=1
fi
exit $status

#!/usr/bin/env bash
# Benchmark of service detection (issue 14): `portkit scan --service`
# against `nmap -sV`, side by side, every run scored against the truth.
#
# Fixture, made and removed here: two network namespaces joined by a veth
# pair, scanner 198.18.0.1/24 and target 198.18.0.2/24 (198.18.0.0/15 is the
# benchmarking range, RFC 2544), all traffic between them and nowhere else.
# bench/cmd/servicebench runs in the scanner's namespace and writes two
# sections of docs/BENCHMARKS.md:
#
#   service-fixture  the real servers of internal/servicefixture (those of
#                    service/servers_linux_test.go: openssh, nginx HTTP and
#                    HTTPS, redis, memcached TCP and UDP, mosquitto, vsftpd,
#                    dnsmasq TCP and UDP, rsync, postgresql, mariadb, slapd,
#                    dovecot IMAP and POP3, exim4, chrony, snmpd), started in
#                    the target namespace, each on its default port and on
#                    one of 47101 and up; all those ports, TCP and UDP, with
#                    `portkit scan --syn --udp --service --service-snmp` and
#                    `nmap -sS -sU -sV`. Per port: service, product and
#                    version right, for both (truth from dpkg-query).
#                    Targets: portkit names the service right on every
#                    port; product and version right wherever the server
#                    reveals them, on ≥ 90% of those ports; median wall
#                    time ≤ 1/5 of nmap's.
#   service-sweep    198.18.4.0/24 × portkit's top 100 ports, listeners of
#                    bench/cmd/scanfixture on about half the addresses:
#                    portkit with and without --service, for identification's
#                    cost per open port; nmap -sV once, stopped at
#                    --nmap-limit (default 5m; 0 skips it).
#
# A server whose package is not installed is left out and named in the
# report (the script installs none of them: CI's image has them). About 5
# minutes with the defaults, most of it nmap.
#
# --only fixture|sweep runs one of the two.
#
#   bash bench/service.sh [--only fixture|sweep] [--seed N] [--nmap-limit DURATION] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: bash bench/service.sh [--only fixture|sweep] [--seed N] [--nmap-limit DURATION] [RUNS]"
args=("$@")
runs=3
seed=
nmaplimit=5m
only=
while (($#)); do
	case $1 in
	--only) only=${2:?$usage}; shift ;;
	--seed) seed=${2:?$usage}; shift ;;
	--nmap-limit) nmaplimit=${2:?$usage}; shift ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*[!0-9]* | '') echo "service.sh: unknown argument $1; $usage" >&2; exit 2 ;;
	*) runs=$1 ;;
	esac
	shift
done
[[ $seed =~ ^[0-9]*$ && $runs -ge 1 ]] || { echo "service.sh: --seed and RUNS take numbers, RUNS at least 1; $usage" >&2; exit 2; }
[[ $only =~ ^(|fixture|sweep)$ ]] || { echo "service.sh: --only takes fixture or sweep, not $only; $usage" >&2; exit 2; }
[[ $nmaplimit =~ ^[0-9]+(s|m)?$ ]] || { echo "service.sh: --nmap-limit takes a duration such as 300s or 5m, not $nmaplimit; $usage" >&2; exit 2; }
[[ $nmaplimit =~ [sm]$ ]] || nmaplimit=${nmaplimit}s
seed=${seed:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}

me=service.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
require_root "it creates network namespaces and starts servers in them"
tools=(ip:iproute2 nmap:nmap)
install_tools "${tools[@]}"
require_tools "${tools[@]}"

mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/portkit ./cmd/portkit
go build -o bin/servicebench ./bench/cmd/servicebench
go build -o bin/scanfixture ./bench/cmd/scanfixture

# The veth ends take the namespaces' names: at most 15 characters.
sns=pksvs$$
tns=pksvt$$
tmp=$(mktemp -d)
fixture=
bench=

# On every exit, ctrl-C included, lib.sh's cleanup_pair stops servicebench
# (which kills the servers it started and the scanner it runs) and the sweep
# fixture, and deletes both namespaces, which takes the veth pair with them.
set_traps cleanup_pair

make_pair "$sns" "$tns"
# The sweep: the whole /24 is local on the target's loopback, reached from
# the scanner through the target's veth (as in bench/scan.sh).
ip -n "$tns" route add local 198.18.4.0/24 dev lo
ip -n "$sns" route add 198.18.4.0/24 via 198.18.0.2
for ns in "$sns" "$tns"; do
	wait_up "$ns"
done

# servicebench runs inside the scanner namespace as a job waited for, so
# that a signal to this script runs the trap at once. `ip netns exec`
# replaces itself with servicebench, so $! is servicebench.
servicebench() {
	ip netns exec "$sns" bin/servicebench "$@" -portkit bin/portkit -runs "$runs" \
		-command "$produced_by" -md docs/BENCHMARKS.md &
	bench=$!
	local rc=0
	wait "$bench" || rc=$?
	bench=
	return "$rc"
}

produced_by="bash bench/service.sh${args[*]:+ ${args[*]}}"
status=0
if [ "$only" != sweep ]; then
	echo "== service-fixture: the real servers, default and non-standard ports, $runs runs"
	servicebench fixture -target-ns "$tns" -target 198.18.0.2 -section service-fixture || status=1
	echo
fi
[ "$only" != fixture ] || exit $status

# The sweep's listeners: only the /24 (the host part of the plan is unused
# here but required: a few ports of 198.18.0.2, nothing else listens there now).
ip netns exec "$tns" bin/scanfixture -seed "$seed" -host 198.18.0.2 -sweep 198.18.4.0/24 -sweep-top 100 \
	-ready "$tmp/plan.json" -max-lifetime 30m &
fixture=$!
deadline=$((SECONDS + 30))
until [ -s "$tmp/plan.json" ]; do
	kill -0 "$fixture" 2>/dev/null || { echo "service.sh: the sweep fixture died while setting up" >&2; exit 1; }
	((SECONDS < deadline)) || { echo "service.sh: the sweep fixture was not ready within 30 s" >&2; exit 1; }
	sleep 0.1
done
echo "== service-sweep: 198.18.4.0/24 × top 100, $runs runs, nmap -sV once (at most $nmaplimit)"
servicebench sweep -plan "$tmp/plan.json" -nmap-timeout "$nmaplimit" -section service-sweep || status=1
if ! kill -0 "$fixture" 2>/dev/null; then
	echo "service.sh: the sweep fixture died during the benchmark; the figures are not valid" >&2
	status=1
fi
exit $status

#!/usr/bin/env bash
# Benchmark of `portkit lookup` (issues 2 and 11): the whole process against
# `getent services`, side by side in one run, with two Go floors timed
# beside: gohello, a static Go hello world (the Go runtime's start-up on
# this machine), and initfloor, portkit's binary with nothing run (the
# runtime's start-up on a binary of portkit's size, and every package
# initialiser portkit links). portkit minus initfloor is what lookup itself
# costs; initfloor minus gohello what linking portkit's packages costs.
# Targets: portkit within 2x of getent's wall time and 1.3x of gohello's; a
# lookup by port and by name under 1 µs with 0 allocations. Figures go to
# docs/BENCHMARKS.md.
#
#   bash bench/lookup.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-41}
command -v getent >/dev/null || { echo "lookup.sh: getent (libc-bin) is needed" >&2; exit 2; }

mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/portkit ./cmd/portkit
CGO_ENABLED=0 go build -trimpath -o bin/gohello ./bench/cmd/gohello
CGO_ENABLED=0 go build -trimpath -o bin/initfloor ./bench/cmd/initfloor
CGO_ENABLED=0 go build -trimpath -o bin/tlsfloor ./bench/cmd/tlsfloor
CGO_ENABLED=0 go build -trimpath -o bin/leanlookup ./bench/cmd/leanlookup
go build -o bin/sidebyside ./bench/cmd/sidebyside
go build -o bin/gobench ./bench/cmd/gobench

status=0
bin/sidebyside -title "lookup by port: portkit lookup 5432 vs getent services 5432" \
	-runs "$runs" -warmup 5 \
	-cmd "portkit=bin/portkit lookup 5432" -cmd "getent=getent services 5432" \
	-cmd "gohello=bin/gohello" -cmd "tlsfloor=bin/tlsfloor" -cmd "initfloor=bin/initfloor" \
	-cmd "leanlookup=bin/leanlookup 5432" \
	-md docs/BENCHMARKS.md -section lookup-port \
	-max-ratio 'portkit/getent<=2' -max-ratio 'portkit/gohello<=1.3' || status=1

bin/sidebyside -title "lookup by name: portkit lookup postgresql vs getent services postgresql" \
	-runs "$runs" -warmup 5 \
	-cmd "portkit=bin/portkit lookup postgresql" -cmd "getent=getent services postgresql" \
	-cmd "gohello=bin/gohello" -cmd "tlsfloor=bin/tlsfloor" -cmd "initfloor=bin/initfloor" \
	-cmd "leanlookup=bin/leanlookup postgresql" \
	-md docs/BENCHMARKS.md -section lookup-name \
	-max-ratio 'portkit/getent<=2' -max-ratio 'portkit/gohello<=1.3' || status=1

gocmd="go test -run '^\$' -bench 'ByPort\$|ByName\$|ByPortLocal' -benchmem -count 1 ./registry"
eval "$gocmd" | bin/gobench -title "registry lookups in process" -command "$gocmd" \
	-want BenchmarkByPort,BenchmarkByName,BenchmarkByPortLocal \
	-max-ns 1000 -max-allocs 0 -md docs/BENCHMARKS.md -section lookup-go || status=1

exit $status

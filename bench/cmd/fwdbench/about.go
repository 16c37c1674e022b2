package main

import (
	"context"
	"strings"

	"github.com/portkit/portkit/bench/internal/benchmd"
)

// aboutText introduces the forward sections of docs/BENCHMARKS.md; the
// script writes it first, so that it stays above them.
const aboutText = `## forward (issue 5)

` + "`bash bench/forward.sh [--quick] [--only tcp|churn|idle|udp]`" + ` (as root) — ` + "`portkit forward`" + ` against socat
(one fork per connection or UDP peer: ` + "`socat TCP-LISTEN:PORT,fork,reuseaddr TCP:127.0.0.1:TARGET`" + `,
` + "`socat UDP-LISTEN:PORT,fork,reuseaddr UDP:127.0.0.1:TARGET`" + `), rinetd (one process,
` + "`rinetd -f -c FILE`" + ` with the rule ` + "`127.0.0.1 PORT 127.0.0.1 TARGET`" + `) and no forwarder at all
(direct), side by side in one run, in rounds that rotate which path goes first. Everything
runs in a network namespace the script creates and deletes, on its loopback only; the
servers are iperf3 and ` + "`bench/cmd/fwdtarget`" + ` (HTTP/1.0, TCP echo, UDP echo), the load is
iperf3 and ` + "`bench/cmd/fwdbench`" + `, and every load loop is bounded in count and in time. In the
namespace the ephemeral port range is 10000–65000 (every fixed port is below it), so that
rounds of 20,000 short connections do not run out of ports; the script raises the open-file
limit as far as the machine lets it, and the idle benchmark holds as many connections as
portkit's limit leaves room for when that is fewer than 10,000, and says so. ` + "`--quick`" + ` is for iterating: 3 s iperf3 runs, 2,000 churn connections,
1,000 idle connections, 20,000 datagrams; ` + "`--only`" + ` runs one section.

Targets (the script exits 1 when one fails): TCP throughput through portkit at least 1.5× socat's,
1.2× rinetd's and 70% of direct, with one stream and with 8, on the same run; every churn
connection through portkit completes, and portkit's CPU per churn connection and the latency it
adds at p50 and at p99 are at most 1.2× those of the floor (` + "`bench/cmd/splicefloor -poller`" + `:
accept, dial, splice both ways, nothing else); 10,000 idle connections through portkit cost at most
20 KiB of RSS each, and once they are closed portkit's open fds and goroutines are back to
their baseline. CPU per gigabyte, churn rates and UDP rates are reported without targets.`

func aboutMode(context.Context, *config) (*benchmd.Section, error) {
	return &benchmd.Section{Raw: strings.TrimSpace(aboutText), Pass: true}, nil
}

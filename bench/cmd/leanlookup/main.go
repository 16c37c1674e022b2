// Command leanlookup answers `leanlookup PORT|NAME` as `portkit lookup` does
// (the embedded IANA table, the /etc/services overlay, this host's port
// ranges), linking only the packages that needs: no command line library,
// no scanner, no TLS. Timed by bench/lookup.sh beside portkit lookup, it
// shows what a binary made for the short commands alone would cost to
// start, against the one static binary that links everything.
package main

import (
	"os"
	"strconv"

	"github.com/portkit/portkit/hostports"
	"github.com/portkit/portkit/registry"
)

func main() {
	if len(os.Args) != 2 {
		os.Stderr.WriteString("usage: leanlookup PORT|NAME\n")
		os.Exit(2)
	}
	reg, _ := registry.Open(registry.Options{Services: registry.ServicesFile})
	policy, policyErr := hostports.Read()
	q, err := registry.ParseQuery(os.Args[1])
	if err != nil {
		os.Stderr.WriteString("leanlookup: " + err.Error() + "\n")
		os.Exit(2)
	}
	a, err := reg.Lookup(q)
	if err != nil {
		os.Stderr.WriteString("leanlookup: " + err.Error() + "\n")
		os.Exit(1)
	}
	var out []byte
	for _, s := range a.Services {
		out = append(out, s.Name...)
		out = append(out, ' ')
		out = strconv.AppendUint(out, uint64(s.Port), 10)
		out = append(out, '/')
		out = append(out, s.Proto.String()...)
		out = append(out, ' ')
		out = append(out, s.Description...)
		if policyErr == nil {
			out = strconv.AppendBool(append(out, " ephemeral="...), policy.Ephemeral(s.Port))
			out = strconv.AppendBool(append(out, " privileged="...), policy.Privileged(s.Port))
		}
		out = append(out, '\n')
	}
	os.Stdout.Write(out)
}

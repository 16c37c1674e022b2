package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// nmap's options are not all of pflag's shape: -sS, -oX FILE and -iL FILE
// are one dash and several letters, which pflag reads as a group of
// one-letter flags (-s -S, or -o with the value X). nmapArgs rewrites them
// into portkit's flags before cobra parses the command line, for the scan
// command alone, so that an nmap user's habits work:
//
//	-sS → --syn            -sT → --connect        -sU → --udp
//	-oX F → --save xml=F   -oG F → --save grep=F  -oN F → --save table=F
//	-oA B → the three, to B.xml, B.gnmap and B.nmap
//	-iL F → -i F           -F → --top 100         --top-ports N → --top N
//	-Pn, -n → nothing: portkit sends no ping before a scan and looks up no
//	          names of the addresses it scans, so both are what it does
//	--max-retries N → --retries N, --initial-rtt-timeout and
//	--max-rtt-timeout T → --initial-rtt and --max-rtt (which, as every
//	duration flag, read a bare number as seconds, as nmap does),
//	--excludefile F → --exclude-file F
//
// -T4, -p-, -v, -6, --min-rate, --max-rate, --exclude, --open and
// --host-timeout are portkit's own flags already. An nmap option portkit
// lacks (-sX, -O, -A, --script, …) becomes the hidden flag
// --nmap-unsupported, which the command refuses with "portkit does not
// support -sV yet" rather than pflag's "unknown shorthand flag" or a bad
// target made of the option's value.
//
// Arguments after "--" and the values of flags that take one are left as
// they are.

// unsupportedFlag is the hidden flag that carries the nmap options portkit
// lacks to the scan command.
const unsupportedFlag = "nmap-unsupported"

// nmapShort is what an nmap one-dash option that portkit takes becomes:
// flags, or for one that takes the next argument, takesValue.
func nmapShort(a string) (flags []string, takesValue, ok bool) {
	switch a {
	case "-Pn", "-n":
		return nil, false, true
	case "-F":
		return []string{"--top", "100"}, false, true
	case "-oX", "-oG", "-oN", "-oA", "-iL":
		return nil, true, true
	}
	return nil, false, false
}

// nmapLong is portkit's name of an nmap long option it takes under
// another name, or name itself.
func nmapLong(name string) string {
	switch name {
	case "--top-ports":
		return "--top"
	case "--max-retries":
		return "--retries"
	case "--initial-rtt-timeout":
		return "--initial-rtt"
	case "--max-rtt-timeout":
		return "--max-rtt"
	case "--excludefile":
		return "--exclude-file"
	}
	return name
}

// nmapUnsupportedLong reports whether name is an nmap long option portkit
// does not have.
func nmapUnsupportedLong(name string) bool {
	switch name {
	case "--script", "--script-args", "--script-args-file", "--script-trace", "--script-updatedb",
		"--traceroute", "--osscan-limit", "--osscan-guess", "--max-os-tries",
		"--version-intensity", "--version-light", "--version-all", "--version-trace",
		"--reason", "--packet-trace", "--data-length", "--data", "--data-string",
		"--ttl", "--spoof-mac", "--badsum", "--source-port", "--mtu",
		"--scan-delay", "--max-scan-delay", "--min-rtt-timeout",
		"--min-hostgroup", "--max-hostgroup", "--min-parallelism", "--max-parallelism",
		"--defeat-rst-ratelimit", "--defeat-icmp-ratelimit", "--append-output",
		"--stylesheet", "--webxml", "--no-stylesheet", "--privileged", "--unprivileged",
		"--system-dns", "--dns-servers", "--port-ratio", "--randomize-hosts",
		"--proxies", "--send-eth", "--send-ip", "--datadir", "--stats-every",
		"--iflist", "--ip-options", "--exclude-ports", "--allports",
		"--resolve-all", "--unique", "--nsock-engine", "--discovery-ignore-rst":
		return true
	}
	return false
}

// nmapArgs rewrites nmap-style options in args (a whole command line
// without the program name) when its command is root's scan command.
func nmapArgs(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd.Name() != "scan" || cmd.Parent() != root {
		return args
	}
	// The command's name is the first argument that is not a flag: root's
	// flags take no value.
	at := -1
	for i, a := range args {
		if a == "--" {
			return args
		}
		if !strings.HasPrefix(a, "-") {
			at = i
			break
		}
	}
	if at < 0 {
		return args
	}
	out := append([]string{}, args[:at+1]...)
	return append(out, translateScanArgs(cmd.Flags(), args[at+1:])...)
}

// translateScanArgs rewrites the scan command's arguments; fs tells which
// of its flags take a value.
func translateScanArgs(fs *pflag.FlagSet, args []string) []string {
	var out []string
	unsupported := func(opt string) { out = append(out, "--"+unsupportedFlag+"="+opt) }
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i:]...)
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a, "=")
			name = nmapLong(name)
			if nmapUnsupportedLong(name) {
				unsupported(name)
				continue
			}
			fl := fs.Lookup(strings.TrimPrefix(name, "--"))
			if fl == nil || fl.NoOptDefVal != "" {
				out = append(out, a) // pflag says what is wrong with an unknown one
				continue
			}
			if !hasValue {
				if i+1 >= len(args) {
					out = append(out, name) // pflag says the value is missing
					continue
				}
				i++
				value = args[i]
			}
			out = append(out, name+"="+value)
		case a == "-" || !strings.HasPrefix(a, "-"):
			out = append(out, a)
		default:
			if to, takesValue, ok := nmapShort(a); ok {
				switch {
				case !takesValue:
					out = append(out, to...)
				case i+1 < len(args):
					i++
					out = append(out, nmapValue(a, args[i])...)
				default:
					// pflag says the value is missing, of the flag it is.
					out = append(out, strings.SplitN(nmapValue(a, "")[0], "=", 2)[0])
				}
				continue
			}
			if flags, ok := nmapScanTypes(a); ok {
				out = append(out, flags...)
				continue
			}
			if isNmapOnlyShort(fs, a) {
				unsupported(a)
				continue
			}
			// pflag's own shorthands, a group of them (-4v) perhaps, the
			// last of which may take the next argument as its value.
			out = append(out, a)
			if shortTakesNext(fs, a) && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
		}
	}
	return out
}

// nmapValue translates an nmap option that takes a value.
func nmapValue(opt, v string) []string {
	switch opt {
	case "-iL":
		return []string{"--input-list=" + v}
	case "-oA":
		return []string{"--save=xml=" + v + ".xml", "--save=grep=" + v + ".gnmap", "--save=table=" + v + ".nmap"}
	}
	format := "table"
	switch opt {
	case "-oX":
		format = "xml"
	case "-oG":
		format = "grep"
	}
	if v == "-" {
		return []string{"--output=" + format} // nmap's "-" is stdout
	}
	return []string{"--save=" + format + "=" + v}
}

// nmapScanTypes reads -sS, -sT, -sU, -sV and their groups (-sSUV) into
// portkit's engine flags and --service. Any other scan type is refused as
// not supported.
func nmapScanTypes(a string) ([]string, bool) {
	if !strings.HasPrefix(a, "-s") || len(a) < 3 {
		return nil, false
	}
	var out []string
	for _, c := range a[2:] {
		switch c {
		case 'S':
			out = append(out, "--syn")
		case 'T':
			out = append(out, "--connect")
		case 'U':
			out = append(out, "--udp")
		case 'V':
			out = append(out, "--service")
		default:
			return []string{"--" + unsupportedFlag + "=-s" + string(c)}, true
		}
	}
	return out, true
}

// isNmapOnlyShort reports whether a one-dash argument is an nmap option
// and none of portkit's: -O, -A, -P… (but -Pn), -d, -r, -f, -D, -S, -e, -g,
// -b, -R.
func isNmapOnlyShort(fs *pflag.FlagSet, a string) bool {
	if fs.ShorthandLookup(a[1:2]) != nil {
		return false
	}
	switch a[1] {
	case 'O', 'A', 'P', 'd', 'r', 'f', 'D', 'S', 'e', 'g', 'b', 'R':
		return true
	}
	return false
}

// shortTakesNext reports whether a group of one-letter flags ends with one
// that takes a value given as the next argument (-p 22, -4p 22), and not
// in the group itself (-p22).
func shortTakesNext(fs *pflag.FlagSet, a string) bool {
	group := a[1:]
	for j := 0; j < len(group); j++ {
		fl := fs.ShorthandLookup(group[j : j+1])
		if fl == nil {
			return false
		}
		if fl.NoOptDefVal == "" {
			// It takes a value: the rest of the group, or the next argument.
			return j == len(group)-1
		}
	}
	return false
}

// unsupportedError says which nmap option portkit lacks.
func unsupportedError(opts []string) error {
	return fmt.Errorf("portkit does not support %s yet", opts[0])
}

package registry

import "strings"

// schemes are URL schemes whose default port is not the port of a service
// of the same name in IANA's registry: the service is named differently
// (postgres), the scheme is a TLS variant on the plain port (rediss), the
// name means another protocol (sftp is SSH's file transfer, not IANA's
// port-115 Simple File Transfer Protocol; news is NNTP, not IANA's port-2009
// news service; IRC clients connect to 6667, not IANA's 194), or IANA lists
// the name without a port (ws, wss, smb).
var schemes = map[string]struct {
	service string
	port    uint16
}{
	"postgres": {"postgresql", 5432},
	"sftp":     {"ssh", 22},
	"scp":      {"ssh", 22},
	"ws":       {"http", 80},
	"wss":      {"https", 443},
	"rediss":   {"redis", 6379},
	"smtps":    {"submissions", 465},
	"news":     {"nntp", 119},  // RFC 5538
	"nntp":     {"nntp", 119},  // RFC 5538
	"snews":    {"nntps", 563}, // RFC 5538's TLS variant
	"smb":      {"microsoft-ds", 445},
	"dns":      {"domain", 53}, // RFC 4501
	"irc":      {"ircu", 6667},
	"ircs":     {"ircs-u", 6697}, // RFC 7194
}

// SchemePort returns the default port of a URL scheme and the service
// registered on it: the well-known schemes above, and every scheme whose name
// is a service name registered with a TCP port (or any port when there is no
// TCP row). Case does not matter.
func (r *Registry) SchemePort(scheme string) (port uint16, service string, ok bool) {
	scheme = strings.ToLower(scheme)
	if s, ok := schemes[scheme]; ok {
		return s.port, s.service, true
	}
	var buf [8]Service
	found := r.AppendByName(buf[:0], scheme, AnyProto)
	for _, want := range []Proto{TCP, AnyProto} {
		for _, s := range found {
			if s.HasPort && s.Proto.matches(want) {
				return s.Port, s.Name, true
			}
		}
	}
	return 0, "", false
}

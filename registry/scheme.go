package registry

import "strings"

// knownScheme knows the URL schemes whose default port is not the port of a service
// of the same name in IANA's registry: the service is named differently
// (postgres), the scheme is a TLS variant on the plain port (rediss), the
// name means another protocol (sftp is SSH's file transfer, not IANA's
// port-115 Simple File Transfer Protocol; news is NNTP, not IANA's port-2009
// news service; IRC clients connect to 6667, not IANA's 194), or IANA lists
// the name without a port (ws, wss, smb).
//
// A switch rather than a map: a map literal is built at package init, by
// every portkit command.
func knownScheme(scheme string) (service string, port uint16, ok bool) {
	switch scheme {
	case "postgres":
		return "postgresql", 5432, true
	case "sftp", "scp":
		return "ssh", 22, true
	case "ws":
		return "http", 80, true
	case "wss":
		return "https", 443, true
	case "rediss":
		return "redis", 6379, true
	case "smtps":
		return "submissions", 465, true
	case "news", "nntp": // RFC 5538
		return "nntp", 119, true
	case "snews": // RFC 5538's TLS variant
		return "nntps", 563, true
	case "smb":
		return "microsoft-ds", 445, true
	case "dns": // RFC 4501
		return "domain", 53, true
	case "irc":
		return "ircu", 6667, true
	case "ircs": // RFC 7194
		return "ircs-u", 6697, true
	}
	return "", 0, false
}

// SchemePort returns the default port of a URL scheme and the service
// registered on it: the well-known schemes above, and every scheme whose name
// is a service name registered with a TCP port (or any port when there is no
// TCP row). Case does not matter.
func (r *Registry) SchemePort(scheme string) (port uint16, service string, ok bool) {
	scheme = strings.ToLower(scheme)
	if service, port, ok := knownScheme(scheme); ok {
		return port, service, true
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

package spa

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// MessageType is what an SPA message asks for. The values are those on
// the wire.
type MessageType int

// The message types of fwknop's protocol. The ClientTimeout variants carry
// a ClientTimeout; the NAT variants a NATAccess.
const (
	CommandMsg                     MessageType = 0 // run a command: Message is "IP,command"
	AccessMsg                      MessageType = 1 // open ports: Message is "IP,proto/port[,proto/port...]"
	NATAccessMsg                   MessageType = 2 // forward to NATAccess "host,port"
	ClientTimeoutAccessMsg         MessageType = 3
	ClientTimeoutNATAccessMsg      MessageType = 4
	LocalNATAccessMsg              MessageType = 5 // forward to a port on the server itself
	ClientTimeoutLocalNATAccessMsg MessageType = 6
)

var typeNames = [...]string{"command", "access", "nat-access", "client-timeout-access",
	"client-timeout-nat-access", "local-nat-access", "client-timeout-local-nat-access"}

func (t MessageType) String() string {
	if t < 0 || int(t) >= len(typeNames) {
		return fmt.Sprintf("MessageType(%d)", int(t))
	}
	return typeNames[t]
}

// Valid reports whether t is a known type.
func (t MessageType) Valid() bool { return t >= 0 && int(t) < len(typeNames) }

// HasNAT reports whether messages of type t carry a NATAccess field.
func (t MessageType) HasNAT() bool {
	switch t {
	case NATAccessMsg, ClientTimeoutNATAccessMsg, LocalNATAccessMsg, ClientTimeoutLocalNATAccessMsg:
		return true
	}
	return false
}

// HasClientTimeout reports whether messages of type t carry a
// ClientTimeout field.
func (t MessageType) HasClientTimeout() bool {
	switch t {
	case ClientTimeoutAccessMsg, ClientTimeoutNATAccessMsg, ClientTimeoutLocalNATAccessMsg:
		return true
	}
	return false
}

// Limits of the message fields, fwknop's.
const (
	RandomLen        = 16  // decimal digits of the random field
	MaxUsernameLen   = 64  // base64 bytes of the username field
	MaxTimestampLen  = 12  // digits of the timestamp
	MaxVersionLen    = 8   // bytes of the version
	MaxFieldLen      = 256 // base64 bytes of the message, NAT access and server auth fields
	MaxNATHostLen    = 70
	MaxClientTimeout = 1 << 16
	DefaultVersion   = "3.0.0" // the protocol version fwknop 2.6 sends
)

// Message is the content of an SPA packet.
type Message struct {
	// Random is 16 decimal digits that make each packet unique. Encode
	// draws them when empty.
	Random    string
	Username  string
	Timestamp time.Time // whole seconds on the wire
	// Version is the protocol version; Encode sends DefaultVersion when
	// empty.
	Version string
	Type    MessageType
	// Message is "IP,proto/port[,proto/port...]" for the access types
	// and "IP,command" for CommandMsg. IP is the address to let in
	// (0.0.0.0: the packet's source address).
	Message string
	// NATAccess is "host,port", for the NAT types only.
	NATAccess string
	// ServerAuth is optional and passed through (fwknop reserves it).
	ServerAuth string
	// ClientTimeout is the seconds the client asks the opening to last,
	// for the ClientTimeout types only (and then above zero).
	ClientTimeout int
	// Digest is the algorithm of the digest inside the packet: Encode's
	// choice (zero: SHA256), Decode's finding.
	Digest Digest
}

// ProtoPort is one "proto/port" of an access message or of OPEN_PORTS.
type ProtoPort struct {
	Proto string // "tcp", "udp" or "icmp"
	Port  uint16
}

func (p ProtoPort) String() string { return p.Proto + "/" + strconv.Itoa(int(p.Port)) }

// ParseProtoPort parses "tcp/22", "udp/53" or "icmp/0"-style entries;
// the port is 1-65535 (fwknop's rule).
func ParseProtoPort(s string) (ProtoPort, error) {
	proto, port, ok := strings.Cut(s, "/")
	if !ok {
		return ProtoPort{}, fmt.Errorf("%q: want proto/port", s)
	}
	switch proto {
	case "tcp", "udp", "icmp":
	default:
		return ProtoPort{}, fmt.Errorf("%q: protocol %q is not tcp, udp or icmp", s, proto)
	}
	n, err := parseDigits(port, 5)
	if err != nil || n < 1 || n > 65535 {
		return ProtoPort{}, fmt.Errorf("%q: port %q is not 1-65535", s, port)
	}
	return ProtoPort{Proto: proto, Port: uint16(n)}, nil
}

// Access is a parsed access message: the address to let in and the
// ports to open for it.
type Access struct {
	Addr  netip.Addr // 0.0.0.0 (or ::) asks for the packet's source address
	Ports []ProtoPort
}

func (a Access) String() string {
	var b strings.Builder
	b.WriteString(a.Addr.String())
	for _, p := range a.Ports {
		b.WriteByte(',')
		b.WriteString(p.String())
	}
	return b.String()
}

// ParseAccess parses an access message, "IP,proto/port[,proto/port...]".
func ParseAccess(s string) (Access, error) {
	ip, rest, ok := strings.Cut(s, ",")
	if !ok || rest == "" {
		return Access{}, fmt.Errorf("access %q: want IP,proto/port", s)
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.Zone() != "" {
		return Access{}, fmt.Errorf("access %q: %q is not an IP address", s, ip)
	}
	a := Access{Addr: addr}
	for f := range strings.SplitSeq(rest, ",") {
		p, err := ParseProtoPort(f)
		if err != nil {
			return Access{}, fmt.Errorf("access: %w", err)
		}
		a.Ports = append(a.Ports, p)
	}
	return a, nil
}

// Access parses m.Message as an access message.
func (m *Message) Access() (Access, error) {
	if m.Type == CommandMsg {
		return Access{}, fmt.Errorf("a %v message has no access request", m.Type)
	}
	return ParseAccess(m.Message)
}

// parseDigits parses 1 to max decimal digits, nothing else (no sign,
// no space).
func parseDigits(s string, max int) (uint64, error) {
	if s == "" || len(s) > max {
		return 0, fmt.Errorf("want 1 to %d digits", max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("want digits only")
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// validUsername follows fwknop: printable ASCII without " / \ [ ] : ; | =
// , + * ? < >.
func validUsername(u string) string {
	if u == "" {
		return "empty"
	}
	if b64Len(u) > MaxUsernameLen {
		return "too long"
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if c < 0x20 || c > 0x7e || strings.IndexByte(`"/\[]:;|=,+*?<>`, c) >= 0 {
			return fmt.Sprintf("character %q not allowed", c)
		}
	}
	return ""
}

// checkNAT checks a NAT access field, "host,port".
func checkNAT(s string) string {
	host, port, ok := strings.Cut(s, ",")
	switch {
	case !ok || strings.Contains(port, ","):
		return "want host,port"
	case host == "" || len(host) > MaxNATHostLen:
		return "host empty or too long"
	case strings.ContainsAny(host, " /?\"'\\"):
		return "host has a character not allowed"
	}
	if n, err := parseDigits(port, 5); err != nil || n < 1 || n > 65535 {
		return "port is not 1-65535"
	}
	return ""
}

// checkMessage checks the message field for type t.
func checkMessage(t MessageType, msg string) string {
	if t == CommandMsg {
		ip, cmd, ok := strings.Cut(msg, ",")
		if _, err := netip.ParseAddr(ip); err != nil || !ok || cmd == "" {
			return "want IP,command"
		}
		return ""
	}
	if _, err := ParseAccess(msg); err != nil {
		return err.Error()
	}
	return ""
}

// check validates m for encoding; it is the same rules Decode applies.
func (m *Message) check() error {
	if len(m.Random) != RandomLen {
		return fieldErr("random", m.Random, "want 16 digits")
	}
	if _, err := parseDigits(m.Random, RandomLen); err != nil {
		return fieldErr("random", m.Random, err.Error())
	}
	if r := validUsername(m.Username); r != "" {
		return fieldErr("username", m.Username, r)
	}
	if ts := m.Timestamp.Unix(); ts < 0 || ts > 1<<32-1 {
		return fieldErr("timestamp", m.Timestamp.String(), "outside the 32-bit seconds fwknop carries")
	}
	if m.Version == "" || len(m.Version) > MaxVersionLen || strings.ContainsAny(m.Version, ":") || !printable(m.Version) {
		return fieldErr("version", m.Version, "want 1 to 8 printable bytes, no colon")
	}
	if !m.Type.Valid() {
		return fieldErr("type", strconv.Itoa(int(m.Type)), "unknown message type")
	}
	if !printable(m.Message) || b64Len(m.Message) > MaxFieldLen {
		return fieldErr("message", m.Message, "not printable ASCII or too long")
	}
	if r := checkMessage(m.Type, m.Message); r != "" {
		return fieldErr("message", m.Message, r)
	}
	if m.Type.HasNAT() {
		if r := checkNAT(m.NATAccess); r != "" {
			return fieldErr("nat_access", m.NATAccess, r)
		}
	} else if m.NATAccess != "" {
		return fieldErr("nat_access", m.NATAccess, fmt.Sprintf("a %v message has none", m.Type))
	}
	if !printable(m.ServerAuth) || b64Len(m.ServerAuth) > MaxFieldLen {
		return fieldErr("server_auth", m.ServerAuth, "not printable ASCII or too long")
	}
	if m.Type.HasClientTimeout() {
		if m.ClientTimeout < 1 || m.ClientTimeout > MaxClientTimeout {
			return fieldErr("client_timeout", strconv.Itoa(m.ClientTimeout), "want 1 to 65536 seconds")
		}
	} else if m.ClientTimeout != 0 {
		return fieldErr("client_timeout", strconv.Itoa(m.ClientTimeout), fmt.Sprintf("a %v message has none", m.Type))
	}
	if !m.Digest.Valid() {
		return fieldErr("digest", m.Digest.String(), "unknown digest")
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func b64Len(s string) int { return base64.RawStdEncoding.EncodedLen(len(s)) }

package cli

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/portspec"
	"github.com/portkit/portkit/registry"
	"github.com/portkit/portkit/sockets"
)

// procRow is a process as --json writes it.
type procRow struct {
	PID       int       `json:"pid"`
	PPID      int       `json:"ppid"`
	Name      string    `json:"name"`
	Cmdline   []string  `json:"cmdline"`
	User      string    `json:"user"`
	UID       uint32    `json:"uid"`
	Started   time.Time `json:"started"`
	Container string    `json:"container,omitempty"`
}

func newProcRow(p sockets.Process) procRow {
	cmdline := p.Cmdline
	if cmdline == nil {
		cmdline = []string{}
	}
	return procRow{PID: p.PID, PPID: p.PPID, Name: p.Name, Cmdline: cmdline, User: p.User, UID: p.UID,
		Started: p.StartTime.UTC(), Container: p.Container}
}

// socketRow is a socket as --json writes it.
type socketRow struct {
	Protocol  string    `json:"protocol"`
	Family    string    `json:"family"`
	Local     string    `json:"local"`
	Port      uint16    `json:"port"`
	Remote    string    `json:"remote,omitempty"`
	State     string    `json:"state"`
	Service   string    `json:"service,omitempty"`
	UID       uint32    `json:"uid"`
	User      string    `json:"user"`
	Inode     uint64    `json:"inode"`
	RxQueue   uint32    `json:"rx_queue"`
	TxQueue   uint32    `json:"tx_queue"`
	Processes []procRow `json:"processes"`
	// Hidden: the kernel says the socket exists, but its process could not
	// be seen for want of permission.
	Hidden bool `json:"hidden,omitempty"`
}

// socketView turns entries into rows, naming services and users once each.
type socketView struct {
	reg   *registry.Registry
	users map[uint32]string
}

func newSocketView() *socketView {
	// The local overlay names ports IANA leaves unnamed; without it, IANA.
	reg, _ := registry.Open(registry.Options{Services: registry.ServicesFile})
	return &socketView{reg: reg, users: map[uint32]string{}}
}

func (v *socketView) row(e sockets.Entry) socketRow {
	r := socketRow{
		Protocol: e.Network(), Family: e.Family.String(), Local: e.Local.String(), Port: e.Local.Port(),
		State: e.State.String(), UID: e.UID, User: v.user(e.UID), Inode: e.Inode,
		RxQueue: e.RxQueue, TxQueue: e.TxQueue, Processes: []procRow{}, Hidden: e.Hidden,
	}
	if e.Remote.IsValid() && e.Remote.Port() != 0 {
		r.Remote = e.Remote.String()
	}
	r.Service = v.service(e.Local.Port(), e.Proto)
	if r.Service == "" && e.State != sockets.Listen && r.Remote != "" {
		r.Service = v.service(e.Remote.Port(), e.Proto)
	}
	for _, p := range e.Processes {
		r.Processes = append(r.Processes, newProcRow(p))
	}
	return r
}

// service is the registry's name for port, "" when it has none.
func (v *socketView) service(port uint16, proto sockets.Proto) string {
	p := registry.TCP
	if proto == sockets.UDP {
		p = registry.UDP
	}
	return v.reg.PortName(port, p)
}

func (v *socketView) user(uid uint32) string {
	if name, ok := v.users[uid]; ok {
		return name
	}
	name := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	v.users[uid] = name
	return name
}

// hiddenNote says, once, on stderr, why some sockets show no process.
func hiddenNote(e *env, v *socketView, entries []sockets.Entry) {
	var users []string
	for _, en := range entries {
		if u := v.user(en.UID); en.Hidden && !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		return
	}
	e.warnf("the process of some sockets (owned by user %s) is hidden%s", strings.Join(users, ", "), hiddenWhy())
}

// hiddenWhy says why a socket's process can be hidden and what would show
// it: root can read every process's descriptors, except in another PID
// namespace or under a restricted /proc.
func hiddenWhy() string {
	if os.Geteuid() == 0 {
		return ", even to root (another PID namespace or a restricted /proc)"
	}
	return "; run as root (sudo) to see it"
}

// pidsText is the PIDs of a row for a table: "1234", "1234,1240", or
// "-" for a hidden process.
func pidsText(r socketRow) (pids, names string) {
	if len(r.Processes) == 0 {
		if r.Hidden {
			return "-", "(hidden)"
		}
		return "-", "-"
	}
	var p, n []string
	for _, pr := range r.Processes {
		p = append(p, strconv.Itoa(pr.PID))
		if !slices.Contains(n, pr.Name) {
			n = append(n, pr.Name)
		}
	}
	return strings.Join(p, ","), strings.Join(n, ",")
}

// socketsProto maps a registry protocol to the socket table's; only TCP
// and UDP sockets are listed.
func socketsProto(p registry.Proto, input string) (sockets.Proto, error) {
	switch p {
	case registry.AnyProto:
		return 0, nil
	case registry.TCP:
		return sockets.TCP, nil
	case registry.UDP:
		return sockets.UDP, nil
	}
	return 0, usagef("%q: only tcp and udp sockets are listed", input)
}

// errPortZero refuses port 0: no socket listens there, and to the socket
// table it means every port.
func errPortZero(input string) error {
	return usagef("%q: port 0 is not a port anything listens on", input)
}

// badArg is an argument of who or kill that cannot be read: exit 2, the
// argument named.
func badArg(input, format string, args ...any) error {
	return usagef("%q: %s", input, fmt.Sprintf(format, args...))
}

// portArg is an argument of who and kill: a port ("3000", ":3000"), a range
// ("3000-3010") or a service name ("postgresql"), each with an optional
// protocol ("/tcp", "/udp").
type portArg struct {
	input string
	name  string     // the service name, for a name
	spans []portSpan // one, or one per protocol for a name whose TCP and UDP ports differ
}

// portSpan is a port or a range of ports for TCP, UDP or both.
type portSpan struct {
	lo, hi uint16
	proto  sockets.Proto // 0: TCP and UDP
}

func (s portSpan) size() int { return int(s.hi) - int(s.lo) + 1 }

// String is "3000/tcp+udp", "8000-8005/tcp".
func (s portSpan) String() string {
	out := strconv.Itoa(int(s.lo))
	if s.hi != s.lo {
		out += "-" + strconv.Itoa(int(s.hi))
	}
	return out + "/" + protoLabel(s.proto)
}

// protoLabel names a socket protocol set: "tcp", "udp" or "tcp+udp".
func protoLabel(p sockets.Proto) string {
	if p == 0 {
		return "tcp+udp"
	}
	return p.String()
}

// label is how a message names the argument: as typed, and a name with
// the ports it stands for: "postgresql (5432/tcp+udp)".
func (a portArg) label() string {
	if a.name == "" {
		return strings.TrimSpace(a.input)
	}
	var spans []string
	for _, s := range a.spans {
		spans = append(spans, s.String())
	}
	return a.name + " (" + strings.Join(spans, ", ") + ")"
}

// parsePortArgs reads every argument before any is acted on, so a bad one
// stops the command before it has done anything. Names are looked up in reg.
func parsePortArgs(args []string, reg *registry.Registry) ([]portArg, error) {
	out := make([]portArg, 0, len(args))
	for _, a := range args {
		pa, err := parsePortArg(a, reg)
		if err != nil {
			return nil, err
		}
		out = append(out, pa)
	}
	return out, nil
}

// parsePortArg reads [:]PORT, [:]LO-HI or NAME, each perhaps with /PROTO.
func parsePortArg(input string, reg *registry.Registry) (portArg, error) {
	body := strings.TrimSpace(input)
	// ":3000" is how ss and lsof write a local port.
	body = strings.TrimPrefix(body, ":")
	if strings.ContainsAny(body, ":[]") {
		return portArg{}, badArg(input, "a port, not an address: %q answers for every local address", ":"+body[strings.LastIndexByte(body, ':')+1:])
	}
	body, protoIn, hasProto := strings.Cut(body, "/")
	proto := sockets.Proto(0)
	if hasProto {
		rp, err := registry.ParseProto(protoIn)
		if err != nil || rp == registry.AnyProto {
			return portArg{}, badArg(input, "unknown protocol %q (want tcp or udp)", protoIn)
		}
		if proto, err = socketsProto(rp, input); err != nil {
			return portArg{}, err
		}
	}
	pa := portArg{input: input}
	switch {
	case body == "":
		return portArg{}, badArg(input, "no port")
	case body[0] >= '0' && body[0] <= '9':
		r, err := portspec.ParseRange(body)
		if err != nil {
			var pe *portspec.Error
			if errors.As(err, &pe) {
				pe.Input = input
			}
			return portArg{}, err
		}
		if r.Lo == 0 {
			return portArg{}, errPortZero(input)
		}
		pa.spans = []portSpan{{r.Lo, r.Hi, proto}}
	case body[0] >= 'A' && body[0] <= 'Z' || body[0] >= 'a' && body[0] <= 'z':
		spans, err := nameSpans(input, body, proto, reg)
		if err != nil {
			return portArg{}, err
		}
		pa.name, pa.spans = body, spans
	default:
		return portArg{}, badArg(input, "not a port, a range (3000-3010) or a service name")
	}
	return pa, nil
}

// nameSpans are the TCP and UDP ports that reg gives service name for the
// protocols of want (0: both): one span for both where they agree.
func nameSpans(input, name string, want sockets.Proto, reg *registry.Registry) ([]portSpan, error) {
	var tcp, udp []portSpan
	var other []string // protocols other than TCP and UDP that have the name
	for _, s := range reg.AppendByName(nil, name, registry.AnyProto) {
		if !s.HasPort {
			continue
		}
		span := portSpan{lo: s.Port, hi: s.PortEnd}
		switch {
		case s.Proto == registry.TCP && want != sockets.UDP:
			span.proto = sockets.TCP
			if !slices.Contains(tcp, span) {
				tcp = append(tcp, span)
			}
		case s.Proto == registry.UDP && want != sockets.TCP:
			span.proto = sockets.UDP
			if !slices.Contains(udp, span) {
				udp = append(udp, span)
			}
		case !slices.Contains(other, s.Proto.String()):
			other = append(other, s.Proto.String())
		}
	}
	var out []portSpan
	for _, t := range tcp {
		both := portSpan{t.lo, t.hi, sockets.UDP}
		if i := slices.Index(udp, both); i >= 0 {
			udp = slices.Delete(udp, i, i+1)
			t.proto = 0
		}
		out = append(out, t)
	}
	out = append(out, udp...)
	for _, s := range out {
		if s.lo == 0 {
			return nil, badArg(input, "the registry gives port 0 for this name, and port 0 is not a port anything listens on")
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case len(other) > 0:
		wanted := "tcp or udp"
		if want != 0 {
			wanted = want.String()
		}
		return nil, badArg(input, "no %s port has this name (%s has)", wanted, strings.Join(other, ", "))
	}
	why := "unknown service name"
	if s := reg.Suggest(name, 3); len(s) > 0 {
		why += "; did you mean " + strings.Join(s, ", ") + "?"
	}
	return nil, badArg(input, "%s", why)
}

package cli

import (
	"fmt"
	"os"
	"os/user"
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
		if u := v.user(en.UID); en.Hidden && !contains(users, u) {
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

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
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
		if !contains(n, pr.Name) {
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
	return 0, &exitError{code: ExitUsage, err: fmt.Errorf("%q: only tcp and udp sockets are listed", input)}
}

// errPortZero refuses port 0: no socket listens there, and to the socket
// table it means every port.
func errPortZero(input string) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf("%q: port 0 is not a port anything listens on", input)}
}

// portArg is a PORT[/PROTO] argument of who and kill.
type portArg struct {
	input string
	port  uint16
	proto sockets.Proto // 0: TCP and UDP
}

// parsePortArgs reads every argument before any is acted on, so a bad one
// stops the command before it has done anything.
func parsePortArgs(args []string) ([]portArg, error) {
	out := make([]portArg, 0, len(args))
	for _, a := range args {
		pp, err := portspec.ParsePortProto(a)
		if err != nil {
			return nil, err
		}
		if pp.Port == 0 {
			return nil, errPortZero(a)
		}
		proto, err := socketsProto(pp.Proto, a)
		if err != nil {
			return nil, err
		}
		out = append(out, portArg{input: a, port: pp.Port, proto: proto})
	}
	return out, nil
}

package sockets

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

func newLister(t *Table) lister {
	root := t.ProcRoot
	if root == "" {
		root = "/proc"
	}
	return linuxLister{
		root:      root,
		noNetlink: t.NoNetlink,
		// A fixture tree's processes are not the kernel's.
		bpf:     !t.NoBPF && t.ProcRoot == "",
		btfPath: vmlinuxBTF,
		log:     t.Logger,
	}
}

type linuxLister struct {
	root      string
	noNetlink bool
	// bpf finds holders with the BPF iterator, when this process may,
	// reading the kernel's types from btfPath; else, or when it fails,
	// through root.
	bpf     bool
	btfPath string
	log     *slog.Logger // nil: silent
	// serial lists every socket before looking for processes, never both
	// at once; tests compare the two ways.
	serial bool
}

func (l linuxLister) list(ctx context.Context, reqs []request, q Query) ([]Entry, error) {
	var held chan heldResult
	if q.WithProcesses && l.bpf && bpfCapable() {
		// Every socket descriptor of every process, listed in the kernel
		// while the sockets are listed here (see bpfSockets).
		held = make(chan heldResult, 1)
		go func() {
			recs, err := bpfSockets(l.btfPath)
			held <- heldResult{recs, err}
		}()
	}
	var nl *diagConn
	if !l.noNetlink {
		c, err := dialDiag()
		switch {
		case err == nil:
			nl = c
			defer c.close()
		case !netlinkUnavailable(err):
			return nil, err
		}
	}
	if held != nil {
		return l.listHeld(ctx, nl, reqs, held)
	}
	quick, slow := reqs, []request(nil)
	if q.WithProcesses && nl != nil && !l.serial {
		quick, slow = splitSlow(reqs)
	}
	out, err := l.dump(ctx, nl, quick, nil)
	if err != nil {
		return nil, err
	}
	if len(slow) > 0 && slices.ContainsFunc(out, func(e Entry) bool { return e.Inode != 0 }) {
		// The search is needed whatever the slow requests find: run it
		// beside them.
		out, err = l.searchWhileDumping(ctx, nl, slow, out)
		if err != nil {
			return nil, err
		}
		zoneNames(out)
		return out, nil
	}
	// Else nothing to look for yet, and perhaps nothing at all (a free
	// port): the slow requests first, then the search if anything was
	// found.
	if out, err = l.dump(ctx, nl, slow, out); err != nil {
		return nil, err
	}
	zoneNames(out)
	if q.WithProcesses {
		if err := findProcesses(ctx, l.root, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// heldResult is what bpfSockets answered.
type heldResult struct {
	recs []heldRecord
	err  error
}

// listHeld lists the sockets of reqs and gives them their holders from the
// records the BPF iterator answers on held; when it failed, from the /proc
// search instead, after the requests rather than beside the slow one (see
// list): the iterator is the common case as root, and a failure is known
// only once it is over.
func (l linuxLister) listHeld(ctx context.Context, nl *diagConn, reqs []request, held <-chan heldResult) ([]Entry, error) {
	out, err := l.dump(ctx, nl, reqs, nil)
	if err != nil {
		return nil, err
	}
	zoneNames(out)
	if !slices.ContainsFunc(out, func(e Entry) bool { return e.Inode != 0 }) {
		return out, nil // nothing to look for; the iterator ends on its own
	}
	var r heldResult
	select {
	case r = <-held:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if r.err != nil {
		if l.log != nil {
			l.log.Debug("socket holders from /proc", "reason", r.err)
		}
		return out, findProcesses(ctx, l.root, out)
	}
	return out, joinHeld(ctx, l.root, out, r.recs)
}

// joinHeld gives entries their holders among recs, every socket
// descriptor of every process, and fills in what each holder is from
// root.
func joinHeld(ctx context.Context, root string, entries []Entry, recs []heldRecord) error {
	s := newSearch(entries, false)
	if len(s.want) == 0 {
		return nil
	}
	for _, r := range recs {
		if i, ok := s.want[r.inode]; ok {
			addHolder(&entries[i], int(r.pid))
		}
	}
	return s.finish(ctx, root)
}

// splitSlow splits the TCP requests for listening or bound sockets, what
// who asks for, in two: listeners, which the kernel finds in its listening
// hash in microseconds, and bound but inactive sockets, which it finds only
// by walking every TCP socket of the host, in every network namespace:
// some milliseconds per ten thousand sockets. It returns the requests the
// kernel answers quickly apart from that walk.
//
// Only Bound is split off: bound, inactive sockets are few, so the search
// run beside the walk records the sockets it meets only until the walk
// answers, and has few to join. A request for connections (ls -a) lists
// tens of thousands, which the search would hold twice; it is not split.
func splitSlow(reqs []request) (quick, slow []request) {
	for _, r := range reqs {
		if r.proto != TCP || r.states != Listen|Bound {
			quick = append(quick, r)
			continue
		}
		l := r
		l.states = Listen
		quick = append(quick, l)
		r.states = Bound
		slow = append(slow, r)
	}
	return quick, slow
}

// searchWhileDumping looks for the holders of entries while it asks for
// the sockets of slow, and returns entries and slow's sockets, every one
// with its holders. Until slow's sockets are known the search records
// every socket it meets, so that they find their holders among those; the
// kernel usually answers well before the search ends, so that most
// processes are read knowing them.
func (l linuxLister) searchWhileDumping(ctx context.Context, nl *diagConn, slow []request, entries []Entry) ([]Entry, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := newSearch(entries, true)
	searched := make(chan error, 1)
	go func() { searched <- s.run(ctx, l.root, nil) }()
	late, err := l.dump(ctx, nl, slow, nil)
	if err != nil {
		cancel()
		<-searched
		return nil, err
	}
	s.publish(late)
	if err := <-searched; err != nil {
		return nil, err
	}
	if err := s.finish(ctx, l.root); err != nil {
		return nil, err
	}
	return s.entries, nil
}

// dump appends the sockets of reqs to out: over netlink when nl is set,
// else, or for a table netlink cannot give, from /proc/net.
func (l linuxLister) dump(ctx context.Context, nl *diagConn, reqs []request, out []Entry) ([]Entry, error) {
	for i := 0; i < len(reqs); i++ {
		req := reqs[i]
		var err error
		if nl != nil && i+1 < len(reqs) && bothTCP(req, reqs[i+1]) {
			// One request for both families (see dumpTCP). A kernel or
			// sandbox that refuses it gets the one per family below.
			n := len(out)
			if out, err = nl.dumpTCP(ctx, req, out); err == nil {
				i++
				continue
			}
			if ctx.Err() != nil {
				return nil, err
			}
			out = out[:n]
		}
		if nl != nil {
			n := len(out)
			out, err = nl.dump(ctx, req, out)
			if err == nil {
				continue
			}
			if !netlinkUnavailable(err) {
				return nil, err
			}
			// This table from /proc/net instead: a kernel may lack one
			// handler (udp_diag) and have the others.
			out = out[:n]
		}
		if out, err = l.readProcNet(req, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bothTCP reports whether a and b, one after the other, ask for TCP in
// IPv4 then IPv6, in the same states and ports: one request can answer both.
func bothTCP(a, b request) bool {
	return a.proto == TCP && b.proto == TCP && a.family == IPv4 && b.family == IPv6 &&
		a.states == b.states && a.port == b.port && a.last == b.last
}

// netlinkUnavailable reports whether err says that sock_diag cannot be used
// here (a kernel without it, a sandbox that forbids it) rather than that it
// failed.
func netlinkUnavailable(err error) bool {
	for _, errno := range []syscall.Errno{
		syscall.EPROTONOSUPPORT, syscall.EAFNOSUPPORT, syscall.ENOSYS, // no netlink or no sock_diag
		syscall.ENOENT, syscall.EOPNOTSUPP, // no handler for this protocol or family
		syscall.EPERM, syscall.EACCES, // seccomp, LSMs
	} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// readProcNet appends the sockets of req's table in root/net, the text
// form of the table that netlink gives in binary.
func (l linuxLister) readProcNet(req request, out []Entry) ([]Entry, error) {
	// The calling thread's namespace, as netlink's, not the main
	// thread's (root/net is root/self/net); root/net for a /proc before
	// Linux 3.17 or a fixture.
	path := filepath.Join(l.root, "thread-self", "net", procNetName(req))
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		path = filepath.Join(l.root, "net", procNetName(req))
		f, err = os.Open(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil // a kernel without IPv6
	}
	if err != nil {
		return out, pathError(err)
	}
	defer f.Close()
	out, err = parseProcNet(f, req, binary.NativeEndian, out)
	if err != nil {
		return out, &OpError{Op: "parse", Path: path, Err: err}
	}
	return out, nil
}

func procNetName(req request) string {
	if req.family == IPv6 {
		return req.proto.String() + "6"
	}
	return req.proto.String()
}

// pathError turns an *fs.PathError into an *OpError, so that callers have
// one error type to look for.
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &OpError{Op: pe.Op, Path: pe.Path, Err: pe.Err}
	}
	return err
}

// zoneNames replaces the interface indexes that netlink gives as the zones
// of link-local addresses by the interfaces' names, where they have one.
func zoneNames(entries []Entry) {
	names := map[string]string{}
	name := func(a netip.Addr) netip.Addr {
		z := a.Zone()
		if z == "" {
			return a
		}
		n, ok := names[z]
		if !ok {
			n = z
			if i, err := strconv.Atoi(z); err == nil {
				if ifi, err := net.InterfaceByIndex(i); err == nil {
					n = ifi.Name
				}
			}
			names[z] = n
		}
		return a.WithZone(n)
	}
	for i := range entries {
		s := &entries[i].Socket
		s.Local = netip.AddrPortFrom(name(s.Local.Addr()), s.Local.Port())
		s.Remote = netip.AddrPortFrom(name(s.Remote.Addr()), s.Remote.Port())
	}
}

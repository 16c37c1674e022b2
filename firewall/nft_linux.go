//go:build linux

package firewall

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/portkit/portkit/registry"
)

// The names in portkit's table.
const (
	setProtected = "protected"
	setOpen4     = "open4"
	setOpen6     = "open6"
	setBlocked4  = "blocked4"
	setBlocked6  = "blocked6"
	chainInput   = "input"
)

// chainPriority is filter - 1: after conntrack (-200), so ct state is
// known, and just before the filter chains of distributions and of
// iptables-nft (priority 0), so blocked sources and closed ports are
// dropped before those chains spend work on them or log them.
const chainPriority nftables.ChainPriority = -1

// session is one operation's netlink connection to the kernel, opened in
// the table's namespace.
type session struct {
	t  Table
	c  *nftables.Conn
	nt *nftables.Table
}

func (t Table) session(ctx context.Context) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if t.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(t.NetNS))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &session{t: t, c: c, nt: &nftables.Table{Name: t.name(), Family: nftables.TableFamilyINet}}, nil
}

func (s *session) close() { s.c.CloseLasting() }

// fail wraps err as the operation's *Error; the kernel's EPERM becomes
// ErrPermission, which says which capability is missing.
func (t Table) fail(op, input string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, os.ErrPermission):
		err = ErrPermission
	case errors.Is(err, unix.EPROTONOSUPPORT):
		err = ErrNoNftables
	}
	return &Error{Op: op, Table: t.String(), Input: input, Err: err}
}

// sets are the table's sets, as the element operations name them.
func (s *session) set(name string) *nftables.Set {
	for _, st := range s.layout() {
		if st.Name == name {
			return st
		}
	}
	panic("firewall: no set " + name) // the names are this file's constants
}

// layout is the table's sets as they are made. Each has its own ID (the
// rules of the same batch refer to a set by it), given here: AddSet would
// otherwise take one from a counter shared by the whole process.
func (s *session) layout() []*nftables.Set {
	portType := nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	sets := []*nftables.Set{
		{Table: s.nt, Name: setProtected, KeyType: portType, Concatenation: true},
		{Table: s.nt, Name: setOpen4, KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService), Concatenation: true, HasTimeout: true},
		{Table: s.nt, Name: setOpen6, KeyType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService), Concatenation: true, HasTimeout: true},
		{Table: s.nt, Name: setBlocked4, KeyType: nftables.TypeIPAddr, HasTimeout: true},
		{Table: s.nt, Name: setBlocked6, KeyType: nftables.TypeIP6Addr, HasTimeout: true},
	}
	for i, st := range sets {
		st.ID = uint32(i + 1)
	}
	return sets
}

// present tells whether the table exists, and fails with ErrForeignTable
// when a table of its name is not portkit's (its sets are not ours).
func (s *session) present() (bool, error) {
	tables, err := s.c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("list tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == s.nt.Name }) {
		return false, nil
	}
	have, err := s.c.GetSets(s.nt)
	if err != nil {
		return false, fmt.Errorf("list sets: %w", err)
	}
	for _, want := range s.layout() {
		i := slices.IndexFunc(have, func(h *nftables.Set) bool { return h.Name == want.Name })
		if i < 0 || have[i].KeyType.Bytes != want.KeyType.Bytes || have[i].HasTimeout != want.HasTimeout {
			return false, ErrForeignTable
		}
	}
	if _, err := s.c.ListChain(s.nt, chainInput); err != nil {
		return false, ErrForeignTable
	}
	return true, nil
}

// ensure makes the table when it is not there. The whole table is one
// batch that fails if the table exists (CreateTable is exclusive), so two
// portkits making it at once end with one table and one set of rules.
func (s *session) ensure() error {
	for range 2 {
		ok, err := s.present()
		if err != nil || ok {
			return err
		}
		s.create()
		err = s.c.Flush()
		if err == nil || !errors.Is(err, unix.EEXIST) {
			return err
		}
		// Made by another portkit meanwhile: look at it again.
	}
	return fmt.Errorf("made and removed by others while this was making it")
}

func (s *session) create() {
	s.c.CreateTable(s.nt)
	sets := map[string]*nftables.Set{}
	for _, st := range s.layout() {
		// AddSet fails only for anonymous sets, which these are not.
		s.c.AddSet(st, nil)
		sets[st.Name] = st
	}
	ch := s.c.AddChain(&nftables.Chain{
		Name: chainInput, Table: s.nt, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityRef(chainPriority),
		Policy: policyRef(nftables.ChainPolicyAccept),
	})
	for _, exprs := range rules(sets) {
		s.c.AddRule(&nftables.Rule{Table: s.nt, Chain: ch, Exprs: exprs})
	}
}

func policyRef(p nftables.ChainPolicy) *nftables.ChainPolicy { return &p }

// rules are the input chain's rules, in order (see the package comment).
func rules(sets map[string]*nftables.Set) [][]expr.Any {
	lookup := func(reg uint32, name string) *expr.Lookup {
		return &expr.Lookup{SourceRegister: reg, SetName: name, SetID: sets[name].ID}
	}
	nfproto := func(p byte) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		}
	}
	// Source addresses: IPv4 at offset 12 of the header, IPv6 at 8.
	saddr4 := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
	saddr6 := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16}
	// A concatenation is read from consecutive 32-bit registers: 8 is the
	// first (the same bytes as register 1), each field padded to 4 bytes.
	l4proto := func(reg uint32) expr.Any { return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg} }
	dport := func(reg uint32) expr.Any {
		// th dport: the destination port is at offset 2 in TCP, UDP, SCTP and DCCP.
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
	}
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	accept := &expr.Verdict{Kind: expr.VerdictAccept}
	ifname := make([]byte, unix.IFNAMSIZ)
	copy(ifname, "lo")
	return [][]expr.Any{
		append(nfproto(unix.NFPROTO_IPV4), saddr4, lookup(1, setBlocked4), drop),
		append(nfproto(unix.NFPROTO_IPV6), saddr6, lookup(1, setBlocked6), drop),
		{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
				Xor:  binaryutil.NativeEndian.PutUint32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
			accept,
		},
		{
			// Local processes reach protected ports: the protection is
			// against the network.
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname},
			accept,
		},
		append(nfproto(unix.NFPROTO_IPV4), saddr4, l4proto(9), dport(10), lookup(1, setOpen4), accept),
		append(nfproto(unix.NFPROTO_IPV6), saddr6, l4proto(12), dport(13), lookup(1, setOpen6), accept),
		{l4proto(8), dport(9), lookup(8, setProtected), drop},
	}
}

// Open lets src reach port/proto for d, from now: a new opening, or an
// existing one refreshed to d. Connections made while it is open outlive
// it. The table is made on first use.
func (t Table) Open(ctx context.Context, src netip.Addr, port uint16, proto registry.Proto, d time.Duration) error {
	input := fmt.Sprintf("%s %d/%v", src, port, proto)
	key, name, d, err := openingKey(src, port, proto, d)
	if err != nil {
		return t.fail("open", input, err)
	}
	return t.fail("open", input, t.refresh(ctx, name, key, d))
}

func openingKey(src netip.Addr, port uint16, proto registry.Proto, d time.Duration) ([]byte, string, time.Duration, error) {
	src, err := checkSource(src)
	if err != nil {
		return nil, "", 0, err
	}
	pk, err := checkPort(port, proto)
	if err != nil {
		return nil, "", 0, err
	}
	if d, err = checkTimeout(d, false); err != nil {
		return nil, "", 0, err
	}
	name := setOpen4
	if src.Is6() {
		name = setOpen6
	}
	return openKey(src, pk), name, d, nil
}

// refresh puts key in the set for d (0: without expiry). Adding an element
// that is there does not renew its timeout before Linux 6.12, so the batch
// adds it (a no-op if there), deletes it and adds it anew: one
// transaction, which fails as a whole or not at all.
func (t Table) refresh(ctx context.Context, name string, key []byte, d time.Duration) error {
	s, err := t.session(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.ensure(); err != nil {
		return err
	}
	set := s.set(name)
	el := []nftables.SetElement{{Key: key, Timeout: d}}
	if err := s.c.SetAddElements(set, el); err != nil {
		return err
	}
	if err := s.c.SetDeleteElements(set, []nftables.SetElement{{Key: key}}); err != nil {
		return err
	}
	if err := s.c.SetAddElements(set, el); err != nil {
		return err
	}
	return s.c.Flush()
}

// remove deletes key from the set; ErrNotFound when it is not there.
func (t Table) remove(ctx context.Context, name string, key []byte) error {
	s, err := t.session(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	ok, err := s.present()
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	if err := s.c.SetDeleteElements(s.set(name), []nftables.SetElement{{Key: key}}); err != nil {
		return err
	}
	err = s.c.Flush()
	if errors.Is(err, unix.ENOENT) {
		return ErrNotFound
	}
	return err
}

// Close ends src's opening of port/proto now; established connections
// stay. ErrNotFound when there was none.
func (t Table) Close(ctx context.Context, src netip.Addr, port uint16, proto registry.Proto) error {
	input := fmt.Sprintf("%s %d/%v", src, port, proto)
	key, name, _, err := openingKey(src, port, proto, time.Second)
	if err != nil {
		return t.fail("close", input, err)
	}
	return t.fail("close", input, t.remove(ctx, name, key))
}

// Protect drops new connections to port/proto from the network, except
// from sources with an opening. The table is made on first use.
func (t Table) Protect(ctx context.Context, port uint16, proto registry.Proto) error {
	input := fmt.Sprintf("%d/%v", port, proto)
	key, err := checkPort(port, proto)
	if err != nil {
		return t.fail("protect", input, err)
	}
	return t.fail("protect", input, t.refresh(ctx, setProtected, key, 0))
}

// Unprotect stops protecting port/proto; ErrNotFound when it was not.
func (t Table) Unprotect(ctx context.Context, port uint16, proto registry.Proto) error {
	input := fmt.Sprintf("%d/%v", port, proto)
	key, err := checkPort(port, proto)
	if err != nil {
		return t.fail("unprotect", input, err)
	}
	return t.fail("unprotect", input, t.remove(ctx, setProtected, key))
}

// Block drops every packet from src, its established connections' too,
// for d; 0 blocks it until Unblock or Flush. Blocking again renews it.
func (t Table) Block(ctx context.Context, src netip.Addr, d time.Duration) error {
	input := src.String()
	key, name, err := blockKey(src)
	if err == nil {
		d, err = checkTimeout(d, true)
	}
	if err != nil {
		return t.fail("block", input, err)
	}
	return t.fail("block", input, t.refresh(ctx, name, key, d))
}

func blockKey(src netip.Addr) ([]byte, string, error) {
	src, err := checkSource(src)
	if err != nil {
		return nil, "", err
	}
	if src.Is4() {
		return src.AsSlice(), setBlocked4, nil
	}
	return src.AsSlice(), setBlocked6, nil
}

// Unblock ends src's block; ErrNotFound when there was none.
func (t Table) Unblock(ctx context.Context, src netip.Addr) error {
	input := src.String()
	key, name, err := blockKey(src)
	if err != nil {
		return t.fail("unblock", input, err)
	}
	return t.fail("unblock", input, t.remove(ctx, name, key))
}

// List reads the table: protected ports, openings and blocks with the time
// they have left. A table that is not there is an empty State.
func (t Table) List(ctx context.Context) (State, error) {
	s, err := t.session(ctx)
	if err != nil {
		return State{}, t.fail("list", "", err)
	}
	defer s.close()
	st, err := s.list()
	return st, t.fail("list", "", err)
}

func (s *session) list() (State, error) {
	var st State
	ok, err := s.present()
	if err != nil || !ok {
		return st, err
	}
	st.Present = true
	for _, set := range s.layout() {
		els, err := s.c.GetSetElements(set)
		if err != nil {
			return st, fmt.Errorf("list set %s: %w", set.Name, err)
		}
		for _, el := range els {
			switch set.Name {
			case setProtected:
				if p, ok := parsePortKey(el.Key); ok {
					st.Protected = append(st.Protected, p)
				}
			case setOpen4, setOpen6:
				n := 4
				if set.Name == setOpen6 {
					n = 16
				}
				if a, p, ok := parseOpenKey(el.Key, n); ok {
					st.Openings = append(st.Openings, Opening{Source: a, Port: p, Left: el.Expires, Timeout: el.Timeout})
				}
			case setBlocked4, setBlocked6:
				if a, ok := netip.AddrFromSlice(el.Key); ok {
					st.Blocked = append(st.Blocked, Blocked{Source: a, Left: el.Expires, Timeout: el.Timeout})
				}
			}
		}
	}
	sortState(&st)
	return st, nil
}

// Flush removes portkit's table, and with it every protection, opening
// and block; nothing else. It tells whether there was a table.
func (t Table) Flush(ctx context.Context) (bool, error) {
	s, err := t.session(ctx)
	if err != nil {
		return false, t.fail("flush", "", err)
	}
	defer s.close()
	ok, err := s.present()
	if err != nil || !ok {
		return false, t.fail("flush", "", err)
	}
	s.c.DelTable(s.nt)
	err = s.c.Flush()
	if errors.Is(err, unix.ENOENT) {
		return false, nil // removed by another meanwhile
	}
	return err == nil, t.fail("flush", "", err)
}

// Status is List with the other tables' chains that would drop packets to
// a protected port whatever portkit's table accepts (see Conflict). It
// reads the other tables and changes nothing.
func (t Table) Status(ctx context.Context) (Report, error) {
	s, err := t.session(ctx)
	if err != nil {
		return Report{}, t.fail("status", "", err)
	}
	defer s.close()
	st, err := s.list()
	if err != nil {
		return Report{State: st}, t.fail("status", "", err)
	}
	conflicts, err := s.conflicts(st.Protected)
	return Report{State: st, Conflicts: conflicts}, t.fail("status", "", err)
}

// Check tells whether the table can be used, changing nothing: it asks
// the kernel for its tables over nftables' netlink, which the kernel
// refuses without CAP_NET_ADMIN in the table's namespace (ErrPermission)
// as it refuses every change, and fails with ErrForeignTable when a table
// of its name is not portkit's. A daemon calls it at start, so that a
// missing privilege is told then, not at its first opening.
func (t Table) Check(ctx context.Context) error {
	s, err := t.session(ctx)
	if err != nil {
		return t.fail("check", "", err)
	}
	defer s.close()
	_, err = s.present()
	return t.fail("check", "", err)
}

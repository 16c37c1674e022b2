//go:build linux

package firewall

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
)

// conflicts reads the other tables' base chains on the input hook, and
// names those that would drop packets to a protected port. It is a
// heuristic over the rules' expressions, read-only:
//
//   - a chain whose policy is drop drops every protected port that no rule
//     of it accepts by port alone (a rule that also matches addresses,
//     connection state or anything else is not counted as accepting);
//   - a rule that drops or rejects, and matches no source or destination
//     address, drops the protected ports its port match covers (an equal,
//     a not-equal or a range on the destination port; a port set or a
//     comparison it does not read covers every port), or every protected
//     port when it matches no port at all ("ct state new drop", "drop").
//     A rule whose connection-state match leaves out new connections
//     ("ct state invalid drop") drops no opening and is not named.
//
// Jumps to other chains are not followed; chains on other hooks
// (prerouting, netdev ingress) and legacy iptables (x_tables) are not read.
func (s *session) conflicts(protected []Port) ([]Conflict, error) {
	chains, err := s.c.ListChains()
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	var out []Conflict
	for _, ch := range chains {
		if ch.Table == nil || ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookInput {
			continue
		}
		fam, ok := familyName(ch.Table.Family)
		if !ok || ch.Table.Family == nftables.TableFamilyINet && ch.Table.Name == s.nt.Name {
			continue
		}
		rules, err := s.c.GetRules(ch.Table, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of table %s %s chain %s: %w", fam, ch.Table.Name, ch.Name, err)
		}
		base := Conflict{Family: fam, Table: ch.Table.Name, Chain: ch.Name, Policy: "accept"}
		if ch.Priority != nil {
			base.Priority = int32(*ch.Priority)
		}
		policyDrop := ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop
		if policyDrop {
			base.Policy = "drop"
		}
		exprs := make([][]expr.Any, len(rules))
		handles := make([]uint64, len(rules))
		for i, r := range rules {
			exprs[i], handles[i] = r.Exprs, r.Handle
		}
		out = append(out, chainConflicts(base, policyDrop, exprs, handles, protected)...)
	}
	return out, nil
}

func familyName(f nftables.TableFamily) (string, bool) {
	switch f {
	case nftables.TableFamilyIPv4:
		return "ip", true
	case nftables.TableFamilyIPv6:
		return "ip6", true
	case nftables.TableFamilyINet:
		return "inet", true
	}
	return "", false
}

// chainConflicts applies conflicts' heuristic to one chain's rules.
func chainConflicts(base Conflict, policyDrop bool, rules [][]expr.Any, handles []uint64, protected []Port) []Conflict {
	var out []Conflict
	var accepted []Port
	for i, exprs := range rules {
		m := matchOf(exprs)
		switch {
		case m.verdict == verdictAccept && m.portOnly():
			accepted = append(accepted, m.covered(protected)...)
		case m.verdict == verdictDrop && !m.addr && !m.notNew:
			c := base
			c.Rule = handles[i]
			c.Reason = "rule drops " + m.describe()
			c.Ports = m.covered(protected)
			if len(c.Ports) > 0 || len(protected) == 0 && !m.ports {
				out = append(out, c)
			}
		}
	}
	if policyDrop {
		c := base
		c.Reason = "policy drop"
		for _, p := range protected {
			if !slices.Contains(accepted, p) {
				c.Ports = append(c.Ports, p)
			}
		}
		if len(c.Ports) > 0 || len(protected) == 0 {
			out = append(out, c)
		}
	}
	return out
}

type verdict uint8

const (
	verdictNone verdict = iota
	verdictAccept
	verdictDrop
)

// portRange is an inclusive range of destination ports.
type portRange struct{ lo, hi uint16 }

// ruleMatch is what a rule matches, as far as conflicts reads it.
type ruleMatch struct {
	verdict verdict
	proto   byte        // the IP protocol it matches; 0 for any
	ports   bool        // it matches the destination port
	ranges  []portRange // the ports it matches, when read
	unread  bool        // a port match it does not read (a set, a comparison)
	addr    bool        // it matches an address
	other   bool        // it matches something else (state, interface, ...)
	notNew  bool        // its ct state match leaves out new connections
}

// portOnly: the rule matches the port (and perhaps the protocol) and
// nothing else.
func (m ruleMatch) portOnly() bool { return m.ports && !m.unread && !m.addr && !m.other }

// covered are the protected ports the rule's match takes in.
func (m ruleMatch) covered(protected []Port) []Port {
	var out []Port
	for _, p := range protected {
		if m.proto != 0 {
			if n, _ := ipProto(p.Proto); n != m.proto {
				continue
			}
		}
		in := !m.ports || m.unread
		for _, r := range m.ranges {
			in = in || r.lo <= p.Number && p.Number <= r.hi
		}
		if in {
			out = append(out, p)
		}
	}
	return out
}

func (m ruleMatch) describe() string {
	proto := "th"
	if pr, ok := protoOf(m.proto); ok {
		proto = pr.String()
	}
	switch {
	case !m.ports && m.proto != 0:
		return "every " + proto + " packet it matches"
	case !m.ports:
		return "packets to any port"
	case m.unread:
		return proto + " dport matched in a way portkit does not read (a set or a comparison)"
	}
	s := proto + " dport"
	for i, r := range m.ranges {
		if i > 0 {
			s += ","
		}
		if r.lo == r.hi {
			s += fmt.Sprintf(" %d", r.lo)
		} else {
			s += fmt.Sprintf(" %d-%d", r.lo, r.hi)
		}
	}
	return s
}

// What a register holds.
type regKind uint8

const (
	regOther regKind = iota
	regDport
	regL4proto
	regAddr
	regCtState
	regFamily // the address family: a condition that changes nothing here
)

// reg32 maps a register number to its first 32-bit register: 1-4 are the
// 16-byte registers, 8-23 the 32-bit ones (nft_parse_register).
func reg32(r uint32) uint32 {
	if r <= 4 {
		return r * 4
	}
	return r - 8 + 4
}

// matchOf reads a rule's expressions: what each register is loaded with,
// and what the comparisons and lookups on them match.
func matchOf(exprs []expr.Any) ruleMatch {
	var m ruleMatch
	regs := map[uint32]regKind{}
	ctMask := map[uint32]uint32{}
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Payload:
			if e.OperationType != expr.PayloadLoad {
				continue
			}
			k := regOther
			switch {
			case e.Base == expr.PayloadBaseTransportHeader && e.Offset == 2 && e.Len == 2:
				k = regDport
			case e.Base == expr.PayloadBaseNetworkHeader && (e.Offset == 9 && e.Len == 1 || e.Offset == 6 && e.Len == 1):
				k = regL4proto // IPv4 protocol, IPv6 next header
			case e.Base == expr.PayloadBaseNetworkHeader:
				k = regAddr
			}
			regs[reg32(e.DestRegister)] = k
		case *expr.Meta:
			if e.SourceRegister {
				continue
			}
			switch e.Key {
			case expr.MetaKeyL4PROTO:
				regs[reg32(e.Register)] = regL4proto
			case expr.MetaKeyNFPROTO, expr.MetaKeyPROTOCOL:
				regs[reg32(e.Register)] = regFamily
			default:
				regs[reg32(e.Register)] = regOther
			}
		case *expr.Ct:
			if e.SourceRegister {
				continue
			}
			if e.Key == expr.CtKeySTATE {
				regs[reg32(e.Register)] = regCtState
			} else {
				regs[reg32(e.Register)] = regOther
			}
		case *expr.Bitwise:
			r := reg32(e.SourceRegister)
			if regs[r] == regCtState && len(e.Mask) == 4 {
				ctMask[reg32(e.DestRegister)] = binaryutil.NativeEndian.Uint32(e.Mask)
			}
			regs[reg32(e.DestRegister)] = regs[r]
		case *expr.Cmp:
			r := reg32(e.Register)
			switch regs[r] {
			case regDport:
				m.ports = true
				if len(e.Data) != 2 {
					m.unread = true
					continue
				}
				p := binary.BigEndian.Uint16(e.Data)
				switch e.Op {
				case expr.CmpOpEq:
					m.ranges = append(m.ranges, portRange{p, p})
				case expr.CmpOpNeq:
					if p > 0 {
						m.ranges = append(m.ranges, portRange{0, p - 1})
					}
					if p < 65535 {
						m.ranges = append(m.ranges, portRange{p + 1, 65535})
					}
				default:
					m.unread = true
				}
			case regL4proto:
				if e.Op == expr.CmpOpEq && len(e.Data) == 1 {
					m.proto = e.Data[0]
				} else {
					m.other = true
				}
			case regAddr:
				m.addr = true
			case regCtState:
				m.other = true
				if mask, ok := ctMask[r]; ok && mask&expr.CtStateBitNEW == 0 {
					m.notNew = true
				}
			case regFamily:
			default:
				m.other = true
			}
		case *expr.Range:
			if regs[reg32(e.Register)] == regDport && e.Op == expr.CmpOpEq && len(e.FromData) == 2 && len(e.ToData) == 2 {
				m.ports = true
				m.ranges = append(m.ranges, portRange{binary.BigEndian.Uint16(e.FromData), binary.BigEndian.Uint16(e.ToData)})
			} else {
				m.other = true
			}
		case *expr.Lookup:
			switch regs[reg32(e.SourceRegister)] {
			case regDport:
				m.ports, m.unread = true, true
			case regAddr:
				m.addr = true
			default:
				// A set of protocols, states, interfaces, or a
				// concatenation starting with one.
				m.other = true
			}
		case *expr.Verdict:
			switch e.Kind {
			case expr.VerdictAccept:
				m.verdict = verdictAccept
			case expr.VerdictDrop:
				m.verdict = verdictDrop
			}
		case *expr.Reject:
			m.verdict = verdictDrop
		case *expr.Counter, *expr.Log:
			// Counting and logging decide nothing.
		default:
			m.other = true
		}
	}
	return m
}

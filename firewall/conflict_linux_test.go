//go:build linux

package firewall

import (
	"slices"
	"testing"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"

	"github.com/portkit/portkit/registry"
)

// Rules as nft compiles them, for the conflict heuristic.
var (
	tcp     = []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}}}
	dport   = &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
	drop    = &expr.Verdict{Kind: expr.VerdictDrop}
	accept  = &expr.Verdict{Kind: expr.VerdictAccept}
	ctState = func(bits uint32) []expr.Any {
		return []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		}
	}
	portIs = func(op expr.CmpOp, p uint16) []expr.Any {
		return []expr.Any{dport, &expr.Cmp{Op: op, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)}}
	}
)

func rule(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch p := p.(type) {
		case expr.Any:
			out = append(out, p)
		case []expr.Any:
			out = append(out, p...)
		}
	}
	return out
}

func TestChainConflicts(t *testing.T) {
	p22, p80, u53 := Port{22, registry.TCP}, Port{80, registry.TCP}, Port{53, registry.UDP}
	protected := []Port{p22, p80, u53}
	tests := []struct {
		name       string
		policyDrop bool
		rules      [][]expr.Any
		protected  []Port
		want       []string // reason: ports
	}{
		{"tcp dport 22 drop", false, [][]expr.Any{rule(tcp, portIs(expr.CmpOpEq, 22), drop)}, protected,
			[]string{"rule drops tcp dport 22: [22/tcp]"}},
		{"tcp dport != 22 reject", false, [][]expr.Any{rule(tcp, portIs(expr.CmpOpNeq, 22), &expr.Reject{})}, protected,
			[]string{"rule drops tcp dport 0-21, 23-65535: [80/tcp]"}},
		{"tcp dport 1-100 drop", false, [][]expr.Any{rule(tcp, dport, &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{0, 1}, ToData: []byte{0, 100}}, drop)}, protected,
			[]string{"rule drops tcp dport 1-100: [22/tcp 80/tcp]"}},
		{"tcp dport @set drop", false, [][]expr.Any{rule(tcp, dport, &expr.Lookup{SourceRegister: 1, SetName: "s"}, drop)}, protected,
			[]string{"rule drops tcp dport matched in a way portkit does not read (a set or a comparison): [22/tcp 80/tcp]"}},
		{"ct state new drop", false, [][]expr.Any{rule(ctState(expr.CtStateBitNEW), drop)}, protected,
			[]string{"rule drops packets to any port: [22/tcp 80/tcp 53/udp]"}},
		{"ct state invalid drop is no conflict", false, [][]expr.Any{rule(ctState(expr.CtStateBitINVALID), drop)}, protected, nil},
		{"ip saddr drop is no conflict", false, [][]expr.Any{rule(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{198, 18, 0, 9}}, drop)}, protected, nil},
		{"udp drop", false, [][]expr.Any{rule(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{17}}, &expr.Counter{}, drop)}, protected,
			[]string{"rule drops every udp packet it matches: [53/udp]"}},
		{"policy drop, 80 accepted", true, [][]expr.Any{
			rule(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept),
			rule(tcp, portIs(expr.CmpOpEq, 80), accept),
		}, protected, []string{"policy drop: [22/tcp 53/udp]"}},
		{"policy drop, all accepted", true, [][]expr.Any{
			rule(tcp, dport, &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{0, 1}, ToData: []byte{0, 100}}, accept),
			rule(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{17}}, portIs(expr.CmpOpEq, 53), accept),
		}, protected, nil},
		{"policy drop, nothing protected", true, nil, nil, []string{"policy drop: []"}},
		{"policy accept, nothing dropping", false, [][]expr.Any{rule(tcp, portIs(expr.CmpOpEq, 22), accept)}, protected, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handles := make([]uint64, len(tt.rules))
			var got []string
			for _, c := range chainConflicts(Conflict{}, tt.policyDrop, tt.rules, handles, tt.protected) {
				s := c.Reason + ": ["
				for i, p := range c.Ports {
					if i > 0 {
						s += " "
					}
					s += p.String()
				}
				got = append(got, s+"]")
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

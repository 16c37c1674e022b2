// Package knock is portkit's port knocking: knockd-compatible knock
// sequences (static, one-time from a file, or derived from a shared secret
// and the time), the server that watches for them and for fwknop SPA
// packets (Server), and the client side (SendSequence, SendSPA).
//
// The wire formats and the pure logic they need live in the
// sub-packages: knock/spa (fwknop's SPA codec), knock/replay (the time
// window and the replay cache), knock/access (fwknop's access.conf). The
// server changes no firewall itself: it asks an Opener to let a source in
// to a port for a time.
package knock

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Opener lets src reach port/proto for d. portkit's firewall package is
// one; tests use a fake. Open must not block for long: the server calls it
// from its packet loop, with a context that ends after OpenTimeout.
type Opener interface {
	Open(ctx context.Context, src netip.Addr, port uint16, proto string, d time.Duration) error
}

// OpenerFunc adapts a function to an Opener.
type OpenerFunc func(ctx context.Context, src netip.Addr, port uint16, proto string, d time.Duration) error

// Open calls f.
func (f OpenerFunc) Open(ctx context.Context, src netip.Addr, port uint16, proto string, d time.Duration) error {
	return f(ctx, src, port, proto, d)
}

// Proto is a knock's transport.
type Proto uint8

const (
	TCP Proto = 6
	UDP Proto = 17
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "proto" + strconv.Itoa(int(p))
}

// Knock is one hit of a sequence: a TCP SYN or a UDP datagram to Port.
type Knock struct {
	Port  uint16
	Proto Proto
}

func (k Knock) String() string {
	if k.Proto == UDP {
		return strconv.Itoa(int(k.Port)) + ":udp"
	}
	return strconv.Itoa(int(k.Port))
}

// MaxSequenceLen bounds a sequence's knocks.
const MaxSequenceLen = 32

// ErrSequence is wrapped by the errors of ParseSequence.
var ErrSequence = errors.New("bad knock sequence")

// ParseKnock parses one knock as knockd and its knock client write it:
// "7000" (TCP), "7000:udp", "7000:tcp"; "7000/udp" is taken too. def is the
// protocol of a bare port.
func ParseKnock(s string, def Proto) (Knock, error) {
	s = strings.TrimSpace(s)
	port, proto, ok := strings.Cut(s, ":")
	if !ok {
		port, proto, ok = strings.Cut(s, "/")
	}
	k := Knock{Proto: def}
	if ok {
		switch strings.ToLower(strings.TrimSpace(proto)) {
		case "tcp":
			k.Proto = TCP
		case "udp":
			k.Proto = UDP
		default:
			return Knock{}, fmt.Errorf("%w: %q: protocol %q is not tcp or udp", ErrSequence, s, proto)
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(port), 10, 16)
	if err != nil || n == 0 {
		return Knock{}, fmt.Errorf("%w: %q: port %q is not 1-65535", ErrSequence, s, port)
	}
	k.Port = uint16(n)
	return k, nil
}

// ParseSequence parses knockd's Sequence syntax: knocks separated by
// commas, "7000,8000:udp,9000". A knock may not repeat the one before it:
// the server cannot tell that from a retransmission, which never breaks a
// sequence.
func ParseSequence(s string) ([]Knock, error) {
	var seq []Knock
	for f := range strings.SplitSeq(s, ",") {
		k, err := ParseKnock(f, TCP)
		if err != nil {
			return nil, err
		}
		seq = append(seq, k)
	}
	return seq, checkSequence(s, seq)
}

func checkSequence(s string, seq []Knock) error {
	switch {
	case len(seq) == 0:
		return fmt.Errorf("%w: %q: no knock", ErrSequence, s)
	case len(seq) > MaxSequenceLen:
		return fmt.Errorf("%w: %q: %d knocks, at most %d", ErrSequence, s, len(seq), MaxSequenceLen)
	}
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] {
			return fmt.Errorf("%w: %q: knock %d repeats the one before it (a repeat is taken for a retransmission)", ErrSequence, s, i+1)
		}
	}
	return nil
}

// FormatSequence writes seq in knockd's syntax.
func FormatSequence(seq []Knock) string {
	parts := make([]string, len(seq))
	for i, k := range seq {
		parts[i] = k.String()
	}
	return strings.Join(parts, ",")
}

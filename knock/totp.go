package knock

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Defaults of TOTP.
const (
	DefaultTOTPStep   = 30 * time.Second
	DefaultTOTPLength = 4
)

// TOTP derives a knock sequence from a shared secret and the time, so
// that a sequence seen on the wire is of no use a step later. It follows
// RFC 6238: the time step counter C = floor(Unix time / Step), as 8 bytes
// big-endian, goes through HMAC-SHA-256 under the secret, and RFC 4226's
// dynamic truncation makes a 31-bit number of the MAC; here knock i (from
// 0) uses the MAC of C followed by the byte i, and its number is mapped
// into the port range [Low, High]. A port equal to the one before it moves
// to the next one in the range, since a repeated knock is taken for a
// retransmission.
type TOTP struct {
	Secret    []byte
	Step      time.Duration // DefaultTOTPStep when 0
	Length    int           // knocks; DefaultTOTPLength when 0
	Low, High uint16        // the port range, both included
	Proto     Proto         // TCP when 0
}

// WithDefaults fills the zero fields.
func (t TOTP) WithDefaults() TOTP {
	if t.Step <= 0 {
		t.Step = DefaultTOTPStep
	}
	if t.Length <= 0 {
		t.Length = DefaultTOTPLength
	}
	if t.Proto == 0 {
		t.Proto = TCP
	}
	return t
}

// Check tells what is wrong with t (after WithDefaults).
func (t TOTP) Check() error {
	switch {
	case len(t.Secret) < 16:
		return errors.New("the secret is shorter than 16 bytes")
	case t.Step < time.Second:
		return fmt.Errorf("step %v is shorter than 1s", t.Step)
	case t.Length < 2 || t.Length > MaxSequenceLen:
		return fmt.Errorf("length %d is not 2 to %d", t.Length, MaxSequenceLen)
	case t.Low == 0 || t.High <= t.Low:
		return fmt.Errorf("port range %d-%d: want LOW-HIGH, 1 <= LOW < HIGH", t.Low, t.High)
	case t.Proto != TCP && t.Proto != UDP:
		return fmt.Errorf("protocol %v is not tcp or udp", t.Proto)
	}
	return nil
}

// Counter is the time step counter at now.
func (t TOTP) Counter(now time.Time) uint64 {
	t = t.WithDefaults()
	return uint64(now.Unix()) / uint64(t.Step/time.Second)
}

// At is the sequence of the step at now.
func (t TOTP) At(now time.Time) []Knock { return t.Sequence(t.Counter(now)) }

// Sequence is the sequence of time step counter c.
func (t TOTP) Sequence(c uint64) []Knock {
	t = t.WithDefaults()
	span := uint32(t.High) - uint32(t.Low) + 1
	var msg [9]byte
	binary.BigEndian.PutUint64(msg[:8], c)
	seq := make([]Knock, t.Length)
	for i := range seq {
		msg[8] = byte(i)
		m := hmac.New(sha256.New, t.Secret)
		m.Write(msg[:])
		sum := m.Sum(nil)
		off := sum[len(sum)-1] & 0x0f
		n := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
		port := uint32(t.Low) + n%span
		if i > 0 && uint16(port) == seq[i-1].Port {
			port = uint32(t.Low) + (port-uint32(t.Low)+1)%span
		}
		seq[i] = Knock{Port: uint16(port), Proto: t.Proto}
	}
	return seq
}

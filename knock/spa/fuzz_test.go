package spa

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode: no input makes Decode panic; every failure is an *Error;
// a Decoder, used packet after packet, says what Decode says; whatever
// decodes encodes again to a packet that decodes the same.
func FuzzDecode(f *testing.F) {
	k := testKeys()
	d, err := NewDecoder(k)
	if err != nil {
		f.Fatal(err)
	}
	zeros := bytes.NewReader(make([]byte, 1024)) // deterministic seeds
	for _, m := range []Message{
		access("root", "198.18.0.1,tcp/22"),
		{Username: "u", Timestamp: testTime, Type: ClientTimeoutLocalNATAccessMsg, Message: "198.18.0.1,tcp/80", NATAccess: "127.0.0.1,8080", ServerAuth: "a", ClientTimeout: 30},
		{Username: "u", Timestamp: testTime, Type: CommandMsg, Message: "198.18.0.1,uptime"},
	} {
		pkt, err := Encode(m, k, zeros)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pkt)
		f.Add(pkt[:len(pkt)-1])
		f.Add(append([]byte(saltedB64), pkt...))
	}
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte("A"), 200))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		m, err := Decode(pkt, k)
		dm, derr := d.Decode(pkt)
		for _, kind := range []error{nil, ErrTooShort, ErrTooLong, ErrNotBase64, ErrSaltedPrefix, ErrBadHMAC, ErrBadCiphertext, ErrBadPadding, ErrBadFormat, ErrBadDigest} {
			if errors.Is(err, kind) != errors.Is(derr, kind) {
				t.Fatalf("Decode: %v; a Decoder: %v", err, derr)
			}
		}
		if err == nil && *dm != *m {
			t.Fatalf("Decode: %+v; a Decoder: %+v", m, dm)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		again, err := Encode(*m, k, nil)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", m, err)
		}
		m2, err := Decode(again, k)
		if err != nil || *m2 != *m {
			t.Fatalf("re-encoded: %+v %v, was %+v", m2, err, m)
		}
	})
}

// FuzzParse: the decrypted message parser, which the HMAC keeps out of
// FuzzDecode's reach, on its own: no panic; a message it accepts encodes
// and decodes to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		inner("1234567890123456", "cm9vdA", "1796652945", "3.0.0", "1", "MTk4LjE4LjAuMSx0Y3AvMjI"),
		inner("1234567890123456", "cm9vdA", "1796652945", "3.0.0", "3", "MTk4LjE4LjAuMSx0Y3AvMjI", "30"),
		inner("1234567890123456", "cm9vdA", "1796652945", "3.0.0", "2", "MTk4LjE4LjAuMSx0Y3AvMjI", "MTAuMC4wLjUsMjI"),
		inner("1234567890123456", "cm9vdA", "1796652945", "3.0.0", "4", "MTk4LjE4LjAuMSx0Y3AvMjI", "MTAuMC4wLjUsMjI", "YQ", "30"),
		inner("1234567890123456", "cm9vdA", "1796652945", "3.0.0", "0", "MTk4LjE4LjAuMSx1cHRpbWU"),
		"1234567890123456:::::::",
		":",
		"",
	} {
		f.Add([]byte(s))
	}
	k := testKeys()
	f.Fuzz(func(t *testing.T, plain []byte) {
		m, err := parse(plain)
		if err != nil {
			if !errors.Is(err, ErrBadFormat) && !errors.Is(err, ErrBadDigest) {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		pkt, err := Encode(*m, k, nil)
		if err != nil {
			t.Fatalf("parsed %+v does not encode: %v", m, err)
		}
		m2, err := Decode(pkt, k)
		if err != nil || *m2 != *m {
			t.Fatalf("round trip: %+v %v, was %+v", m2, err, m)
		}
	})
}

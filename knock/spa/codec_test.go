package spa

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testKeys are fixed keys, so that seeds and cases are reproducible.
func testKeys() Keys {
	return Keys{Encryption: bytes.Repeat([]byte{0x11}, 32), HMAC: bytes.Repeat([]byte{0x22}, 64)}
}

var testTime = time.Unix(1796652945, 0).UTC()

func access(user, msg string) Message {
	return Message{Username: user, Timestamp: testTime, Type: AccessMsg, Message: msg}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Message
		k    func(*Keys)
	}{
		{"access", access("root", "198.18.0.1,tcp/22"), nil},
		{"several ports", access("root", "0.0.0.0,tcp/22,udp/53,icmp/8"), nil},
		{"ipv6", access("root", "2001:2::1,tcp/22"), nil},
		{"command", Message{Username: "ops", Timestamp: testTime, Type: CommandMsg, Message: "198.18.0.1,echo hi: there"}, nil},
		{"client timeout", Message{Username: "u", Timestamp: testTime, Type: ClientTimeoutAccessMsg, Message: "198.18.0.1,tcp/22", ClientTimeout: 600}, nil},
		{"nat", Message{Username: "u", Timestamp: testTime, Type: NATAccessMsg, Message: "198.18.0.1,tcp/22", NATAccess: "10.0.0.5,22"}, nil},
		{"local nat timeout server auth", Message{Username: "u", Timestamp: testTime, Type: ClientTimeoutLocalNATAccessMsg,
			Message: "198.18.0.1,tcp/80", NATAccess: "127.0.0.1,8080", ServerAuth: "crypt,x:y", ClientTimeout: 30}, nil},
		{"server auth", Message{Username: "u", Timestamp: testTime, Type: AccessMsg, Message: "198.18.0.1,tcp/22", ServerAuth: "s"}, nil},
		{"md5 digest", Message{Username: "u", Timestamp: testTime, Type: AccessMsg, Message: "198.18.0.1,tcp/22", Digest: MD5}, nil},
		{"sha3-512 digest, sha1 hmac", Message{Username: "u", Timestamp: testTime, Type: AccessMsg, Message: "198.18.0.1,tcp/22", Digest: SHA3_512},
			func(k *Keys) { k.HMACDigest = SHA1 }},
		{"sha3-256 hmac, passphrase key", access("u", "198.18.0.1,tcp/22"),
			func(k *Keys) { k.HMACDigest = SHA3_256; k.Encryption = []byte("short pass") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := testKeys()
			if tc.k != nil {
				tc.k(&k)
			}
			pkt, err := Encode(tc.m, k, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(pkt) < MinPacketLen || len(pkt) > MaxPacketLen {
				t.Fatalf("packet of %d bytes", len(pkt))
			}
			got, err := Decode(pkt, k)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.m
			want.Random, want.Version, want.Digest = got.Random, DefaultVersion, tc.m.Digest.orDefault()
			if len(got.Random) != 16 || *got != want {
				t.Fatalf("got  %+v\nwant %+v", *got, want)
			}
		})
	}
}

// seal encrypts plain as Encode does and puts the HMAC on it, so tests
// can make packets with a good HMAC around a bad inside.
func seal(t *testing.T, plain []byte, k Keys) []byte {
	t.Helper()
	salt := []byte("12345678")
	key, iv := bytesToKey(k.Encryption, salt)
	block, _ := aes.NewCipher(key[:])
	raw := append([]byte("Salted__"), salt...)
	ct := append([]byte{}, plain...)
	if len(ct)%16 != 0 {
		t.Fatalf("seal: %d bytes", len(ct))
	}
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(ct, ct)
	full := base64.RawStdEncoding.EncodeToString(append(raw, ct...))
	return []byte(full[len(saltedB64):] + macB64(k, full))
}

func pkcs7(s string) []byte {
	n := 16 - len(s)%16
	return append([]byte(s), bytes.Repeat([]byte{byte(n)}, n)...)
}

// inner makes a decrypted message with a correct digest.
func inner(fields ...string) string {
	s := strings.Join(fields, ":")
	return s + ":" + SHA256.sumB64([]byte(s))
}

func TestDecodeErrors(t *testing.T) {
	k := testKeys()
	// A fixed salt: under another key the padding check fails for this
	// one; with a random salt it would pass by chance one time in ~256.
	good, err := Encode(access("root", "198.18.0.1,tcp/22"), k, bytes.NewReader(make([]byte, 16)))
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(s string) string { return base64.RawStdEncoding.EncodeToString([]byte(s)) }
	flip := func(i int) []byte {
		p := bytes.Clone(good)
		if p[i] == 'A' {
			p[i] = 'B'
		} else {
			p[i] = 'A'
		}
		return p
	}
	otherHMAC := k
	otherHMAC.HMAC = []byte("other")
	otherEnc := k
	otherEnc.Encryption = []byte("other")
	for _, tc := range []struct {
		name string
		pkt  []byte
		k    Keys
		want error
	}{
		{"empty", nil, k, ErrTooShort},
		{"short", good[:MinPacketLen-1], k, ErrTooShort},
		{"long", bytes.Repeat([]byte("A"), MaxPacketLen+1), k, ErrTooLong},
		{"not base64", append(bytes.Clone(good[:200]), '\n'), k, ErrNotBase64},
		{"salted prefix kept", append([]byte(saltedB64), good...), k, ErrSaltedPrefix},
		{"ciphertext flipped", flip(20), k, ErrBadHMAC},
		{"hmac flipped", flip(len(good) - 1), k, ErrBadHMAC},
		{"truncated", good[:len(good)-1], k, ErrBadHMAC},
		{"other hmac key", good, otherHMAC, ErrBadHMAC},
		{"other encryption key", good, otherEnc, ErrBadPadding},
		{"no keys", good, Keys{}, ErrBadKey},
		{"bad padding", seal(t, append([]byte(inner("1234567890123456", b64("u"), "1796652945", "3.0.0", "1", b64("198.18.0.1,tcp/22"))), bytes.Repeat([]byte{3}, 8)...)[:96], k), k, ErrBadPadding},
		{"digest of no known length", seal(t, pkcs7("1234567890123456:"+b64("u")+":1796652945:3.0.0:1:"+b64("198.18.0.1,tcp/22")+":"+strings.Repeat("A", 30)), k), k, ErrBadFormat},
		{"digest mismatch", seal(t, pkcs7("1234567890123456:"+b64("u")+":1796652945:3.0.0:1:"+b64("198.18.0.1,tcp/22")+":"+strings.Repeat("A", 43)), k), k, ErrBadDigest},
		{"short random", seal(t, pkcs7(inner("123456789012345", b64("u"), "1796652945", "3.0.0", "1", b64("198.18.0.1,tcp/22"))), k), k, ErrBadFormat},
		{"bad username", seal(t, pkcs7(inner("1234567890123456", b64("a/b"), "1796652945", "3.0.0", "1", b64("198.18.0.1,tcp/22"))), k), k, ErrBadFormat},
		{"bad type", seal(t, pkcs7(inner("1234567890123456", b64("u"), "1796652945", "3.0.0", "7", b64("198.18.0.1,tcp/22"))), k), k, ErrBadFormat},
		{"bad port", seal(t, pkcs7(inner("1234567890123456", b64("u"), "1796652945", "3.0.0", "1", b64("198.18.0.1,tcp/0"))), k), k, ErrBadFormat},
		{"nat missing", seal(t, pkcs7(inner("1234567890123456", b64("u"), "1796652945", "3.0.0", "2", b64("198.18.0.1,tcp/22"))), k), k, ErrBadFormat},
		{"too many fields", seal(t, pkcs7(inner("1234567890123456", b64("u"), "1796652945", "3.0.0", "1", b64("198.18.0.1,tcp/22"), b64("a"), b64("b"))), k), k, ErrBadFormat},
		{"timestamp too big", seal(t, pkcs7(inner("1234567890123456", b64("u"), "99999999999", "3.0.0", "1", b64("198.18.0.1,tcp/22"))), k), k, ErrBadFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.pkt, tc.k)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, %v; want %v", m, err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not *Error", err)
			}
			// A Decoder says the same of every packet.
			d, err := NewDecoder(tc.k)
			if err == nil {
				m, err = d.Decode(tc.pkt)
			}
			if !errors.Is(err, tc.want) || !errors.As(err, &e) {
				t.Fatalf("Decoder: got %v, %v (%T); want %v as *Error", m, err, err, tc.want)
			}
		})
	}
}

// TestDecoderRoundTrip: a Decoder opens what Encode made, under each HMAC
// digest, packet after packet (its HMAC state is reused).
func TestDecoderRoundTrip(t *testing.T) {
	for _, hd := range []Digest{SHA256, SHA1, SHA512, SHA3_256, MD5} {
		k := testKeys()
		k.HMACDigest = hd
		d, err := NewDecoder(k)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			want := access("root", fmt.Sprintf("198.18.0.%d,tcp/22", i+1))
			pkt, err := Encode(want, k, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Junk in between must leave nothing behind in the state.
			if _, err := d.Decode(bytes.Repeat([]byte("Q"), 300)); !errors.Is(err, ErrBadHMAC) {
				t.Fatalf("%v: junk: %v, want ErrBadHMAC", hd, err)
			}
			got, err := d.Decode(pkt)
			if err != nil {
				t.Fatalf("%v, packet %d: %v", hd, i, err)
			}
			if got.Message != want.Message {
				t.Fatalf("%v: got %q, want %q", hd, got.Message, want.Message)
			}
		}
	}
}

// TestDecoderJunkAllocatesNothing: what a Decoder refuses before any
// decryption costs no allocation, so that a flood of it costs parsing only.
func TestDecoderJunkAllocatesNothing(t *testing.T) {
	d, err := NewDecoder(testKeys())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
		want error
	}{
		{"short", bytes.Repeat([]byte("A"), MinPacketLen-1), ErrTooShort},
		{"long", bytes.Repeat([]byte("A"), MaxPacketLen+1), ErrTooLong},
		{"not base64", append(bytes.Repeat([]byte("A"), 200), 0xff), ErrNotBase64},
		{"salted prefix", []byte(saltedB64 + strings.Repeat("A", 300)), ErrSaltedPrefix},
		{"bad HMAC", bytes.Repeat([]byte("b64+/junk"), 50), ErrBadHMAC},
	} {
		var err error
		allocs := testing.AllocsPerRun(100, func() { _, err = d.Decode(tc.pkt) })
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations a packet, want none", tc.name, allocs)
		}
	}
}

// TestNotB64 holds the bitmask look-up to the alphabet, byte by byte.
func TestNotB64(t *testing.T) {
	for c := range 256 {
		got := NotBase64([]byte{'A', byte(c)}) < 0
		if got != isB64(byte(c)) {
			t.Errorf("byte %#02x: NotBase64 says base64 %v, isB64 %v", c, got, isB64(byte(c)))
		}
	}
	if NotBase64([]byte("AAA!A")) != 3 {
		t.Error("NotBase64 does not give the offset of the bad byte")
	}
}

func TestFieldErrorNamesField(t *testing.T) {
	k := testKeys()
	b64 := func(s string) string { return base64.RawStdEncoding.EncodeToString([]byte(s)) }
	pkt := seal(t, pkcs7(inner("1234567890123456", b64("a/b"), "1796652945", "3.0.0", "1", b64("198.18.0.1,tcp/22"))), k)
	_, err := Decode(pkt, k)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "username" || fe.Value != "a/b" {
		t.Fatalf("got %v", err)
	}
}

func TestEncodeRefuses(t *testing.T) {
	k := testKeys()
	for _, tc := range []struct {
		name string
		m    Message
		k    Keys
		want error
	}{
		{"no username", access("", "198.18.0.1,tcp/22"), k, ErrBadFormat},
		{"username with colon", access("a:b", "198.18.0.1,tcp/22"), k, ErrBadFormat},
		{"bad access", access("u", "198.18.0.1"), k, ErrBadFormat},
		{"unknown proto", access("u", "198.18.0.1,sctp/22"), k, ErrBadFormat},
		{"timeout on access", Message{Username: "u", Timestamp: testTime, Type: AccessMsg, Message: "198.18.0.1,tcp/22", ClientTimeout: 5}, k, ErrBadFormat},
		{"timeout type without timeout", Message{Username: "u", Timestamp: testTime, Type: ClientTimeoutAccessMsg, Message: "198.18.0.1,tcp/22"}, k, ErrBadFormat},
		{"nat without nat type", Message{Username: "u", Timestamp: testTime, Type: AccessMsg, Message: "198.18.0.1,tcp/22", NATAccess: "h,1"}, k, ErrBadFormat},
		{"random not digits", Message{Random: "12345678901234ab", Username: "u", Timestamp: testTime, Type: AccessMsg, Message: "198.18.0.1,tcp/22"}, k, ErrBadFormat},
		{"before 1970", Message{Username: "u", Timestamp: time.Unix(-1, 0), Type: AccessMsg, Message: "198.18.0.1,tcp/22"}, k, ErrBadFormat},
		{"too long", Message{Username: "u", Timestamp: testTime, Type: CommandMsg, Message: "198.18.0.1," + strings.Repeat("x", 300)}, k, ErrBadFormat},
		{"long encryption key", access("u", "198.18.0.1,tcp/22"), Keys{Encryption: make([]byte, 33), HMAC: []byte("h")}, ErrBadKey},
		{"no hmac key", access("u", "198.18.0.1,tcp/22"), Keys{Encryption: []byte("k")}, ErrBadKey},
		{"unknown hmac digest", access("u", "198.18.0.1,tcp/22"), Keys{Encryption: []byte("k"), HMAC: []byte("h"), HMACDigest: 9}, ErrBadKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Encode(tc.m, tc.k, nil); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestBytesToKey: the derivation matches `openssl enc -aes-256-cbc -md
// md5 -S 0102030405060708 -pass pass:secret -P`.
func TestBytesToKey(t *testing.T) {
	key, iv := bytesToKey([]byte("secret"), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	const want = "C9E5A1BD216DBE1317E230CEF48F38EE7F0E17AD64022144BCCEC4A1AA2879AB E24B32BBBC4EF02ECBCB6576523AD893"
	if got := strings.ToUpper(hexString(key[:]) + " " + hexString(iv[:])); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestKeygen(t *testing.T) {
	k, err := Keygen(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Encryption) != 32 || len(k.HMAC) != 64 || k.HMACDigest != SHA256 {
		t.Fatalf("%d %d %v", len(k.Encryption), len(k.HMAC), k.HMACDigest)
	}
	enc, err := DecodeKeyBase64(k.EncryptionBase64())
	if err != nil || !bytes.Equal(enc, k.Encryption) {
		t.Fatal(err)
	}
	// fwknop writes padded base64; unpadded is taken too.
	h, err := DecodeKeyBase64(strings.TrimRight(k.HMACBase64(), "="))
	if err != nil || !bytes.Equal(h, k.HMAC) {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "!!!!", "QQ=x"} {
		if _, err := DecodeKeyBase64(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestUnpad(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want int // bytes kept, -1: refused
	}{
		{pkcs7("abc"), 3},
		{pkcs7(strings.Repeat("a", 16)), 16},
		{append(bytes.Repeat([]byte("a"), 15), 0), -1},
		{append(bytes.Repeat([]byte("a"), 15), 17), -1},
		{append(bytes.Repeat([]byte("a"), 14), 1, 2), -1},
		{nil, -1},
		{[]byte("abc"), -1},
	} {
		got, ok := unpad(tc.in)
		if (tc.want < 0) == ok || (ok && len(got) != tc.want) {
			t.Errorf("unpad(%x) = %x, %v", tc.in, got, ok)
		}
	}
}

func TestParseAccess(t *testing.T) {
	a, err := ParseAccess("198.18.0.1,tcp/22,udp/53")
	if err != nil || a.String() != "198.18.0.1,tcp/22,udp/53" || len(a.Ports) != 2 || a.Ports[1] != (ProtoPort{"udp", 53}) {
		t.Fatalf("%v %v", a, err)
	}
	for _, bad := range []string{"", "198.18.0.1", "198.18.0.1,", "x,tcp/22", "198.18.0.1,tcp/65536", "198.18.0.1,tcp/+1", "198.18.0.1,tcp22", "fe80::1%eth0,tcp/22"} {
		if _, err := ParseAccess(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

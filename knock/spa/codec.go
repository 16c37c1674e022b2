package spa

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"time"
)

// Packet size bounds, fwknopd's: it ignores shorter or longer payloads.
const (
	MinPacketLen = 140
	MaxPacketLen = 1500
)

// saltedB64 is the base64 of "Salted__" and the first bits of the salt
// that follows: the ten characters every OpenSSL-style ciphertext begins
// with, which clients strip from the wire.
const saltedB64 = "U2FsdGVkX1"

const saltedMagic = "Salted__"

// Encode makes the wire form of m under keys: the bytes a client sends
// as one UDP payload. Random bytes (the random field when m.Random is
// empty, the salt) come from rnd, crypto/rand when nil. m.Version
// defaults to DefaultVersion and m.Digest to SHA256.
func Encode(m Message, keys Keys, rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if err := keys.check(); err != nil {
		return nil, err
	}
	if m.Random == "" {
		r, err := randomDigits(rnd)
		if err != nil {
			return nil, &Error{Op: "encode", Err: err}
		}
		m.Random = r
	}
	if m.Version == "" {
		m.Version = DefaultVersion
	}
	if err := m.check(); err != nil {
		return nil, &Error{Op: "encode", Err: err}
	}
	b64 := base64.RawStdEncoding.EncodeToString
	inner := make([]string, 0, 9)
	inner = append(inner, m.Random, b64([]byte(m.Username)),
		strconv.FormatInt(m.Timestamp.Unix(), 10), m.Version,
		strconv.Itoa(int(m.Type)), b64([]byte(m.Message)))
	if m.Type.HasNAT() {
		inner = append(inner, b64([]byte(m.NATAccess)))
	}
	if m.ServerAuth != "" {
		inner = append(inner, b64([]byte(m.ServerAuth)))
	}
	if m.Type.HasClientTimeout() {
		inner = append(inner, strconv.Itoa(m.ClientTimeout))
	}
	encoded := strings.Join(inner, ":")
	plain := encoded + ":" + m.Digest.orDefault().sumB64([]byte(encoded))

	var salt [8]byte
	if _, err := io.ReadFull(rnd, salt[:]); err != nil {
		return nil, &Error{Op: "encode", Err: err}
	}
	key, iv := bytesToKey(keys.Encryption, salt[:])
	block, _ := aes.NewCipher(key[:]) // a 32-byte key never fails
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	raw := make([]byte, 16, 16+len(plain)+pad)
	copy(raw, saltedMagic)
	copy(raw[8:], salt[:])
	raw = append(raw, plain...)
	raw = append(raw, bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(raw[16:], raw[16:])

	full := base64.RawStdEncoding.EncodeToString(raw)
	tag := macB64(keys, full)
	pkt := make([]byte, 0, len(full)-len(saltedB64)+len(tag))
	pkt = append(pkt, full[len(saltedB64):]...)
	pkt = append(pkt, tag...)
	if len(pkt) > MaxPacketLen {
		return nil, &Error{Op: "encode", Err: fmt.Errorf("%w: %d bytes, at most %d", ErrTooLong, len(pkt), MaxPacketLen)}
	}
	return pkt, nil
}

// Decode checks and opens one SPA packet (a UDP payload) under keys. The
// HMAC is checked first, in constant time, and nothing of the packet is
// decrypted or parsed unless it matches. The message's time is not
// judged here (see the replay package's Window), nor is the packet's
// digest looked up (see ReplayDigest).
func Decode(pkt []byte, keys Keys) (*Message, error) {
	if err := keys.check(); err != nil {
		return nil, err
	}
	fail := func(err error) (*Message, error) { return nil, &Error{Op: "decode", Err: err} }
	switch {
	case len(pkt) < MinPacketLen:
		return fail(fmt.Errorf("%w: %d bytes, at least %d", ErrTooShort, len(pkt), MinPacketLen))
	case len(pkt) > MaxPacketLen:
		return fail(fmt.Errorf("%w: %d bytes, at most %d", ErrTooLong, len(pkt), MaxPacketLen))
	}
	if i := NotBase64(pkt); i >= 0 {
		return fail(fmt.Errorf("%w: byte %#02x at offset %d", ErrNotBase64, pkt[i], i))
	}
	if bytes.HasPrefix(pkt, []byte(saltedB64)) {
		return fail(ErrSaltedPrefix)
	}
	tagLen := keys.HMACDigest.orDefault().b64Len()
	body, tag := pkt[:len(pkt)-tagLen], pkt[len(pkt)-tagLen:]
	full := saltedB64 + string(body)
	if !hmac.Equal([]byte(macB64(keys, full)), tag) {
		return fail(ErrBadHMAC)
	}
	return decrypt(keys, full)
}

// A Decoder decodes packets under one stanza's keys as Decode does, with
// an HMAC state and buffers made once: a packet refused before anything
// is decrypted (too short or long, not base64, "Salted__" left in, a bad
// HMAC) costs it no allocation, so that a flood of junk costs parsing
// only. Those refusals are *Error values made once too, without the
// packet's details (its length, the offset of a bad byte); check the
// length first for those. Not safe for concurrent use.
type Decoder struct {
	keys   Keys
	mac    hash.Hash
	prefix []byte // saltedB64, which the HMAC covers before the packet
	sum    []byte // the HMAC, made in place
	tag    []byte // its base64

	errTooShort, errTooLong, errNotBase64, errSalted, errBadHMAC error
}

// NewDecoder returns a Decoder for keys; it fails as Decode does on bad
// keys.
func NewDecoder(keys Keys) (*Decoder, error) {
	if err := keys.check(); err != nil {
		return nil, err
	}
	d := keys.HMACDigest.orDefault()
	mac := hmac.New(d.newHash(), keys.HMAC)
	fail := func(err error) error { return &Error{Op: "decode", Err: err} }
	return &Decoder{
		keys: keys, mac: mac, prefix: []byte(saltedB64),
		sum: make([]byte, 0, mac.Size()), tag: make([]byte, d.b64Len()),
		errTooShort: fail(ErrTooShort), errTooLong: fail(ErrTooLong), errNotBase64: fail(ErrNotBase64),
		errSalted: fail(ErrSaltedPrefix), errBadHMAC: fail(ErrBadHMAC),
	}, nil
}

// Decode checks and opens one SPA packet, as the package's Decode does.
func (d *Decoder) Decode(pkt []byte) (*Message, error) {
	switch {
	case len(pkt) < MinPacketLen:
		return nil, d.errTooShort
	case len(pkt) > MaxPacketLen:
		return nil, d.errTooLong
	case NotBase64(pkt) >= 0:
		return nil, d.errNotBase64
	case bytes.HasPrefix(pkt, d.prefix):
		return nil, d.errSalted
	}
	body, tag := pkt[:len(pkt)-len(d.tag)], pkt[len(pkt)-len(d.tag):]
	d.mac.Reset()
	d.mac.Write(d.prefix)
	d.mac.Write(body)
	d.sum = d.mac.Sum(d.sum[:0])
	base64.RawStdEncoding.Encode(d.tag, d.sum)
	if !hmac.Equal(d.tag, tag) {
		return nil, d.errBadHMAC
	}
	return decrypt(d.keys, saltedB64+string(body))
}

// decrypt opens full, the whole base64 ciphertext whose HMAC matched.
func decrypt(keys Keys, full string) (*Message, error) {
	fail := func(err error) (*Message, error) { return nil, &Error{Op: "decode", Err: err} }
	raw, err := base64.RawStdEncoding.DecodeString(full)
	switch {
	case err != nil:
		return fail(fmt.Errorf("%w: %v", ErrBadCiphertext, err))
	case len(raw) < 32 || len(raw)%aes.BlockSize != 0:
		return fail(fmt.Errorf("%w: %d bytes is not a salt block and whole AES blocks", ErrBadCiphertext, len(raw)))
	case string(raw[:8]) != saltedMagic:
		return fail(fmt.Errorf("%w: no %q header", ErrBadCiphertext, saltedMagic))
	}
	key, iv := bytesToKey(keys.Encryption, raw[8:16])
	block, _ := aes.NewCipher(key[:])
	plain := raw[16:]
	cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(plain, plain)
	plain, ok := unpad(plain)
	if !ok {
		return fail(ErrBadPadding)
	}
	m, err := parse(plain)
	if err != nil {
		return fail(err)
	}
	return m, nil
}

// ReplayDigest is the SHA-256 of a packet as received: what fwknopd keeps
// in its replay cache, and what the replay package's Cache is keyed by.
func ReplayDigest(pkt []byte) [32]byte { return sha256.Sum256(pkt) }

// macB64 is the HMAC of the full base64 ciphertext (its "U2FsdGVkX1"
// prefix included), in unpadded base64.
func macB64(keys Keys, full string) string {
	mac := hmac.New(keys.HMACDigest.orDefault().newHash(), keys.HMAC)
	mac.Write([]byte(full))
	return base64.RawStdEncoding.EncodeToString(mac.Sum(nil))
}

// bytesToKey is OpenSSL's EVP_BytesToKey with MD5 and one round, as
// `openssl enc -md md5` and fwknop use it: D1 = MD5(pass‖salt),
// Di = MD5(Di-1‖pass‖salt); the key is D1‖D2, the IV D3.
func bytesToKey(pass, salt []byte) (key [32]byte, iv [16]byte) {
	var out [48]byte
	var prev []byte
	for n := 0; n < len(out); n += md5.Size {
		h := md5.New()
		h.Write(prev)
		h.Write(pass)
		h.Write(salt)
		prev = h.Sum(nil)
		copy(out[n:], prev)
	}
	copy(key[:], out[:32])
	copy(iv[:], out[32:])
	return key, iv
}

// unpad strips PKCS#7 padding, in time that does not depend on where the
// padding is wrong.
func unpad(b []byte) ([]byte, bool) {
	if len(b) == 0 || len(b)%aes.BlockSize != 0 {
		return nil, false
	}
	n := int(b[len(b)-1])
	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, aes.BlockSize)
	tail := b[len(b)-aes.BlockSize:]
	for i := range aes.BlockSize {
		// Bytes within the last n must equal n.
		within := subtle.ConstantTimeLessOrEq(aes.BlockSize-n, i)
		eq := subtle.ConstantTimeByteEq(tail[i], byte(n))
		good &= eq | (within ^ 1)
	}
	if good != 1 {
		return nil, false
	}
	return b[:len(b)-n], true
}

func isB64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}

// b64Low and b64High mark the bytes of the base64 alphabet, 0-63 and
// 64-127 (bit c%64): one shift a byte where isB64 takes up to five
// comparisons, on every byte of every packet.
const (
	b64Low  uint64 = 1<<'+' | 1<<'/' | 0x3ff<<'0'
	b64High uint64 = 0x3ffffff<<('A'-64) | 0x3ffffff<<('a'-64)
)

// NotBase64 is the offset of the first byte of b outside the base64
// alphabet, -1 when there is none: a packet with one is refused by Decode
// whatever the keys, so a server may check it first, before it spends a
// hash on the packet's replay digest.
func NotBase64(b []byte) int {
	for i, c := range b {
		mask := b64Low
		if c >= 64 {
			mask = b64High
		}
		if c >= 128 || mask>>(c&63)&1 == 0 {
			return i
		}
	}
	return -1
}

// randomDigits draws RandomLen uniform decimal digits.
func randomDigits(r io.Reader) (string, error) {
	const span = 1e16
	const limit = (1<<64 - 1) / span * span // rejection keeps the draw uniform
	var b [8]byte
	for range 64 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", err
		}
		if v := binary.BigEndian.Uint64(b[:]); v < limit {
			return fmt.Sprintf("%016d", v%span), nil
		}
	}
	return "", fmt.Errorf("random source gives only out-of-range values")
}

// parse reads a decrypted SPA message: its digest, then its fields.
func parse(plain []byte) (*Message, error) {
	if !printable(string(plain)) {
		return nil, fieldErr("message", "", "not printable ASCII")
	}
	s := string(plain)
	cut := strings.LastIndexByte(s, ':')
	if cut < 0 {
		return nil, fieldErr("digest", "", "no fields")
	}
	encoded, sum := s[:cut], s[cut+1:]
	m := &Message{}
	var candidates []Digest
	switch len(sum) {
	case MD5.b64Len():
		candidates = []Digest{MD5}
	case SHA1.b64Len():
		candidates = []Digest{SHA1}
	case SHA256.b64Len():
		candidates = []Digest{SHA256, SHA3_256}
	case SHA384.b64Len():
		candidates = []Digest{SHA384}
	case SHA512.b64Len():
		candidates = []Digest{SHA512, SHA3_512}
	default:
		return nil, fieldErr("digest", sum, "length is no known digest's")
	}
	for _, d := range candidates {
		if subtle.ConstantTimeCompare([]byte(d.sumB64([]byte(encoded))), []byte(sum)) == 1 {
			m.Digest = d
		}
	}
	if m.Digest == 0 {
		return nil, ErrBadDigest
	}

	f := strings.Split(encoded, ":")
	if len(f) < 6 {
		return nil, fieldErr("fields", strconv.Itoa(len(f)), "want at least 6")
	}
	m.Random = f[0]
	var err error
	if m.Username, err = b64Field("username", f[1], MaxUsernameLen); err != nil {
		return nil, err
	}
	ts, err := parseDigits(f[2], MaxTimestampLen)
	if err != nil || ts > 1<<32-1 {
		return nil, fieldErr("timestamp", f[2], "want a 32-bit count of seconds")
	}
	m.Timestamp = time.Unix(int64(ts), 0).UTC()
	m.Version = f[3]
	t, err := parseDigits(f[4], 2)
	if err != nil || !MessageType(t).Valid() {
		return nil, fieldErr("type", f[4], "unknown message type")
	}
	m.Type = MessageType(t)
	if m.Message, err = b64Field("message", f[5], MaxFieldLen); err != nil {
		return nil, err
	}
	rest := f[6:]
	need := 0
	if m.Type.HasNAT() {
		need++
	}
	if m.Type.HasClientTimeout() {
		need++
	}
	if len(rest) < need || len(rest) > need+1 {
		return nil, fieldErr("fields", strconv.Itoa(len(f)), fmt.Sprintf("a %v message has %d or %d", m.Type, 6+need, 7+need))
	}
	if m.Type.HasNAT() {
		if m.NATAccess, err = b64Field("nat_access", rest[0], MaxFieldLen); err != nil {
			return nil, err
		}
		rest = rest[1:]
	}
	if m.Type.HasClientTimeout() {
		last := rest[len(rest)-1]
		n, err := parseDigits(last, 5)
		if err != nil {
			return nil, fieldErr("client_timeout", last, err.Error())
		}
		m.ClientTimeout = int(n)
		rest = rest[:len(rest)-1]
	}
	if len(rest) == 1 {
		if m.ServerAuth, err = b64Field("server_auth", rest[0], MaxFieldLen); err != nil {
			return nil, err
		}
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// b64Field decodes one unpadded base64 field of at most max bytes.
func b64Field(name, v string, max int) (string, error) {
	if v == "" || len(v) > max {
		return "", fieldErr(name, v, fmt.Sprintf("want 1 to %d bytes of base64", max))
	}
	b, err := base64.RawStdEncoding.DecodeString(v)
	if err != nil {
		return "", fieldErr(name, v, "not base64")
	}
	return string(b), nil
}

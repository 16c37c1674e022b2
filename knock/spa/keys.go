package spa

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// Key limits, fwknop's: the Rijndael key is a passphrase of at most 32
// bytes (the AES key is derived from it and the salt); the HMAC key at
// most the longest hash block fwknop knows (SHA3-256's, 136 bytes).
const (
	MaxEncryptionKeyLen = 32
	MaxHMACKeyLen       = 136
	// KeygenEncryptionLen and KeygenHMACLen are the random bytes of the
	// keys Keygen makes, as `fwknop --key-gen` does.
	KeygenEncryptionLen = 32
	KeygenHMACLen       = 64
)

// Keys are one access stanza's secrets: the Rijndael passphrase and the
// HMAC key, both raw bytes (a base64 key of access.conf decoded, a plain
// KEY used as its bytes).
type Keys struct {
	Encryption []byte
	HMAC       []byte
	HMACDigest Digest // zero: SHA256
}

func (k Keys) check() error {
	switch {
	case len(k.Encryption) == 0:
		return &Error{Op: "key", Err: fmt.Errorf("%w: no encryption key", ErrBadKey)}
	case len(k.Encryption) > MaxEncryptionKeyLen:
		return &Error{Op: "key", Err: fmt.Errorf("%w: encryption key is %d bytes, at most %d", ErrBadKey, len(k.Encryption), MaxEncryptionKeyLen)}
	case len(k.HMAC) == 0:
		// fwknop can go without an HMAC; portkit never does: without it
		// any byte string reaches the decryption.
		return &Error{Op: "key", Err: fmt.Errorf("%w: no HMAC key", ErrBadKey)}
	case len(k.HMAC) > MaxHMACKeyLen:
		return &Error{Op: "key", Err: fmt.Errorf("%w: HMAC key is %d bytes, at most %d", ErrBadKey, len(k.HMAC), MaxHMACKeyLen)}
	case !k.HMACDigest.Valid():
		return &Error{Op: "key", Err: fmt.Errorf("%w: unknown HMAC digest %d", ErrBadKey, int(k.HMACDigest))}
	}
	return nil
}

// Keygen makes a new pair of keys from r (crypto/rand when nil), of the
// sizes `fwknop --key-gen` makes: 32 bytes for encryption, 64 for the
// HMAC (SHA256).
func Keygen(r io.Reader) (Keys, error) {
	if r == nil {
		r = rand.Reader
	}
	buf := make([]byte, KeygenEncryptionLen+KeygenHMACLen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Keys{}, &Error{Op: "keygen", Err: err}
	}
	return Keys{Encryption: buf[:KeygenEncryptionLen], HMAC: buf[KeygenEncryptionLen:], HMACDigest: SHA256}, nil
}

// EncryptionBase64 is the encryption key as KEY_BASE64 holds it.
func (k Keys) EncryptionBase64() string { return base64.StdEncoding.EncodeToString(k.Encryption) }

// HMACBase64 is the HMAC key as HMAC_KEY_BASE64 holds it.
func (k Keys) HMACBase64() string { return base64.StdEncoding.EncodeToString(k.HMAC) }

// DecodeKeyBase64 decodes a key given in base64 (KEY_BASE64,
// HMAC_KEY_BASE64, --key-base64-*), padded or not.
func DecodeKeyBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil && !strings.HasSuffix(s, "=") {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, &Error{Op: "key", Err: fmt.Errorf("%w: not base64: %v", ErrBadKey, err)}
	}
	if len(b) == 0 {
		return nil, &Error{Op: "key", Err: fmt.Errorf("%w: empty", ErrBadKey)}
	}
	return b, nil
}

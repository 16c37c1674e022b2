package spa

import (
	"errors"
	"fmt"
)

// The kinds of failure of Decode and Encode. Errors returned by this
// package are *Error values; errors.Is tells which kind each one is.
var (
	// ErrTooShort and ErrTooLong: the packet is outside fwknopd's bounds
	// (MinPacketLen, MaxPacketLen).
	ErrTooShort = errors.New("packet too short")
	ErrTooLong  = errors.New("packet too long")
	// ErrNotBase64: the packet has a byte outside the base64 alphabet.
	ErrNotBase64 = errors.New("packet is not base64")
	// ErrSaltedPrefix: the packet still begins with the base64 of
	// "Salted__", which a client strips. fwknopd refuses such packets
	// because prefixing a seen packet would otherwise dodge the replay
	// cache (the digest is of the packet as sent).
	ErrSaltedPrefix = errors.New(`packet begins with the base64 of "Salted__"`)
	// ErrBadHMAC: the packet's HMAC does not match; nothing else of it
	// was looked at.
	ErrBadHMAC = errors.New("HMAC does not match")
	// ErrBadCiphertext: the HMAC matched but the ciphertext is not an
	// OpenSSL salted AES-CBC message (length, "Salted__" header).
	ErrBadCiphertext = errors.New("bad ciphertext")
	// ErrBadPadding: the decrypted data does not end in PKCS#7 padding.
	ErrBadPadding = errors.New("bad padding")
	// ErrBadFormat: the plaintext is not a well-formed SPA message; a
	// *FieldError says which field.
	ErrBadFormat = errors.New("bad message format")
	// ErrBadDigest: the plaintext's digest does not match its fields.
	ErrBadDigest = errors.New("digest does not match")
	// ErrBadKey: a key is missing, too long, or not base64.
	ErrBadKey = errors.New("bad key")
)

// Error is an error of Decode, Encode or a key function: Op is what was
// being done ("decode", "encode", "key").
type Error struct {
	Op  string
	Err error
}

func (e *Error) Error() string { return "spa: " + e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// FieldError tells which field of an SPA message is wrong and why. It
// matches ErrBadFormat under errors.Is.
type FieldError struct {
	Field  string // "random", "username", "timestamp", ...
	Value  string // the offending value, cut to 64 bytes
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%v: field %s %q: %s", ErrBadFormat, e.Field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrBadFormat) true for a *FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrBadFormat }

func fieldErr(field, value, reason string) error {
	if len(value) > 64 {
		value = value[:64]
	}
	return &FieldError{Field: field, Value: value, Reason: reason}
}

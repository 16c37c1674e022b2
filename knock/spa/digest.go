package spa

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"
)

// Digest is a hash algorithm, for the message digest inside an SPA
// packet and for its HMAC. The values are fwknop's own numbers.
type Digest int

// The digests fwknop knows. The zero value means "the default", SHA256.
const (
	MD5      Digest = 1
	SHA1     Digest = 2
	SHA256   Digest = 3
	SHA384   Digest = 4
	SHA512   Digest = 5
	SHA3_256 Digest = 6
	SHA3_512 Digest = 7
)

var digestNames = [...]string{MD5: "md5", SHA1: "sha1", SHA256: "sha256", SHA384: "sha384",
	SHA512: "sha512", SHA3_256: "sha3_256", SHA3_512: "sha3_512"}

// orDefault is d, or SHA256 when d is zero.
func (d Digest) orDefault() Digest {
	if d == 0 {
		return SHA256
	}
	return d
}

// Valid reports whether d is one of the known digests (zero included, as
// the default).
func (d Digest) Valid() bool { return d >= 0 && int(d) < len(digestNames) }

// String is the name fwknop uses in its configuration (HMAC_DIGEST_TYPE):
// md5, sha1, sha256, sha384, sha512, sha3_256 or sha3_512.
func (d Digest) String() string {
	d = d.orDefault()
	if !d.Valid() {
		return fmt.Sprintf("Digest(%d)", int(d))
	}
	return digestNames[d]
}

// ParseDigest is the inverse of String, case-insensitive.
func ParseDigest(s string) (Digest, error) {
	for d, name := range digestNames {
		if name != "" && strings.EqualFold(s, name) {
			return Digest(d), nil
		}
	}
	return 0, fmt.Errorf("unknown digest %q (want md5, sha1, sha256, sha384, sha512, sha3_256 or sha3_512)", s)
}

func (d Digest) newHash() func() hash.Hash {
	switch d.orDefault() {
	case MD5:
		return md5.New
	case SHA1:
		return sha1.New
	case SHA256:
		return sha256.New
	case SHA384:
		return sha512.New384
	case SHA512:
		return sha512.New
	case SHA3_256:
		return func() hash.Hash { return sha3.New256() }
	case SHA3_512:
		return func() hash.Hash { return sha3.New512() }
	}
	return nil
}

// b64Len is the length of d's sum in unpadded base64, as carried in a
// packet.
func (d Digest) b64Len() int {
	return base64.RawStdEncoding.EncodedLen(d.newHash()().Size())
}

// sumB64 is d's sum of data in unpadded base64.
func (d Digest) sumB64(data []byte) string {
	h := d.newHash()()
	h.Write(data)
	return base64.RawStdEncoding.EncodeToString(h.Sum(nil))
}
